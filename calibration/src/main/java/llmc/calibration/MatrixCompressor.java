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
   * Per-input-feature scales {@code s [in]} for the matrices reading {@code input} (AWQ's
   * activation-aware scales), or null for none (every method but AWQ). With scales, the walk hands
   * each of {@code linears} {@code W diag(s)} to {@link #compress} with the statistics of {@code x
   * / s}, runs the rest of the layer on {@code W diag(s)} still fed {@code x} ({@code
   * WeightMatrix.ColumnScaled}), and once the layer is done folds {@code 1/s} into the operation
   * that makes the input ({@link ScaleFold}: the norm's weight for (q, k, v) and (gate, up), {@code
   * v_proj}'s rows for o, {@code up_proj}'s rows for down, which must then be compressed too). So
   * the written model computes what the walk did, with plain matrices.
   *
   * @param linears the input's readers this compressor compresses, in order
   * @param weights a reader's current values {@code [out][in]} (a new array on each call)
   * @param stats the input's statistics, with {@link InputStatistics#meanAbs}
   */
  default float[] inputScales(
      int layer,
      Linear.Input input,
      java.util.List<Linear> linears,
      java.util.function.Function<Linear, float[]> weights,
      InputStatistics stats) {
    return null;
  }

  /**
   * What this compressor found for a finished layer beyond its matrices (AWQ's search), kept in the
   * journal and given back by {@link #replayedLayer} when a resumed run replays the layer; null for
   * nothing.
   */
  default String layerNote(int layer) {
    return null;
  }

  /** A layer finished in an earlier run, with the {@link #layerNote} it had then. */
  default void replayedLayer(int layer, String note) {}

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
      public float[] inputScales(
          int layer,
          Linear.Input input,
          java.util.List<Linear> linears,
          java.util.function.Function<Linear, float[]> weights,
          InputStatistics stats) {
        float[] a = first.inputScales(layer, input, linears, weights, stats);
        float[] b = next.inputScales(layer, input, linears, weights, stats);
        if (a != null && b != null) {
          throw new IllegalStateException("two methods scale the same input");
        }
        return a != null ? a : b;
      }

      @Override
      public String layerNote(int layer) {
        String a = first.layerNote(layer);
        String b = next.layerNote(layer);
        if (a != null && b != null) {
          throw new IllegalStateException("two methods note the same layer");
        }
        return a != null ? a : b;
      }

      @Override
      public void replayedLayer(int layer, String note) {
        first.replayedLayer(layer, note);
        next.replayedLayer(layer, note);
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
