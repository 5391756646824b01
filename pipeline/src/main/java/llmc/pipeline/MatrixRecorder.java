package llmc.pipeline;

import llmc.calibration.CompressedMatrix;
import llmc.calibration.InputStatistics;
import llmc.calibration.MatrixCompressor;
import llmc.model.Linear;

/** A compressor that also tells a listener each matrix before and after, for the report. */
final class MatrixRecorder implements MatrixCompressor {
  /** Told of each compressed matrix. */
  interface Listener {
    void compressed(int layer, Linear linear, float[] before, CompressedMatrix after);
  }

  private final MatrixCompressor method;
  private final Listener listener;

  MatrixRecorder(MatrixCompressor method, Listener listener) {
    this.method = method;
    this.listener = listener;
  }

  @Override
  public boolean compresses(int layer, Linear linear) {
    return method.compresses(layer, linear);
  }

  @Override
  public boolean needsStatistics() {
    return method.needsStatistics();
  }

  @Override
  public CompressedMatrix compress(
      int layer, Linear linear, float[] weight, int rows, int cols, InputStatistics stats) {
    CompressedMatrix c = method.compress(layer, linear, weight, rows, cols, stats);
    listener.compressed(layer, linear, weight, c);
    return c;
  }

  @Override
  public void replayed(int layer, Linear linear, float[] weight, CompressedMatrix c) {
    listener.compressed(layer, linear, weight, c);
  }
}
