package llmc.quantize;

import llmc.model.kernels.Gemm;
import llmc.model.kernels.Parallel;

/**
 * Blocked Cholesky factorization and triangular inverse in float32 (as PyTorch's GPTQ), with every
 * trailing update done by {@link Gemm}: {@code n^3/3} multiply-adds each, at matrix-product speed.
 */
final class Cholesky {
  static final int NB = 128;

  private Cholesky() {}

  /**
   * GPTQ's {@code Hinv = cholesky(cholesky_inverse(cholesky(H)), upper=True)}: the upper triangular
   * {@code U} with {@code U^T U = H^-1}, {@code [n][n]} row-major (zeros below the diagonal), or
   * {@code null} when {@code H} is not positive definite. {@code h} is not modified.
   *
   * <p>One factorization and one inverse instead of three: with {@code P} the reversal permutation,
   * {@code P H P = L L^T} gives {@code H = V V^T} with {@code V = P L P} upper triangular, so
   * {@code H^-1 = V^-T V^-1} and {@code U = V^-1 = P L^-1 P}. Reversing both indices of a row-major
   * square matrix is reversing its flat array.
   */
  static float[] upperFactorOfInverse(float[] h, int n) {
    float[] m = reversed(h); // P H P
    return upperFactorOfReversedInPlace(m, n) ? m : null;
  }

  /**
   * {@link #upperFactorOfInverse} in the memory of its argument: {@code a} holds {@code P H P} (the
   * reversed Hessian) and on success {@code U}; on failure the lower triangle and the upper
   * triangles of the diagonal {@link #NB}-blocks are spoiled (see {@link DiagonalBlocks}). The
   * arithmetic is that of {@link #upperFactorOfInverse}, so the bits are too.
   */
  static boolean upperFactorOfReversedInPlace(float[] a, int n) {
    if (!factorInPlace(a, n)) {
      return false;
    }
    invertLowerInPlace(a, n); // L^-1
    reverseInPlace(a); // P L^-1 P
    return true;
  }

  /**
   * What {@link #factorInPlace} writes above the diagonal: only inside the diagonal blocks of
   * {@link #NB} rows (its trailing updates work on row strips of that height aligned to the
   * blocks), never elsewhere in the strict upper triangle, which keeps the matrix's own values
   * there. These blocks' strict upper triangles, saved before a factorization that may fail, give
   * the whole symmetric matrix back (all but its diagonal) without a copy of it: {@code n * NB / 2}
   * floats.
   */
  static final class DiagonalBlocks {
    private final float[] upper; // per block b, row i, columns i+1 .. end of the block

    private DiagonalBlocks(float[] upper) {
      this.upper = upper;
    }

    static DiagonalBlocks save(float[] a, int n) {
      float[] upper = new float[Math.toIntExact(count(n))];
      int at = 0;
      for (int b0 = 0; b0 < n; b0 += NB) {
        int b1 = Math.min(b0 + NB, n);
        for (int i = b0; i < b1; i++) {
          System.arraycopy(a, i * n + i + 1, upper, at, b1 - i - 1);
          at += b1 - i - 1;
        }
      }
      return new DiagonalBlocks(upper);
    }

    private static long count(int n) {
      long c = 0;
      for (int b0 = 0; b0 < n; b0 += NB) {
        long m = Math.min(NB, n - b0);
        c += m * (m - 1) / 2;
      }
      return c;
    }

    /**
     * The symmetric matrix {@code factorInPlace} started from, but for the diagonal: the diagonal
     * blocks' upper triangles put back, then the strict upper triangle mirrored into the lower.
     */
    void restore(float[] a, int n) {
      int at = 0;
      for (int b0 = 0; b0 < n; b0 += NB) {
        int b1 = Math.min(b0 + NB, n);
        for (int i = b0; i < b1; i++) {
          System.arraycopy(upper, at, a, i * n + i + 1, b1 - i - 1);
          at += b1 - i - 1;
        }
      }
      for (int i = 0; i < n; i++) {
        for (int j = 0; j < i; j++) {
          a[i * n + j] = a[j * n + i];
        }
      }
    }
  }

