package llmc.prune;

import java.util.Arrays;
import llmc.model.kernels.Gemm;
import llmc.model.kernels.Ops;
import llmc.model.kernels.Parallel;
import llmc.quantize.InverseHessian;

/**
 * SparseGPT (Frantar &amp; Alistarh 2023, "SparseGPT: Massive Language Models Can Be Accurately
 * Pruned in One-Shot"), as the reference code's {@code fasterprune}: the GPTQ machinery with
 * pruning in place of rounding. Columns are visited left to right; a pruned weight becomes zero and
 * its error {@code w / [H^-1]_ii} is spread over the columns not yet visited with the upper
 * Cholesky factor of {@code H^-1}, in lazy batches of {@code blockSize} columns.
 *
 * <p>The mask uses the OBS saliency {@code w^2 / [H^-1]_ii^2} of the weights as they stand:
 *
 * <ul>
 *   <li>unstructured: once per block, over the block's {@code [rows][count]} slice (earlier blocks'
 *       updates applied): the {@code floor(rows * count * sparsity)} lowest are pruned ({@link
 *       Compare#MATRIX}, the reference's choice); with {@link Compare#ROW} each row of the slice
 *       loses {@code floor(count * sparsity)};
 *   <li>N:M: when a run of {@code m} columns starts, from the row's updated values; the {@code m -
 *       n} lowest of the run are pruned. The block size is rounded down to a multiple of {@code m}
 *       (at least {@code m}) so that runs never straddle a block.
 * </ul>
 *
 * Ties as in {@link Masks}. Rows are independent given {@code Hinv}, so the in-block loop runs row
 * by row in parallel (as {@code llmc.quantize.Gptq}); the lazy update is one matrix product per
 * block. Dead inputs ({@code H_ii = 0}) get {@code H_ii = 1} and zero weights, as in the reference.
 */
public final class SparseGpt {

  private SparseGpt() {}

  /**
   * @param weights the pruned (and compensated) weights {@code [rows][cols]}
   * @param seconds wall time of {@link #prune}
   * @param damp the dampening fraction actually used ({@code dampPercent * 10^retries})
   * @param warning what went wrong (more dampening needed, or magnitude pruning used instead), or
   *     null
   */
  public record Result(float[] weights, double seconds, double damp, String warning) {}

  /**
   * Prunes {@code w [rows][cols]} (out x in, row-major) to {@code p} given {@code hessian
   * [cols][cols]} ({@code H = 2/n X^T X}); {@code dampPercent * mean(diag H)} is added to the
   * diagonal (raised x10 up to {@value InverseHessian#MAX_DAMP_RETRIES} times while the Cholesky
   * factorization fails; if it still fails, the result is magnitude pruning to {@code p}, with a
   * warning). Neither array is modified.
   */
  public static Result prune(
      float[] w,
      int rows,
      int cols,
      float[] hessian,
      SparsityPattern p,
      double dampPercent,
      int blockSize) {
    if (hessian.length != (long) cols * cols) {
      throw new IllegalArgumentException("w must be rows*cols and hessian cols*cols long");
    }
    return pruneConsuming(w, rows, cols, hessian.clone(), p, dampPercent, blockSize);
  }

  /**
   * {@link #prune}, working in the memory of {@code hessian}, which is spoiled: the one
   * Hessian-sized array of the whole computation ({@link InverseHessian#factor}). {@code w} is not
   * modified.
   */
  public static Result pruneConsuming(
      float[] w,
      int rows,
      int cols,
      float[] hessian,
      SparsityPattern p,
      double dampPercent,
      int blockSize) {
    return run(w.clone(), w, rows, cols, hessian, p, dampPercent, blockSize);
  }

  /**
   * {@link #pruneConsuming}, working in the memory of {@code w} too, which becomes the result (no
   * copy of the matrix: 0.94 GB for {@code down_proj} of a 70B-class model). The same bits.
   */
  public static Result pruneInPlace(
      float[] w,
      int rows,
      int cols,
      float[] hessian,
      SparsityPattern p,
      double dampPercent,
      int blockSize) {
    return run(w, null, rows, cols, hessian, p, dampPercent, blockSize);
  }

