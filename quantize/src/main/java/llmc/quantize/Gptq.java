package llmc.quantize;

import java.util.stream.IntStream;
import llmc.calibration.InputStatistics;
import llmc.formats.QuantizedTensor;
import llmc.model.kernels.Gemm;
import llmc.model.kernels.Ops;
import llmc.model.kernels.Parallel;

/**
 * GPTQ (Frantar et al. 2022, "GPTQ: Accurate Post-Training Quantization for Generative Pre-trained
 * Transformers"), as the reference code's {@code fasterquant}: quantize the columns of {@code W}
 * one at a time and spread each column's error over the columns not yet quantized, using the upper
 * Cholesky factor of {@code H^-1} (Algorithm 1), with lazy batch updates of {@code blockSize}
 * columns.
 *
 * <p>Rows are independent given {@code Hinv}, so the in-block loop runs row by row (a row's block
 * stays in L1) and in parallel; the lazy update is one matrix product per block.
 */
public final class Gptq {

  private Gptq() {}

  /**
   * @param scheme the grid
   * @param dampPercent dampening: {@code dampPercent * mean(diag H)} is added to the diagonal
   * @param blockSize columns per lazy batch update (128 in the paper)
   * @param actOrder process columns by decreasing {@code diag(H)} ("desc_act")
   * @param staticGroups all group parameters from the original {@code W} before any update
   * @param freshGroups a group's parameters from its columns fully updated so far, instead of the
   *     reference code's convention (the columns as they stand outside the current block: earlier
   *     blocks' lazy updates applied, the current block's not yet)
   */
  public record Options(
      QuantScheme scheme,
      double dampPercent,
      int blockSize,
      boolean actOrder,
      boolean staticGroups,
      boolean freshGroups) {

    public Options {
      if (blockSize < 1) {
        throw new IllegalArgumentException("block size must be positive, got " + blockSize);
      }
      if (!(dampPercent >= 0)) {
        throw new IllegalArgumentException("dampening must be >= 0, got " + dampPercent);
      }
    }

    /** The reference code's group convention. */
    public Options(
        QuantScheme scheme,
        double dampPercent,
        int blockSize,
        boolean actOrder,
        boolean staticGroups) {
      this(scheme, dampPercent, blockSize, actOrder, staticGroups, false);
    }

    /** Dampening 0.01, blocks of 128, no act-order, dynamic groups. */
    public static Options of(QuantScheme scheme) {
      return new Options(scheme, 0.01, 128, false, false, false);
    }

    public Options withActOrder(boolean actOrder) {
      return new Options(scheme, dampPercent, blockSize, actOrder, staticGroups, freshGroups);
    }

    public Options withStaticGroups(boolean staticGroups) {
      return new Options(scheme, dampPercent, blockSize, actOrder, staticGroups, freshGroups);
    }

    public Options withFreshGroups(boolean freshGroups) {
      return new Options(scheme, dampPercent, blockSize, actOrder, staticGroups, freshGroups);
    }
  }

  /**
   * @param quantized codes, scales, zeros and {@code gIdx} of the result
   * @param loss the reference code's {@code Losses.sum()}: {@code sum (w - q)^2 / Hinv_ii^2 / 2}
   * @param seconds wall time of {@link #quantize}
   * @param damp the dampening fraction actually used ({@code dampPercent * 10^retries})
   * @param fellBackToRtn true when no dampening made {@code H} positive definite and RTN was used
   * @param warning what went wrong, or null
   */
  public record Result(
      QuantizedTensor quantized,
      double loss,
      double seconds,
      double damp,
      boolean fellBackToRtn,
      String warning) {}

  /** {@code H = 2/n X^T X} of {@code x [n][cols]}; see {@link InputStatistics}. */
  public static float[] hessian(float[] x, int n, int cols) {
    InputStatistics h = new InputStatistics(cols);
    h.add(x, n);
    return h.hessian();
  }

  /**
   * Quantizes {@code w [rows][cols]} (out x in, row-major) given {@code hessian [cols][cols]}
   * ({@code H = 2/n sum x x^T} of the inputs). Neither array is modified.
   */
  public static Result quantize(float[] w, int rows, int cols, float[] hessian, Options options) {
    if (hessian.length != (long) cols * cols) {
      throw new IllegalArgumentException("w must be rows*cols and hessian cols*cols long");
    }
    return quantizeConsuming(w, rows, cols, hessian.clone(), options);
  }

