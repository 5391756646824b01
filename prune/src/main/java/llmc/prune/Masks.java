package llmc.prune;

import java.util.Arrays;
import llmc.model.kernels.Parallel;

/**
 * Masks from scores: the pattern applied to {@code scores [rows][cols]}, the lowest-scored weights
 * pruned.
 *
 * <p>Order and ties: scores are ordered by {@link Float#compare} (so {@code -0.0 < 0.0}, and NaN is
 * above every number: never pruned before one); among equal scores the weight at the lower index
 * (row-major within the comparison group, i.e. the lower column within a row or an N:M run) is
 * pruned first. The result is therefore a function of the scores alone, for any thread count.
 */
public final class Masks {
  /** Runs no longer than this are ordered by insertion instead of a selection. */
  private static final int SMALL = 16;

  /**
   * Groups at least this long are selected by radix (two histogram passes) instead of quickselect.
   */
  static final int RADIX = 1 << 16;

  private Masks() {}

  /**
   * {@code keep[r*cols+c]}: whether weight {@code (r, c)} survives {@code p} applied to {@code
   * scores [rows][cols]} (ties as in the class comment). Unstructured: each group (the matrix, or
   * each row) loses {@code floor(size * sparsity)} weights. N:M: each run of {@code m} columns of a
   * row keeps its {@code n} highest.
   */
  public static boolean[] select(float[] scores, int rows, int cols, SparsityPattern p) {
    if (rows < 0 || cols < 0 || scores.length != (long) rows * cols) {
      throw new IllegalArgumentException(
          "scores must be rows*cols = " + rows + "*" + cols + " long, got " + scores.length);
    }
    boolean[] keep = new boolean[scores.length];
    Arrays.fill(keep, true);
    switch (p) {
      case SparsityPattern.Unstructured u when u.compare() == Compare.MATRIX ->
          pruneLowest(scores, 0, scores.length, prunedCount(scores.length, u.sparsity()), keep);
      case SparsityPattern.Unstructured u -> {
        int k = prunedCount(cols, u.sparsity());
        Parallel.forEach(rows, r -> pruneLowest(scores, r * cols, cols, k, keep));
      }
      case SparsityPattern.NofM nm -> {
        int n = nm.n();
        int m = nm.m();
        Parallel.forEach(
            rows,
            r -> {
              for (int c = 0; c < cols; c += m) {
                int len = Math.min(m, cols - c);
                pruneLowest(scores, r * cols + c, len, Math.max(0, len - n), keep);
              }
            });
      }
    }
    return keep;
  }

  /** {@code floor(size * sparsity)}, as the reference code's {@code int(numel * sparsity)}. */
  static int prunedCount(int size, double sparsity) {
    return (int) Math.min(size, (long) (size * sparsity));
  }

  /**
   * Clears {@code keep[from + i]} for the {@code k} lowest of {@code scores[from .. from + len)}
   * (ties: lower index first). Writes only inside that range.
   */
  static void pruneLowest(float[] scores, int from, int len, int k, boolean[] keep) {
    if (k <= 0) {
      return;
    }
    if (k >= len) {
      Arrays.fill(keep, from, from + len, false);
      return;
    }
    if (len <= SMALL) {
      pruneLowestSmall(scores, from, len, k, keep);
      return;
    }
    int threshold = kthLowestKey(scores, from, len, k - 1); // the k-th lowest score, as a key
    int below = 0; // scores strictly below the threshold
    for (int i = from; i < from + len; i++) {
      if (key(scores[i]) < threshold) {
        below++;
      }
    }
    int ties = k - below; // weights at the threshold to prune, lowest index first
    for (int i = from; i < from + len; i++) {
      int order = Integer.compare(key(scores[i]), threshold);
      if (order < 0 || (order == 0 && ties-- > 0)) {
        keep[i] = false;
      }
    }
  }

  /**
   * An int whose signed order is {@link Float#compare}'s order of floats: the bits of a
   * non-negative float, the magnitude bits flipped for a negative one ({@code -0.0} just below
   * {@code 0.0}); every NaN maps to one key above {@code +Infinity}.
   */
  static int key(float v) {
    int bits = Float.floatToIntBits(v);
    return bits ^ ((bits >> 31) & 0x7fffffff);
  }

  /** The key of the {@code k}-th lowest (from 0) of {@code scores[from .. from + len)}. */
  static int kthLowestKey(float[] scores, int from, int len, int k) {
    if (len >= RADIX) {
      return radixSelect(scores, from, len, k);
    }
    int[] keys = new int[len];
    for (int i = 0; i < len; i++) {
      keys[i] = key(scores[from + i]);
    }
    return quickselect(keys, k);
  }

