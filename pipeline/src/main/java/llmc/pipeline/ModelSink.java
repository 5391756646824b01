package llmc.pipeline;

import java.nio.file.Path;
import llmc.calibration.LayerSink;

/**
 * Where a compressed model goes, chosen once per run: a Hugging Face folder in one of the {@link
 * FolderLayout}s, or one GGUF file. It takes the tensors outside the decoder layers when opened,
 * then each layer as the walk completes it, and moves the output into place only when complete.
 */
interface ModelSink extends LayerSink, AutoCloseable {

  /** All layers are in: finishes the tensors and the files around them. */
  void finishTensors();

  /** Where the finished output can be read (before {@link #commit}: a folder's temporary place). */
  Path written();

  /** Bytes of the weights written. */
  long outputBytes();

  /**
   * Stores {@code report} and the model card {@code card} ({@link ModelCard}) beside the output (a
   * folder) and moves the output into place.
   */
  void commit(Object report, String card);

  /** Without commit: removes what was written. */
  @Override
  void close();
}
