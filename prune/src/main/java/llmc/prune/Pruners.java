package llmc.prune;

import java.util.function.BiPredicate;
import llmc.calibration.CompressedMatrix;
import llmc.calibration.InputStatistics;
import llmc.calibration.MatrixCompressor;
import llmc.model.Linear;

/**
 * Unstructured and N:M pruning as {@link MatrixCompressor}s: Wanda and SparseGPT from the
 * statistics of each matrix's input (so the layer-sequential walk prunes every layer on the inputs
 * the already-pruned layers before it produce), the element scores from the weights alone.
 */
public final class Pruners {
  private Pruners() {}

  /** Wanda: the {@code pattern}'s mask of the highest {@code |w_ij| ||X_j||_2}. */
  public static MatrixCompressor wanda(
      BiPredicate<Integer, Linear> prunes, SparsityPattern pattern) {
    return new Base(prunes, true) {
      @Override
      Pruned prune(String name, float[] w, int rows, int cols, InputStatistics stats) {
        float[] s = Scores.wanda(w, rows, cols, stats.columnSquaredNorms());
        return new Pruned(Masks.apply(w, Masks.select(s, rows, cols, pattern)), null);
      }
    };
  }

  /**
   * SparseGPT: masks and weight updates from the inverse Hessian, {@code blockSize} columns at a
   * time.
   */
  public static MatrixCompressor sparseGpt(
      BiPredicate<Integer, Linear> prunes, SparsityPattern pattern, double damp, int blockSize) {
    return new Base(prunes, true) {
      @Override
      Pruned prune(String name, float[] w, int rows, int cols, InputStatistics stats) {
        SparseGpt.Result r =
            SparseGpt.pruneInPlace(
                w, rows, cols, stats.hessianToChange(), pattern, damp, blockSize);
        return new Pruned(r.weights(), r.warning());
      }
    };
  }

  /**
   * The {@code pattern}'s mask of the highest element scores (magnitude, Lp, sensitivity, Taylor).
   */
  public static MatrixCompressor byScores(
      BiPredicate<Integer, Linear> prunes, WeightScores scores, SparsityPattern pattern) {
    return new Base(prunes, false) {
      @Override
      Pruned prune(String name, float[] w, int rows, int cols, InputStatistics stats) {
        return new Pruned(
            Masks.apply(w, Masks.select(scores.of(name, w), rows, cols, pattern)), null);
      }
    };
  }

  /** A pruned {@code [out][in]} matrix and what went wrong, if anything. */
  private record Pruned(float[] weights, String warning) {}

  private abstract static class Base implements MatrixCompressor {
    private final BiPredicate<Integer, Linear> prunes;
    private final boolean needsStatistics;

    Base(BiPredicate<Integer, Linear> prunes, boolean needsStatistics) {
      this.prunes = prunes;
      this.needsStatistics = needsStatistics;
    }

    abstract Pruned prune(String name, float[] w, int rows, int cols, InputStatistics stats);

    @Override
    public boolean compresses(int layer, Linear linear) {
      return prunes.test(layer, linear);
    }

    @Override
    public boolean needsStatistics() {
      return needsStatistics;
    }

    @Override
    public CompressedMatrix compress(
        int layer, Linear linear, float[] weight, int rows, int cols, InputStatistics stats) {
      long start = System.nanoTime();
      Pruned p = prune(linear.weightName(layer), weight, rows, cols, stats);
      return CompressedMatrix.values(p.weights(), (System.nanoTime() - start) / 1e9, p.warning());
    }
  }
}
