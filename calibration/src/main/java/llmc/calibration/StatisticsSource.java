package llmc.calibration;

import java.util.List;

/** Where the walk gets the statistics of each matrix's input from. */
public sealed interface StatisticsSource {

  /**
   * Calibration windows run through the model layer by layer (protocol C1); with {@code save}, the
   * statistics of the uncompressed model are also saved. With {@code keepMlpActivations} the MLP
   * activations stay from the statistics to the layer's output when they take at most 1 GiB;
   * without, they are computed again (less memory, a little slower).
   */
  record Windows(List<int[]> windows, StatisticsStore.Writer save, boolean keepMlpActivations)
      implements StatisticsSource {
    public Windows(List<int[]> windows, StatisticsStore.Writer save) {
      this(windows, save, true);
    }
  }

  /** Statistics saved before (of the uncompressed model): no forward pass, not sequential. */
  record Saved(StatisticsStore store) implements StatisticsSource {}

  /** None: the method reads the weights alone (RTN, magnitude, scores from gradients). */
  record None() implements StatisticsSource {}
}
