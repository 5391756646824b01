package llmc.calibration;

import java.util.List;

/** Where the walk gets the statistics of each matrix's input from. */
public sealed interface StatisticsSource {

  /**
   * Calibration windows run through the model layer by layer (protocol C1); with {@code save}, the
   * statistics of the uncompressed model are also saved. With {@code keepMlpActivations} the MLP
   * activations stay from the statistics to the layer's output when they take at most 1 GiB;
   * without, they are computed again (less memory, a little slower). With {@code spill}, what it
   * names waits on disk.
   */
  record Windows(
      List<int[]> windows, StatisticsStore.Writer save, boolean keepMlpActivations, Spill spill)
      implements StatisticsSource {
    public Windows(List<int[]> windows, StatisticsStore.Writer save) {
      this(windows, save, true, null);
    }

    public Windows(List<int[]> windows, StatisticsStore.Writer save, boolean keepMlpActivations) {
      this(windows, save, keepMlpActivations, null);
    }

    public Windows {
      if (spill != null && spill.finishedMatrices() && !keepMlpActivations) {
        throw new IllegalArgumentException("spilling finished matrices needs kept activations");
      }
    }
  }

  /**
   * What waits on disk, in unlinked files in {@code folder} (the work folder) that no crash leaves
   * behind, to hold a run inside its memory budget.
   *
   * @param finishedMatrices a layer's finished matrices held as float32 values (pruned), while
   *     {@code down_proj}'s input, the widest, is accumulated and compressed
   * @param activations the calibration activations of every window between the layer's stages; one
   *     window is in memory at a time
   */
  record Spill(java.nio.file.Path folder, boolean finishedMatrices, boolean activations) {
    public Spill {
      if (folder == null) {
        throw new IllegalArgumentException("a spill needs a folder");
      }
    }
  }

  /** Statistics saved before (of the uncompressed model): no forward pass, not sequential. */
  record Saved(StatisticsStore store) implements StatisticsSource {}

  /** None: the method reads the weights alone (RTN, magnitude, scores from gradients). */
  record None() implements StatisticsSource {}
}