  /**
   * @param weights the working matrix, the result
   * @param original the matrix as given, or null when {@code weights} is it
   */
  private static Result run(
      float[] weights,
      float[] original,
      int rows,
      int cols,
      float[] hessian,
      SparsityPattern p,
      double dampPercent,
      int blockSize) {
    long start = System.nanoTime();
    if (rows < 0
        || cols < 0
        || weights.length != (long) rows * cols
        || hessian.length != (long) cols * cols) {
      throw new IllegalArgumentException("w must be rows*cols and hessian cols*cols long");
    }
    if (blockSize < 1) {
      throw new IllegalArgumentException("block size must be positive, got " + blockSize);
    }
    if (!(dampPercent >= 0)) {
      throw new IllegalArgumentException("dampening must be >= 0, got " + dampPercent);
    }
    float[] h = hessian; // [cols][cols]
    InverseHessian.DeadColumns dead =
        original == null ? InverseHessian.fixDeadInputsSaving(h, weights, rows, cols) : null;
    if (original != null) {
      InverseHessian.fixDeadInputs(h, weights, rows, cols);
    }
    // Hinv = cholesky(H^-1, upper)
    InverseHessian.Factor factor = InverseHessian.factor(h, cols, dampPercent);
    float[] hinv = factor.upper();
    double damp = factor.damp();
    if (hinv == null) {
      float[] w = original;
      if (w == null) { // the matrix as given, back from the working one
        dead.restore(weights, rows, cols);
        w = weights;
      }
      float[] pruned = Masks.apply(w, Masks.select(Scores.magnitude(w), rows, cols, p));
      return new Result(
          pruned,
          (System.nanoTime() - start) / 1e9,
          damp,
          "the Hessian is not positive definite even with dampening "
              + damp
              + "; used magnitude pruning");
    }
    h = null;
    int size = Math.min(blockSize, cols); // one block holds every column at most
    if (p instanceof SparsityPattern.NofM nm && size % nm.m() != 0) {
      size = Math.max(nm.m(), size - size % nm.m());
    }
    process(weights, rows, cols, hinv, p, size);
    String warning =
        damp == dampPercent
            ? null
            : "the Hessian needed dampening "
                + damp
                + " (asked "
                + dampPercent
                + ") to be positive definite";
    return new Result(weights, (System.nanoTime() - start) / 1e9, damp, warning);
  }

  /** The block loop of {@code fasterprune} on {@code w [rows][cols]}, in place. */
  private static void process(
      float[] w, int rows, int cols, float[] hinv, SparsityPattern p, int blockSize) {
    float[] err = new float[rows * blockSize]; // Err1 [rows][blockSize]
    int rowsPerTask = 16;
    for (int i1 = 0; i1 < cols; i1 += blockSize) {
      int i2 = Math.min(i1 + blockSize, cols);
      int count = i2 - i1;
      int first = i1;
      // unstructured: mask1 [rows][count] from the block as it stands
      boolean[] blockKeep =
          p instanceof SparsityPattern.Unstructured u
              ? Masks.select(saliency(w, rows, cols, hinv, first, count), rows, count, u)
              : null;
      SparsityPattern.NofM nm = p instanceof SparsityPattern.NofM x ? x : null;
      Parallel.forEach(
          (rows + rowsPerTask - 1) / rowsPerTask,
          t -> {
            float[] block = new float[count]; // W1[n, :]
            int m = nm == null ? 1 : nm.m();
            float[] runScores = new float[m];
            boolean[] runKeep = new boolean[m];
            for (int n = t * rowsPerTask; n < Math.min(rows, (t + 1) * rowsPerTask); n++) {
              System.arraycopy(w, n * cols + first, block, 0, count);
              for (int i = 0; i < count; i++) {
                int col = first + i;
                float d = hinv[col * cols + col];
                if (nm != null
                    && i % m == 0) { // mask of the run [i, i + len) from W1 as updated so far
                  int len = Math.min(m, count - i);
                  for (int j = 0; j < len; j++) {
                    float dj = hinv[(col + j) * cols + col + j];
                    runScores[j] = block[i + j] * block[i + j] / (dj * dj);
                  }
                  Arrays.fill(runKeep, 0, len, true);
                  Masks.pruneLowest(runScores, 0, len, Math.max(0, len - nm.n()), runKeep);
                }
                boolean keep = nm != null ? runKeep[i % m] : blockKeep[n * count + i];
                float wi = block[i];
                if (keep) {
                  w[n * cols + col] = wi;
                  err[n * blockSize + i] = 0f;
                } else {
                  w[n * cols + col] = 0f;
                  float e = wi / d; // err = (w - 0) / [H^-1]_ii
                  err[n * blockSize + i] = e;
                  // W1[n, j>i] -= err * Hinv[i, j>i]  (a kept column's err is 0: nothing to do)
                  Ops.subtractScaled(e, hinv, col * cols + col + 1, block, i + 1, count - i - 1);
                }
              }
            }
          });
      if (i2 < cols) {
        // W[:, i2:] -= Err1 Hinv[i1:i2, i2:]  (the lazy batch update)
        Gemm.parallelMultiplyAdd(
            -1f,
            err,
            0,
            blockSize,
            1,
            hinv,
            i1 * cols + i2,
            cols,
            w,
            i2,
            cols,
            rows,
            cols - i2,
            count);
      }
    }
  }

  /**
   * {@code W1^2 / diag(Hinv1)^2} of the block {@code [first, first + count)}, {@code
   * [rows][count]}, in float32.
   */
  private static float[] saliency(
      float[] w, int rows, int cols, float[] hinv, int first, int count) {
    float[] s = new float[rows * count];
    float[] d2 = new float[count];
    for (int i = 0; i < count; i++) {
      float d = hinv[(first + i) * cols + first + i];
      d2[i] = d * d;
    }
    Parallel.forEach(
        rows,
        n -> {
          for (int i = 0; i < count; i++) {
            float v = w[n * cols + first + i];
            s[n * count + i] = v * v / d2[i];
          }
        });
    return s;
  }
}