  /**
   * {@link #quantize}, working in the memory of {@code hessian}, which is spoiled: the one
   * Hessian-sized array of the whole computation (act-order permutes it in place, and the inverse's
   * factor replaces it, {@link InverseHessian#factor}). {@code w} is not modified.
   */
  public static Result quantizeConsuming(
      float[] w, int rows, int cols, float[] hessian, Options options) {
    return run(w.clone(), w, rows, cols, hessian, options);
  }

  /**
   * {@link #quantizeConsuming}, working in the memory of {@code w} too, which is spoiled: no copy
   * of the matrix is made (0.94 GB for {@code down_proj} of a 70B-class model). The result is the
   * same bits.
   */
  public static Result quantizeInPlace(
      float[] w, int rows, int cols, float[] hessian, Options options) {
    return run(w, null, rows, cols, hessian, options);
  }

  /**
   * @param weights the working matrix {@code [rows][cols]}, changed
   * @param original the matrix as given, untouched, or null when {@code weights} is it (then what
   *     the RTN fallback needs is put back into {@code weights})
   */
  private static Result run(
      float[] weights, float[] original, int rows, int cols, float[] hessian, Options options) {
    if (options.scheme().grid() == QuantScheme.Grid.FP8_E4M3) {
      throw new IllegalArgumentException("GPTQ on the FP8 E4M3 grid is not implemented");
    }
    long start = System.nanoTime();
    if (weights.length != (long) rows * cols || hessian.length != (long) cols * cols) {
      throw new IllegalArgumentException("w must be rows*cols and hessian cols*cols long");
    }
    QuantScheme scheme = options.scheme();
    float[] h = hessian; // [cols][cols]
    InverseHessian.DeadColumns dead =
        original == null ? InverseHessian.fixDeadInputsSaving(h, weights, rows, cols) : null;
    if (original != null) {
      InverseHessian.fixDeadInputs(h, weights, rows, cols);
    }
    int size = scheme.columnsPerGroup(cols);
    int groups = scheme.groups(cols);
    float[] scales = new float[groups * rows]; // [G][N]
    int[] zeros = new int[groups * rows]; // [G][N]
    float[] mins =
        scheme.hasMin() ? new float[groups * rows] : null; // [G][N], ggml's _1 grids only
    if (options.staticGroups() || size == cols) { // per row: the whole row before any update
      fitGroups(weights, rows, cols, size, groups, scheme, scales, zeros, mins);
    }
    // Act-order: columns by decreasing H_ii (stable), W and H permuted alike.
    int[] perm = IntStream.range(0, cols).toArray();
    if (options.actOrder()) {
      float[] diag = new float[cols];
      for (int i = 0; i < cols; i++) {
        diag[i] = h[i * cols + i];
      }
      perm =
          IntStream.range(0, cols)
              .boxed()
              .sorted((a, b) -> Float.compare(diag[b], diag[a]))
              .mapToInt(Integer::intValue)
              .toArray();
      if (original == null) {
        permuteColumnsInPlace(weights, rows, cols, perm);
      } else {
        weights = permuteColumns(weights, rows, cols, perm);
      }
      permuteSymmetricInPlace(h, cols, perm);
    }
    // Hinv = cholesky(H^-1, upper): the rows of the inverse Hessian GPTQ needs (Section 4, Step 3)
    InverseHessian.Factor factor = InverseHessian.factor(h, cols, options.dampPercent());
    float[] hinv = factor.upper();
    double damp = factor.damp();
    if (hinv == null) {
      if (original == null) { // the matrix as given, back from the working one
        if (options.actOrder()) {
          int[] inverse = new int[cols];
          for (int i = 0; i < cols; i++) {
            inverse[perm[i]] = i;
          }
          permuteColumnsInPlace(weights, rows, cols, inverse);
        }
        dead.restore(weights, rows, cols);
      }
      QuantizedTensor q =
          Rtn.quantize(original != null ? original : weights, rows, cols, scheme, Rtn.Clip.NONE);
      return new Result(
          q,
          Double.NaN,
          (System.nanoTime() - start) / 1e9,
          damp,
          true,
          "the Hessian is not positive definite even with dampening " + damp + "; used RTN");
    }
    h = null;
    boolean[] pruned = prunedWeights(weights, scheme);
    byte[] codes = new byte[rows * cols]; // [rows][cols] in processing order
    double[] rowLoss = new double[rows];
    process(
        weights, rows, cols, hinv, options, size, scales, zeros, mins, pruned, perm, codes,
        rowLoss);
    if (options.actOrder()) {
      codes = unpermuteColumns(codes, rows, cols, perm);
    }
    int[] gIdx = new int[cols];
    for (int i = 0; i < cols; i++) {
      // act-order with dynamic groups: groups are consecutive in processing order
      gIdx[perm[i]] = options.actOrder() && !options.staticGroups() ? i / size : perm[i] / size;
    }
    double loss = 0;
    for (double l : rowLoss) {
      loss += l;
    }
    String warning =
        damp == options.dampPercent()
            ? null
            : "the Hessian needed dampening "
                + damp
                + " (asked "
                + options.dampPercent()
                + ") to be positive definite";
    QuantizedTensor q =
        new QuantizedTensor(
            rows,
            cols,
            scheme.bits(),
            scheme.groupSize(),
            scheme.symmetric(),
            codes,
            scales,
            zeros,
            gIdx,
            scheme.scaleDtype(),
            mins);
    return new Result(q, loss, (System.nanoTime() - start) / 1e9, damp, false, warning);
  }