  static float[] reversed(float[] a) {
    float[] r = new float[a.length];
    for (int i = 0, j = a.length - 1; i < a.length; i++, j--) {
      r[i] = a[j];
    }
    return r;
  }

  static void reverseInPlace(float[] a) {
    for (int i = 0, j = a.length - 1; i < j; i++, j--) {
      float t = a[i];
      a[i] = a[j];
      a[j] = t;
    }
  }

  /**
   * Right-looking blocked Cholesky {@code A = L L^T}: on return the lower triangle of {@code a}
   * holds {@code L} and the strict upper triangle is zero. False when a pivot is not positive (or
   * NaN).
   */
  static boolean factorInPlace(float[] a, int n) {
    float[] panel = new float[n * NB]; // L21 [n - k1][nb]
    float[] panelT = new float[NB * n]; // L21^T [nb][n - k1]
    float[] inverseT = new float[NB * NB]; // L11^-T [nb][nb]
    for (int blockStart = 0; blockStart < n; blockStart += NB) {
      int k0 = blockStart;
      int k1 = Math.min(k0 + NB, n);
      int nb = k1 - k0;
      if (!factorDiagonalBlock(a, n, k0, nb)) {
        return false;
      }
      int m = n - k1;
      if (m == 0) {
        break;
      }
      // L21 = A21 L11^-T, [m][nb]
      invertLowerBlockTransposed(a, n, k0, nb, inverseT);
      int rowsPerTask = 64;
      Parallel.forEach(
          (m + rowsPerTask - 1) / rowsPerTask,
          t -> {
            int r0 = t * rowsPerTask;
            int rows = Math.min(rowsPerTask, m - r0);
            java.util.Arrays.fill(panel, r0 * nb, (r0 + rows) * nb, 0f);
            Gemm.multiplyAdd(
                1f, a, (k1 + r0) * n + k0, n, 1, inverseT, 0, nb, panel, r0 * nb, nb, rows, nb, nb);
            for (int r = r0; r < r0 + rows; r++) {
              System.arraycopy(panel, r * nb, a, (k1 + r) * n + k0, nb);
              for (int p = 0; p < nb; p++) {
                panelT[p * m + r] = panel[r * nb + p];
              }
            }
          });
      // A22 -= L21 L21^T, lower triangle only: row strip [r0, r0 + rows) needs columns [0, r0 +
      // rows)
      int strip = NB; // DiagonalBlocks relies on strips aligned to the NB-blocks
      int colTile = 1024;
      int strips = (m + strip - 1) / strip;
      int[] taskStrip = new int[strips * ((m + colTile - 1) / colTile)];
      int[] taskCol = new int[taskStrip.length];
      int tasks = 0;
      for (int s = 0; s < strips; s++) {
        int end = Math.min((s + 1) * strip, m);
        for (int j0 = 0; j0 < end; j0 += colTile) {
          taskStrip[tasks] = s;
          taskCol[tasks++] = j0;
        }
      }
      Parallel.forEach(
          tasks,
          t -> {
            int r0 = taskStrip[t] * strip;
            int rows = Math.min(strip, m - r0);
            int j0 = taskCol[t];
            int cols = Math.min(colTile, r0 + rows - j0);
            Gemm.multiplyAdd(
                -1f,
                panel,
                r0 * nb,
                nb,
                1,
                panelT,
                j0,
                m,
                a,
                (k1 + r0) * n + k1 + j0,
                n,
                rows,
                cols,
                nb);
          });
    }
    for (int i = 0; i < n; i++) {
      java.util.Arrays.fill(a, i * n + i + 1, (i + 1) * n, 0f);
    }
    return true;
  }

  /** Unblocked Cholesky of the {@code nb x nb} diagonal block at {@code (k0, k0)}. */
  private static boolean factorDiagonalBlock(float[] a, int n, int k0, int nb) {
    for (int j = k0; j < k0 + nb; j++) {
      int rj = j * n;
      float d = a[rj + j];
      for (int p = k0; p < j; p++) {
        d -= a[rj + p] * a[rj + p];
      }
      if (!(d > 0f)) {
        return false;
      }
      float ljj = (float) Math.sqrt(d);
      a[rj + j] = ljj;
      for (int i = j + 1; i < k0 + nb; i++) {
        int ri = i * n;
        float s = a[ri + j];
        for (int p = k0; p < j; p++) {
          s -= a[ri + p] * a[rj + p];
        }
        a[ri + j] = s / ljj;
      }
    }
    return true;
  }

