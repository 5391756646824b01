package llmc.pipeline;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import llmc.calibration.CompressedMatrix;
import llmc.formats.gguf.GgmlType;
import llmc.formats.gguf.GgufTokenizer;
import llmc.model.Linear;
import llmc.model.LlamaFamily;
import llmc.model.TensorNames;
import llmc.model.Weights;
import llmc.model.gguf.GgufModelWriter;

/**
 * One GGUF file for llama.cpp: the tensors outside the decoder layers first (their order in the
 * file), then each layer as soon as it is complete; quantized matrices as blocks of their codes,
 * everything else from floats by llama.cpp's rules for its planned type.
 */
final class GgufSink implements ModelSink {
  private final Path out;
  private final Weights weights;
  private final List<GgufModelWriter.Tensor> plan;
  private final GgufModelWriter file;

  GgufSink(
      Path out,
      boolean overwrite,
      LlamaFamily family,
      String name,
      GgmlType type,
      List<GgufModelWriter.Tensor> plan,
      GgufTokenizer tokenizer,
      Weights weights,
      List<Path> inputs) {
    this.out = out;
    this.weights = weights;
    this.plan = plan;
    this.file =
        new GgufModelWriter(out, overwrite, inputs, family, name, type, plan, tokenizer::writeTo);
    try {
      for (GgufModelWriter.Tensor t : plan) {
        if (!t.hfName().startsWith(TensorNames.LAYERS)) {
          file.writeFloats(t.hfName(), weights.floats(t.hfName()));
        }
      }
    } catch (RuntimeException e) {
      file.close();
      throw e;
    }
  }

  @Override
  public void writeLayer(int layer, Map<Linear, CompressedMatrix> compressed) {
    writeLayer(layer, compressed, Map.of());
  }

  @Override
  public void writeLayer(
      int layer, Map<Linear, CompressedMatrix> compressed, Map<String, float[]> vectors) {
    String prefix = TensorNames.layer(layer);
    for (GgufModelWriter.Tensor t : plan) {
      if (!t.hfName().startsWith(prefix)) {
        continue;
      }
      CompressedMatrix c = null;
      for (Map.Entry<Linear, CompressedMatrix> e : compressed.entrySet()) {
        if (e.getKey().weightName(layer).equals(t.hfName())) {
          c = e.getValue();
        }
      }
      if (c != null && c.quantized() != null) {
        file.writeQuantized(t.hfName(), c.quantized());
      } else if (c != null) {
        file.writeFloats(t.hfName(), c.weight());
      } else if (vectors.containsKey(t.hfName())) { // a norm weight with scales folded in
        file.writeFloats(t.hfName(), vectors.get(t.hfName()));
      } else {
        file.writeFloats(t.hfName(), weights.floats(t.hfName()));
      }
    }
  }

  /** Writes every tensor of a layer from {@code weights} (an export with no compressor). */
  void copyLayer(int layer) {
    writeLayer(layer, Map.of());
  }

  @Override
  public void finishTensors() {
    file.finish();
  }

  @Override
  public Path written() {
    return out;
  }

  @Override
  public long outputBytes() {
    return out.toFile().length();
  }

  @Override
  public void commit(Object report, String card) {
    // The file was moved into place by finishTensors; GGUF has no report or card beside it.
  }

  @Override
  public void close() {
    file.close();
  }
}
