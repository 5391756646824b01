package llmc.quantize;

/**
 * GPTQ's {@code add_batch}: the Hessian of the layer-wise squared error {@code ||W X^T - Q X^T||^2},
 * {@code H = 2/n sum_t x_t x_t^T} ({@code [cols][cols]}) over all {@code n} rows added so far.
 * Accumulates {@code sum_t x_t x_t^T} in float32 (only the upper triangle: it is symmetric).
 */
public final class HessianAccumulator {
  private final int cols;
  private final float[] sum;   // [cols][cols], upper triangle valid
  private long rows;

  public HessianAccumulator(int cols) {
    this.cols = cols;
    this.sum = new float[Math.multiplyExact(cols, cols)];
  }

  public int cols() {
    return cols;
  }

  /** Number of rows {@code n} added so far. */
  public long rows() {
    return rows;
  }

  /** Adds {@code n} rows {@code x [n][cols]} (row-major). */
  public void add(float[] x, int n) {
    if (x.length < (long) n * cols) {
      throw new IllegalArgumentException("x must hold n*cols = " + (long) n * cols + " values, has " + x.length);
    }
    int strip = 128;
    int colTile = 512;
    int strips = (cols + strip - 1) / strip;
    int tilesPerStrip = (cols + colTile - 1) / colTile;
    // task (s, c): rows [s*strip, +strip) x columns [s*strip + c*colTile, +colTile), upper triangle
    Parallel.forEach(strips * tilesPerStrip, t -> {
      int i0 = (t / tilesPerStrip) * strip;
      int j0 = i0 + (t % tilesPerStrip) * colTile;
      if (j0 >= cols) {
        return;
      }
      int m = Math.min(strip, cols - i0);
      int width = Math.min(colTile, cols - j0);
      // S[i][j] += sum_t x[t][i] x[t][j]: A = X^T (A(i, t) = x[t*cols + i]), B = X
      Gemm.multiplyAdd(1f, x, i0, 1, cols, x, j0, cols, sum, i0 * cols + j0, cols, m, width, n);
    });
    rows += n;
  }

  /** {@code H = 2/n sum_t x_t x_t^T}, {@code [cols][cols]} row-major, symmetric. */
  public float[] matrix() {
    float[] h = new float[sum.length];
    float scale = rows == 0 ? 0f : (float) (2.0 / rows);
    for (int i = 0; i < cols; i++) {
      for (int j = i; j < cols; j++) {
        float v = sum[i * cols + j] * scale;
        h[i * cols + j] = v;
        h[j * cols + i] = v;
      }
    }
    return h;
  }
}
