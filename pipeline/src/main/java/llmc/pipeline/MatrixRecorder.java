package llmc.pipeline;

import java.util.BitSet;
import llmc.calibration.CompressedMatrix;
import llmc.calibration.InputStatistics;
import llmc.calibration.MatrixCompressor;
import llmc.model.Linear;

/**
 * A compressor that also tells a listener where each matrix held zeros before, and what it became,
 * for the report (the matrix itself may be gone: GPTQ works in its memory).
 */
final class MatrixRecorder implements MatrixCompressor {
  /** Told of each compressed matrix. */
  interface Listener {
    void compressed(int layer, Linear linear, Zeros before, CompressedMatrix after);
  }

  /**
   * The zeros of a matrix of {@code length} weights, by index (an empty set when it had none, the
   * common case, and then nothing is allocated).
   */
  record Zeros(int length, BitSet at) {
    static Zeros of(float[] w) {
      BitSet at = new BitSet(0);
      for (int i = 0; i < w.length; i++) {
        if (w[i] == 0f) {
          at.set(i);
        }
      }
      return new Zeros(w.length, at);
    }

    long count() {
      return at.cardinality();
    }
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
  public String layerNote(int layer) {
    return method.layerNote(layer);
  }

  @Override
  public void replayedLayer(int layer, String note) {
    method.replayedLayer(layer, note);
  }

  @Override
  public float[] inputScales(
      int layer,
      Linear.Input input,
      java.util.List<Linear> linears,
      java.util.function.Function<Linear, float[]> weights,
      InputStatistics stats) {
    return method.inputScales(layer, input, linears, weights, stats);
  }

  @Override
  public CompressedMatrix compress(
      int layer, Linear linear, float[] weight, int rows, int cols, InputStatistics stats) {
    Zeros before = Zeros.of(weight);
    CompressedMatrix c = method.compress(layer, linear, weight, rows, cols, stats);
    listener.compressed(layer, linear, before, c);
    return c;
  }

  @Override
  public void replayed(int layer, Linear linear, float[] weight, CompressedMatrix c) {
    listener.compressed(layer, linear, Zeros.of(weight), c);
  }
}