  /** {@code out[p][j] = (L11^-1)[j][p]} for the lower block {@code L11} at {@code (k0, k0)}. */
  private static void invertLowerBlockTransposed(float[] a, int n, int k0, int nb, float[] out) {
    float[] inv = new float[nb * nb];
    invertLowerSmall(a, k0 * n + k0, n, nb, inv);
    for (int j = 0; j < nb; j++) {
      for (int p = 0; p < nb; p++) {
        out[p * nb + j] = inv[j * nb + p];
      }
    }
  }

  /**
   * Forward substitution: {@code inv = L^-1} for the lower {@code nb x nb} block {@code l(i, j) =
   * a[off + i*ld + j]}.
   */
  private static void invertLowerSmall(float[] a, int off, int ld, int nb, float[] inv) {
    java.util.Arrays.fill(inv, 0, nb * nb, 0f); // the upper triangle is read as zeros
    for (int i = 0; i < nb; i++) {
      float lii = a[off + i * ld + i];
      inv[i * nb + i] = 1f / lii;
      for (int j = 0; j < i; j++) {
        float s = 0f;
        for (int p = j; p < i; p++) {
          s += a[off + i * ld + p] * inv[p * nb + j];
        }
        inv[i * nb + j] = -s / lii;
      }
    }
  }

  /**
   * {@code X = L^-1} for lower triangular {@code L [n][n]}, by block rows: {@code X_ii = L_ii^-1},
   * {@code X[i, :i] = -X_ii (L[i, :i] X[:i, :i])}.
   */
  static float[] invertLower(float[] l, int n) {
    float[] x = l.clone();
    invertLowerInPlace(x, n);
    return x;
  }

  /**
   * {@link #invertLower} in the memory of {@code L} (zero above its diagonal): block row {@code i}
   * of {@code X} needs block row {@code i} of {@code L} and the rows of {@code X} above it, which
   * have replaced those of {@code L} by then. Only {@code [NB][n]} more floats.
   */
  static void invertLowerInPlace(float[] x, int n) {
    float[] t = new float[NB * n]; // L[i, :i] X[:i, :i], [nb][r0]
    float[] xii = new float[NB * NB];
    int colTile = 256;
    for (int rowStart = 0; rowStart < n; rowStart += NB) {
      int r0 = rowStart;
      int nb = Math.min(NB, n - r0);
      invertLowerSmall(x, r0 * n + r0, n, nb, xii);
      for (int i = 0; i < nb; i++) {
        System.arraycopy(xii, i * nb, x, (r0 + i) * n + r0, i + 1);
      }
      if (r0 == 0) {
        continue;
      }
      int width = r0;
      int tiles = (width + colTile - 1) / colTile;
      // T[:, c0:c1] = L[i, c0:r0] X[c0:r0, c0:c1] (X is zero above its diagonal, so p >= c0
      // suffices)
      Parallel.forEach(
          tiles,
          tile -> {
            int c0 = tile * colTile;
            int cols = Math.min(colTile, width - c0);
            for (int i = 0; i < nb; i++) {
              java.util.Arrays.fill(t, i * width + c0, i * width + c0 + cols, 0f);
            }
            Gemm.multiplyAdd(
                1f, x, r0 * n + c0, n, 1, x, c0 * n + c0, n, t, c0, width, nb, cols, r0 - c0);
          });
      // L[i, :i] is read: X[i, :i] = -X_ii T goes in its place
      for (int i = 0; i < nb; i++) {
        java.util.Arrays.fill(x, (r0 + i) * n, (r0 + i) * n + r0, 0f);
      }
      Parallel.forEach(
          tiles,
          tile -> {
            int c0 = tile * colTile;
            int cols = Math.min(colTile, width - c0);
            Gemm.multiplyAdd(-1f, xii, 0, nb, 1, t, c0, width, x, r0 * n + c0, n, nb, cols, nb);
          });
    }
  }
}
