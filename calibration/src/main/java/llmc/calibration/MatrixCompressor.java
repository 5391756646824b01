package llmc.calibration;

import llmc.model.Linear;

/**
 * One compression method applied to one weight matrix at a time: GPTQ and RTN (quantize), Wanda,
 * SparseGPT and the element scores (prune). The {@link LayerwisePipeline} walks the layers, hands
 * each matrix the compressor {@link #compresses} to {@link #compress} with the statistics of the
 * activation it reads, and puts the result back into the model before the next stage runs.
 */
public interface MatrixCompressor {

  /** False for a matrix the method leaves as it is (ignored, or stored in another type). */
  boolean compresses(int layer, Linear linear);

  /**
   * Whether {@link #compress} needs the statistics of the matrix's input (then the walk runs the
   * calibration windows through the model; without, it reads the weights alone).
   */
  boolean needsStatistics();

  /**
   * @param weight the matrix's current values, {@code [rows = out][cols = in]} row-major: the
   *     caller's own copy, which the compressor may work in (GPTQ does) but not keep
   * @param stats the statistics of the input over every calibration token, or null when {@link
   *     #needsStatistics} is false
   */
  CompressedMatrix compress(
      int layer, Linear linear, float[] weight, int rows, int cols, InputStatistics stats);

  /**
   * A matrix this compressor made in an earlier run, taken from a {@link LayerJournal} instead of
   * computed again: a compressor that records what it made (for a report) records it here too.
   *
   * @param weight the matrix's values before it was compressed, as {@link #compress} got them
   */
  default void replayed(int layer, Linear linear, float[] weight, CompressedMatrix c) {}

  /**
   * This method, then {@code next} on what it made, in one pass over the model (prune, then
   * quantize): {@code next} sees the first's result as the matrix's current values, with the same
   * statistics of the input.
   */
  default MatrixCompressor then(MatrixCompressor next) {
    MatrixCompressor first = this;
    return new MatrixCompressor() {
      @Override
      public boolean compresses(int layer, Linear linear) {
        return first.compresses(layer, linear) || next.compresses(layer, linear);
      }

      @Override
      public boolean needsStatistics() {
        return first.needsStatistics() || next.needsStatistics();
      }

      @Override
      public CompressedMatrix compress(
          int layer, Linear linear, float[] weight, int rows, int cols, InputStatistics stats) {
        boolean both = first.compresses(layer, linear) && next.compresses(layer, linear);
        // the statistics' memory goes to the last read only: next's
        boolean lastRead = both && stats != null && stats.takeLastRead();
        CompressedMatrix a =
            first.compresses(layer, linear)
                ? first.compress(
                    layer, linear, weight, rows, cols, first.needsStatistics() ? stats : null)
                : null;
        if (!next.compresses(layer, linear)) {
          return a;
        }
        if (lastRead) {
          stats.lastRead();
        }
        float[] current = a == null ? weight : a.weight().clone();
        CompressedMatrix b =
            next.compress(
                layer, linear, current, rows, cols, next.needsStatistics() ? stats : null);
        if (a == null) {
          return b;
        }
        String warning =
            a.warning() == null
                ? b.warning()
                : b.warning() == null ? a.warning() : a.warning() + "; " + b.warning();
        return new CompressedMatrix(
            b.weight(),
            b.quantized(),
            a.seconds() + b.seconds(),
            b.gptqLoss(),
            b.weightMse(),
            b.damp(),
            b.fellBackToRtn(),
            warning);
      }
    };
  }
}
