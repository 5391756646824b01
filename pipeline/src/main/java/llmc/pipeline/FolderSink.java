package llmc.pipeline;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import llmc.calibration.CompressedMatrix;
import llmc.formats.Checkpoint;
import llmc.formats.ModelFolder;
import llmc.formats.OutputFolder;
import llmc.formats.SafetensorsWriter;
import llmc.formats.TensorInfo;
import llmc.model.Linear;
import llmc.model.TensorNames;

/**
 * A Hugging Face folder written in a temporary place beside the target: the tensors outside the
 * decoder layers as they are, each layer's compressed matrices in the {@link FolderLayout} and its
 * other tensors as they are, then config, tokenizer files, report and model card; renamed into
 * place last.
 */
final class FolderSink implements ModelSink {
  private final ModelFolder input;
  private final Checkpoint checkpoint;
  private final FolderLayout layout;
  private final OutputFolder folder;
  private final SafetensorsWriter writer;
  private boolean finished;

  /**
   * @param inputs what the run reads (the model folder first): the output may not overlap them
   */
  FolderSink(
      ModelFolder input,
      List<Path> inputs,
      Path out,
      boolean overwrite,
      long maxShardBytes,
      String producer,
      FolderLayout layout) {
    this.input = input;
    this.checkpoint = input.checkpoint();
    this.layout = layout;
    input.auxiliaryFiles(); // a file that leaves the folder is refused now, not after the work
    this.folder = OutputFolder.create(out, overwrite, inputs);
    SafetensorsWriter w = null;
    try {
      w =
          new SafetensorsWriter(
              folder.dir(), maxShardBytes, Map.of("format", "pt", "producer", producer));
      this.writer = w;
      for (String name : checkpoint.names()) {
        if (!name.startsWith(TensorNames.LAYERS)) {
          copy(name);
        }
      }
    } catch (RuntimeException e) { // e.g. a full disk at the first tensor: nothing is left behind
      if (w != null) {
        w.close();
      }
      folder.close();
      throw e;
    }
  }

  /** The folder being written (tensors can also be written there directly). */
  SafetensorsWriter writer() {
    return writer;
  }

  private void copy(String name) {
    TensorInfo info = checkpoint.info(name);
    writer.write(name, info.dtype(), info.shape(), checkpoint.bytes(name));
  }

  @Override
  public void writeLayer(int layer, Map<Linear, CompressedMatrix> compressed) {
    writeLayer(layer, compressed, Map.of());
  }

  @Override
  public void writeLayer(
      int layer, Map<Linear, CompressedMatrix> compressed, Map<String, float[]> vectors) {
    Set<String> skipped = new TreeSet<>();
    for (Linear linear : compressed.keySet()) {
      if (layout.storesBias()) {
        skipped.add(linear.biasName(layer));
      }
    }
    String prefix = TensorNames.layer(layer);
    for (String name : checkpoint.names()) {
      if (!name.startsWith(prefix) || skipped.contains(name)) {
        continue;
      }
      Linear linear = compressedWeight(name, layer, compressed);
      if (linear != null) {
        layout.write(writer, checkpoint, layer, linear, compressed.get(linear));
      } else if (vectors.containsKey(name)) { // a norm weight with scales folded in
        TensorInfo info = checkpoint.info(name);
        writer.writeFloats(name, info.dtype(), info.shape(), vectors.get(name));
      } else {
        copy(name);
      }
    }
  }

  private static Linear compressedWeight(
      String name, int layer, Map<Linear, CompressedMatrix> compressed) {
    for (Linear linear : compressed.keySet()) {
      if (linear.weightName(layer).equals(name)) {
        return linear;
      }
    }
    return null;
  }

  @Override
  public void finishTensors() {
    writer.finish();
    writer.close();
    layout.writeConfig(input.config(), folder.dir());
    input.copyAuxiliaryFilesTo(folder.dir());
    finished = true;
  }

  @Override
  public Path written() {
    return folder.dir();
  }

  @Override
  public long outputBytes() {
    return Reports.safetensorsBytes(folder.dir());
  }

  @Override
  public void commit(Object report, String card) {
    if (!finished) {
      throw new IllegalStateException("commit before finishTensors");
    }
    Reports.store(report, folder.dir());
    ModelCard.store(card, folder.dir());
    folder.commit();
  }

  @Override
  public void close() {
    try {
      writer.close();
    } finally {
      folder.close();
    }
  }
}