  /**
   * Radix selection in two passes over the data: a histogram of the high 16 bits of the (unsigned,
   * order-preserving) keys finds the bucket of the {@code k}-th lowest, a histogram of the low 16
   * bits within that bucket finds the key.
   */
  static int radixSelect(float[] scores, int from, int len, int k) {
    int[] high = new int[1 << 16];
    for (int i = from; i < from + len; i++) {
      high[(key(scores[i]) ^ Integer.MIN_VALUE) >>> 16]++;
    }
    int bucket = 0;
    int rank = k; // rank within the bucket
    while (rank >= high[bucket]) {
      rank -= high[bucket++];
    }
    int[] low = new int[1 << 16];
    for (int i = from; i < from + len; i++) {
      int u = key(scores[i]) ^ Integer.MIN_VALUE;
      if (u >>> 16 == bucket) {
        low[u & 0xffff]++;
      }
    }
    int l = 0;
    while (rank >= low[l]) {
      rank -= low[l++];
    }
    return ((bucket << 16) | l) ^ Integer.MIN_VALUE;
  }

  /**
   * The {@code k}-th lowest (from 0) of {@code a}, reordering {@code a}: quickselect (Hoare
   * partition around a median of three, expected linear time), finished by a sort when a range is
   * short or the partitions stop shrinking fast enough.
   */
  static int quickselect(int[] a, int k) {
    int lo = 0;
    int hi = a.length - 1;
    int budget = 2 * (32 - Integer.numberOfLeadingZeros(a.length)) + 4;
    while (hi > lo) {
      if (hi - lo < 32 || budget-- == 0) {
        Arrays.sort(a, lo, hi + 1);
        return a[k];
      }
      int x = a[lo];
      int y = a[(lo + hi) >>> 1];
      int z = a[hi];
      int pivot = Math.max(Math.min(x, y), Math.min(Math.max(x, y), z)); // median of three
      int i = lo;
      int j = hi;
      while (i <= j) { // [lo, i) <= pivot, (j, hi] >= pivot
        while (a[i] < pivot) {
          i++;
        }
        while (a[j] > pivot) {
          j--;
        }
        if (i <= j) {
          int t = a[i];
          a[i++] = a[j];
          a[j--] = t;
        }
      }
      if (k <= j) {
        hi = j;
      } else if (k >= i) {
        lo = i;
      } else {
        return a[k]; // (j, i) holds only the pivot
      }
    }
    return a[k];
  }

  /** {@link #pruneLowest} for a short run: indices ordered by (score, index) by insertion. */
  private static void pruneLowestSmall(float[] scores, int from, int len, int k, boolean[] keep) {
    int[] order = new int[len];
    for (int i = 0; i < len; i++) {
      int j = i;
      while (j > 0 && Float.compare(scores[from + order[j - 1]], scores[from + i]) > 0) {
        order[j] = order[j - 1];
        j--;
      }
      order[j] = i;
    }
    for (int i = 0; i < k; i++) {
      keep[from + order[i]] = false;
    }
  }

  /** {@code w} with zeros where {@code !keep} (a new array). */
  public static float[] apply(float[] w, boolean[] keep) {
    if (w.length != keep.length) {
      throw new IllegalArgumentException(
          "w and keep differ in length: " + w.length + " vs " + keep.length);
    }
    float[] out = new float[w.length];
    for (int i = 0; i < w.length; i++) {
      out[i] = keep[i] ? w[i] : 0f;
    }
    return out;
  }

  /**
   * The fraction of entries that are exactly zero ({@code 0.0} or {@code -0.0}); 0 for an empty
   * array.
   */
  public static double sparsity(float[] w) {
    if (w.length == 0) {
      return 0;
    }
    long zeros = 0;
    for (float v : w) {
      if (v == 0f) {
        zeros++;
      }
    }
    return (double) zeros / w.length;
  }

  /**
   * Whether every run of {@code m} consecutive columns of every row of {@code w [rows][cols]} (runs
   * from column 0; the last may be shorter) has at most {@code n} non-zeros (NaN counts as
   * non-zero).
   */
  public static boolean satisfies(float[] w, int rows, int cols, int n, int m) {
    if (w.length != (long) rows * cols || m < 1) {
      throw new IllegalArgumentException("w must be rows*cols long and m positive");
    }
    for (int r = 0; r < rows; r++) {
      for (int c = 0; c < cols; c += m) {
        int nonZeros = 0;
        for (int i = r * cols + c, end = r * cols + Math.min(c + m, cols); i < end; i++) {
          if (w[i] != 0f) {
            nonZeros++;
          }
        }
        if (nonZeros > n) {
          return false;
        }
      }
    }
    return true;
  }
}
