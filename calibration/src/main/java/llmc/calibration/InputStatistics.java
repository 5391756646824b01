package llmc.calibration;

import llmc.model.kernels.Gram;

/**
 * The second moment of one activation over the calibration tokens: {@code S = sum_t x_t x_t^T}
 * ({@code [in, in]}), from which GPTQ's Hessian {@code H = 2/n S} and Wanda's input column norms
 * {@code ||X_j||^2 = S_jj} follow. Accumulated in float32, upper triangle only ({@link Gram}).
 */
public final class InputStatistics {
  private final int width;
  private final float[] sum; // [in][in], upper triangle valid
  private long tokens;

  public InputStatistics(int width) {
    this.width = width;
    this.sum = new float[Math.multiplyExact(width, width)];
  }

  /** Adds {@code n} rows {@code x [n][in]} (row-major). */
  public void add(float[] x, int n) {
    Gram.addUpper(x, 0, n, width, sum);
    hessian = null;
    tokens += n;
  }

  /** Restores statistics saved with {@link #sum()} and {@link #tokens()}. */
  public static InputStatistics of(int width, float[] sum, long tokens) {
    InputStatistics s = new InputStatistics(width);
    System.arraycopy(sum, 0, s.sum, 0, s.sum.length);
    s.tokens = tokens;
    return s;
  }

  public int width() {
    return width;
  }

  public long tokens() {
    return tokens;
  }

  /** {@code S = sum_t x_t x_t^T}, {@code [in][in]} row-major, symmetric (a new array). */
  public float[] sum() {
    float[] s = sum.clone();
    Gram.mirrorUpper(s, width);
    return s;
  }

  /**
   * GPTQ's Hessian of the layer-wise squared error: {@code H = 2/n sum_t x_t x_t^T}, {@code
   * [in][in]}; one array shared by every caller, which must not change it.
   */
  public synchronized float[] hessian() {
    if (hessian == null) {
      hessian = computeHessian();
    }
    return hessian;
  }

  /** Computed once, shared by every matrix reading this input: callers must not change it. */
  private float[] hessian;

  private float[] computeHessian() {
    float[] h = sum();
    float scale = tokens == 0 ? 0f : (float) (2.0 / tokens);
    for (int i = 0; i < h.length; i++) {
      h[i] *= scale;
    }
    return h;
  }

  /** {@code ||X_j||_2^2 = sum_t x_tj^2}, {@code [in]}. */
  public double[] columnSquaredNorms() {
    double[] norms = new double[width];
    for (int j = 0; j < width; j++) {
      norms[j] = sum[j * width + j];
    }
    return norms;
  }
}