  /**
   * The block loop of {@code fasterquant}, on {@code w [rows][cols]} already in processing order
   * (package-private for {@code KernelBenchmark}, which times it alone).
   */
  static void process(
      float[] w,
      int rows,
      int cols,
      float[] hinv,
      Options options,
      int size,
      float[] scales,
      int[] zeros,
      float[] mins,
      boolean[] pruned,
      int[] perm,
      byte[] codes,
      double[] rowLoss) {
    QuantScheme scheme = options.scheme();
    boolean dynamicGroups = !options.staticGroups() && size < cols;
    int blockSize = Math.min(options.blockSize(), cols); // one block holds every column at most
    float[] err = new float[rows * blockSize]; // Err1 [rows][blockSize]
    int rowsPerTask = 16;
    for (int i1 = 0; i1 < cols; i1 += blockSize) {
      int i2 = Math.min(i1 + blockSize, cols);
      int count = i2 - i1;
      int first = i1;
      Parallel.forEach(
          (rows + rowsPerTask - 1) / rowsPerTask,
          t -> {
            float[] block = new float[count]; // W1[n, :]
            for (int n = t * rowsPerTask; n < Math.min(rows, (t + 1) * rowsPerTask); n++) {
              System.arraycopy(w, n * cols + first, block, 0, count);
              double loss = 0;
              float s = 0f;
              int z = 0;
              float m = 0f;
              for (int i = 0; i < count; i++) {
                int col = first + i;
                int group;
                if (dynamicGroups) {
                  group = col / size;
                  if (col % size == 0) {
                    fitDynamicGroup(
                        w, block, err, hinv, n, rows, cols, first, i, blockSize, size, options,
                        scales, zeros, mins, pruned, group);
                  }
                } else {
                  group = options.staticGroups() ? perm[col] / size : 0;
                }
                s = scales[group * rows + n];
                z = zeros[group * rows + n];
                m = mins == null ? 0f : mins[group * rows + n];
                float wi = block[i];
                // A pruned weight stays exactly 0 (code z); its update so far is compensated like
                // any error.
                int code = pruned != null && pruned[n * cols + col] ? z : scheme.code(wi, s, z, m);
                codes[n * cols + col] = (byte) code;
                float q = QuantScheme.value(code, s, z, m);
                float d = hinv[col * cols + col];
                loss += (double) ((wi - q) * (wi - q)) / ((double) d * d);
                float e = (wi - q) / d; // err = (w - q) / [H^-1]_qq  (Eq. 3)
                err[n * blockSize + i] = e;
                // W1[n, j>i] -= err * Hinv[i, j>i]
                Ops.subtractScaled(e, hinv, col * cols + col + 1, block, i + 1, count - i - 1);
              }
              rowLoss[n] += loss / 2;
            }
          });
      if (i2 < cols) {
        // W[:, i2:] -= Err1 Hinv[i1:i2, i2:]  (the lazy batch update, Section 4 Step 2)
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

  /** Scale and zero of row {@code n}'s group starting at processing column {@code first + i}. */
  private static void fitDynamicGroup(
      float[] w,
      float[] block,
      float[] err,
      float[] hinv,
      int n,
      int rows,
      int cols,
      int first,
      int i,
      int blockSize,
      int size,
      Options options,
      float[] scales,
      int[] zeros,
      float[] mins,
      boolean[] pruned,
      int group) {
    int col = first + i;
    int end = Math.min(col + size, cols);
    int blockEnd = first + block.length;
    float min = Float.POSITIVE_INFINITY;
    float max = Float.NEGATIVE_INFINITY;
    for (int c = col; c < end; c++) {
      if (pruned != null && pruned[n * cols + c]) {
        continue; // it will be 0: not part of the range to cover
      }
      float v;
      if (!options.freshGroups()) {
        v = w[n * cols + c]; // outside the current block's updates
      } else if (c < blockEnd) {
        v = block[c - first];
      } else { // beyond the block: apply its pending updates
        v = w[n * cols + c];
        for (int j = 0; j < i; j++) {
          v -= err[n * blockSize + j] * hinv[(first + j) * cols + c];
        }
      }
      min = Math.min(min, v);
      max = Math.max(max, v);
    }
    if (min > max) { // every weight of the group is pruned
      min = 0f;
      max = 0f;
    }
    QuantScheme scheme = options.scheme();
    float s = scheme.scale(min, max);
    scales[group * rows + n] = s;
    zeros[group * rows + n] = scheme.zero(min, s);
    if (mins != null) {
      mins[group * rows + n] = scheme.min(min);
    }
  }

  /**
   * The weights that are exactly 0 in {@code w} (a pruned model's zeros), which GPTQ then keeps at
   * 0, or null when there are none or the grid cannot hold 0 exactly (ggml's _1 types, whose levels
   * are {@code d q + m}).
   */
  static boolean[] prunedWeights(float[] w, QuantScheme scheme) {
    if (scheme.hasMin()) {
      return null;
    }
    boolean[] pruned = null; // made at the first zero: a dense matrix needs none
    for (int i = 0; i < w.length; i++) {
      if (w[i] == 0f) {
        if (pruned == null) {
          pruned = new boolean[w.length];
        }
        pruned[i] = true;
      }
    }
    return pruned;
  }

  /** Group parameters from {@code w} as it is (static groups; per-row grids). */
  private static void fitGroups(
      float[] w,
      int rows,
      int cols,
      int size,
      int groups,
      QuantScheme scheme,
      float[] scales,
      int[] zeros,
      float[] mins) {
    for (int n = 0; n < rows; n++) {
      for (int g = 0; g < groups; g++) {
        int from = n * cols + g * size;
        float[] range = Rtn.range(w, from, Math.min(from + size, (n + 1) * cols));
        float s = scheme.scale(range[0], range[1]);
        scales[g * rows + n] = s;
        zeros[g * rows + n] = scheme.zero(range[0], s);
        if (mins != null) {
          mins[g * rows + n] = scheme.min(range[0]);
        }
      }
    }
  }

  static float[] permuteColumns(float[] w, int rows, int cols, int[] perm) {
    float[] p = new float[w.length];
    for (int n = 0; n < rows; n++) {
      for (int i = 0; i < cols; i++) {
        p[n * cols + i] = w[n * cols + perm[i]];
      }
    }
    return p;
  }

  /** {@link #permuteColumns} in {@code w}'s memory, through one row of scratch. */
  static void permuteColumnsInPlace(float[] w, int rows, int cols, int[] perm) {
    float[] row = new float[cols];
    for (int n = 0; n < rows; n++) {
      int at = n * cols;
      for (int i = 0; i < cols; i++) {
        row[i] = w[at + perm[i]];
      }
      System.arraycopy(row, 0, w, at, cols);
    }
  }

  static float[] permuteSymmetric(float[] h, int cols, int[] perm) {
    float[] p = new float[h.length];
    for (int i = 0; i < cols; i++) {
      int row = perm[i] * cols;
      for (int j = 0; j < cols; j++) {
        p[i * cols + j] = h[row + perm[j]];
      }
    }
    return p;
  }

  /**
   * {@link #permuteSymmetric} without a second matrix: each row's columns through one row of
   * scratch, then the rows moved along the permutation's cycles.
   */
  static void permuteSymmetricInPlace(float[] h, int cols, int[] perm) {
    float[] row = new float[cols];
    for (int i = 0; i < cols; i++) {
      int at = i * cols;
      for (int j = 0; j < cols; j++) {
        row[j] = h[at + perm[j]];
      }
      System.arraycopy(row, 0, h, at, cols);
    }
    boolean[] placed = new boolean[cols];
    for (int start = 0; start < cols; start++) {
      if (placed[start] || perm[start] == start) {
        placed[start] = true;
        continue;
      }
      // new row i = old row perm[i], along the cycle start -> perm[start] -> ...
      System.arraycopy(h, start * cols, row, 0, cols);
      int i = start;
      while (perm[i] != start) {
        System.arraycopy(h, perm[i] * cols, h, i * cols, cols);
        placed[i] = true;
        i = perm[i];
      }
      System.arraycopy(row, 0, h, i * cols, cols);
      placed[i] = true;
    }
  }

  static byte[] unpermuteColumns(byte[] codes, int rows, int cols, int[] perm) {
    byte[] out = new byte[codes.length];
    for (int n = 0; n < rows; n++) {
      for (int i = 0; i < cols; i++) {
        out[n * cols + perm[i]] = codes[n * cols + i];
      }
    }
    return out;
  }
}
