package llmc.model.kernels;

/**
 * The Gram matrix of a block of rows, {@code S += X^T X} for {@code x [n][cols]}: the second moment
 * every calibration statistic is made of (GPTQ's Hessian, Wanda's column norms). {@code S} is
 * symmetric, so only its upper triangle ({@code j >= i}) is computed, in strips of {@link #STRIP}
 * rows from the diagonal: about half the products of a full {@code X^T X}.
 */
public final class Gram {
  static final int STRIP = 128;
  private static final int COL_TILE = 512;

  private Gram() {}

  /**
   * {@code s[i][j] += sum_t x[t][i] x[t][j]} for {@code j >= i} (entries below the diagonal are
   * left as they are or receive partial sums; read them through {@link #mirrorUpper}).
   *
   * @param x {@code [n][cols]} row-major, from {@code xOff}
   * @param s {@code [cols][cols]} row-major
   */
  public static void addUpper(float[] x, int xOff, int n, int cols, float[] s) {
    if (x.length - xOff < (long) n * cols || s.length != (long) cols * cols) {
      throw new IllegalArgumentException(
          "x must hold n*cols = "
              + (long) n * cols
              + " values from "
              + xOff
              + " and s cols*cols = "
              + (long) cols * cols);
    }
    int strips = (cols + STRIP - 1) / STRIP;
    int tilesPerStrip = (cols + COL_TILE - 1) / COL_TILE;
    // task (strip, tile): rows [i0, i0 + STRIP) x columns [i0 + tile * COL_TILE, + COL_TILE)
    Parallel.forEach(
        strips * tilesPerStrip,
        t -> {
          int i0 = (t / tilesPerStrip) * STRIP;
          int j0 = i0 + (t % tilesPerStrip) * COL_TILE;
          if (j0 >= cols) {
            return;
          }
          int m = Math.min(STRIP, cols - i0);
          int width = Math.min(COL_TILE, cols - j0);
          // A = X^T (A(i, t) = x[t*cols + i]), B = X
          Gemm.multiplyAdd(
              1f, x, xOff + i0, 1, cols, x, xOff + j0, cols, s, i0 * cols + j0, cols, m, width, n);
        });
  }

  /** Copies the upper triangle of {@code s [cols][cols]} onto the lower one, in place. */
  public static void mirrorUpper(float[] s, int cols) {
    for (int i = 0; i < cols; i++) {
      for (int j = i + 1; j < cols; j++) {
        s[j * cols + i] = s[i * cols + j];
      }
    }
  }
}
