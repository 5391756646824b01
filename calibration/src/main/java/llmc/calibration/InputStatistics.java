package llmc.calibration;

import llmc.model.kernels.Gram;

/**
 * The second moment of one activation over the calibration tokens: {@code S = sum_t x_t x_t^T}
 * ({@code [in, in]}), from which GPTQ's Hessian {@code H = 2/n S} and Wanda's input column norms
 * {@code ||X_j||^2 = S_jj} follow. Accumulated in float32, upper triangle only ({@link Gram}).
 */
public final class InputStatistics {
  private final int width;
  private float[] sum; // [in][in], upper triangle valid; null once handed to the last reader
  private double[] absSum; // [in]: sum_t |x_tj|; null when restored from saved statistics
  private float[] absMax; // [in]: max_t |x_tj|; null likewise
  private long tokens;
  private boolean lastRead; // the next hessianToChange() may take the memory of sum

  public InputStatistics(int width) {
    this.width = width;
    this.sum = new float[Math.multiplyExact(width, width)];
    this.absSum = new double[width];
    this.absMax = new float[width];
  }

  /** Adds {@code n} rows {@code x [n][in]} (row-major). */
  public synchronized void add(float[] x, int n) {
    checkNotHandedOver();
    Gram.addUpper(x, 0, n, width, sum);
    if (absSum != null) {
      for (int t = 0; t < n; t++) {
        for (int j = 0, row = t * width; j < width; j++) {
          float a = Math.abs(x[row + j]);
          absSum[j] += a;
          absMax[j] = Math.max(absMax[j], a);
        }
      }
    }
    hessian = null;
    tokens += n;
  }

  /** Restores statistics saved with {@link #sum()} and {@link #tokens()}. */
  public static InputStatistics of(int width, float[] sum, long tokens) {
    InputStatistics s = new InputStatistics(width);
    System.arraycopy(sum, 0, s.sum, 0, s.sum.length);
    s.tokens = tokens;
    s.absSum = null; // not saved: the methods that read them refuse saved statistics
    s.absMax = null;
    return s;
  }

  public int width() {
    return width;
  }

  public long tokens() {
    return tokens;
  }

  /** {@code S = sum_t x_t x_t^T}, {@code [in][in]} row-major, symmetric (a new array). */
  public synchronized float[] sum() {
    checkNotHandedOver();
    float[] s = sum.clone();
    Gram.mirrorUpper(s, width);
    return s;
  }

  /**
   * GPTQ's Hessian of the layer-wise squared error: {@code H = 2/n sum_t x_t x_t^T}, {@code
   * [in][in]}; one array shared by every caller, which must not change it.
   */
  public synchronized float[] hessian() {
    checkNotHandedOver();
    if (hessian == null) {
      hessian = computeHessian();
    }
    return hessian;
  }

  /**
   * The Hessian for a caller that changes it (GPTQ and SparseGPT work in its memory): a new array,
   * or, after {@link #lastRead}, the statistics' own memory, turned into the Hessian in place, so
   * that the statistics of a wide input (3.3 GB for {@code down_proj} of a 70B-class model) never
   * exist twice. After that the statistics are spent.
   */
  public synchronized float[] hessianToChange() {
    checkNotHandedOver();
    if (!lastRead) {
      return hessian != null ? hessian.clone() : computeHessian();
    }
    float[] h = hessian;
    if (h == null) {
      h = sum;
      Gram.mirrorUpper(h, width);
      scale(h);
    }
    sum = null;
    hessian = null;
    lastRead = false;
    return h;
  }

  /**
   * The next {@link #hessianToChange} is the last read of these statistics (the walk says so before
   * the last matrix that reads this input), so it may take their memory.
   */
  public synchronized void lastRead() {
    lastRead = true;
  }

  /**
   * Withdraws {@link #lastRead} and says whether it was given: a compressor that reads the
   * statistics twice for one matrix (prune, then quantize) gives it back before its second read.
   */
  public synchronized boolean takeLastRead() {
    boolean was = lastRead;
    lastRead = false;
    return was;
  }

  private void checkNotHandedOver() {
    if (sum == null) {
      throw new IllegalStateException("these statistics were handed to their last reader");
    }
  }

  /** Computed once, shared by every matrix reading this input: callers must not change it. */
  private float[] hessian;

  private float[] computeHessian() {
    float[] h = sum();
    scale(h);
    return h;
  }

  /** {@code h *= 2/n}. */
  private void scale(float[] h) {
    float scale = tokens == 0 ? 0f : (float) (2.0 / tokens);
    for (int i = 0; i < h.length; i++) {
      h[i] *= scale;
    }
  }

  /** Whether {@link #meanAbs} and {@link #absMax} were recorded (not for saved statistics). */
  public synchronized boolean hasMagnitudes() {
    return absSum != null;
  }

  /** {@code mean_t |x_tj|}, {@code [in]}: AWQ's activation scale. */
  public synchronized double[] meanAbs() {
    checkMagnitudes();
    double[] mean = new double[width];
    for (int j = 0; j < width; j++) {
      mean[j] = tokens == 0 ? 0 : absSum[j] / tokens;
    }
    return mean;
  }

  /** {@code max_t |x_tj|}, {@code [in]}: SmoothQuant's and LLM.int8's activation range. */
  public synchronized float[] absMax() {
    checkMagnitudes();
    return absMax.clone();
  }

  private void checkMagnitudes() {
    if (absSum == null) {
      throw new IllegalStateException(
          "these statistics were restored from a file that keeps only x x^T: the mean and largest"
              + " |x| per input feature need a run over calibration data");
    }
  }

  /**
   * The statistics of {@code x / s} (elementwise over the input features) in place of those of
   * {@code x}: {@code S_ij / (s_i s_j)}, the magnitudes over {@code s_j}. AWQ and SmoothQuant move
   * {@code s} from the activation into the weights ({@code W diag(s)}); the matrices that read the
   * scaled input then see these statistics.
   */
  public synchronized void scaleInputs(float[] s) {
    checkNotHandedOver();
    if (s.length != width) {
      throw new IllegalArgumentException("one scale per input feature: " + width);
    }
    for (int i = 0; i < width; i++) {
      float inv = 1f / s[i];
      for (int j = i; j < width; j++) {
        sum[i * width + j] = sum[i * width + j] * inv / s[j];
      }
      if (absSum != null) {
        absSum[i] /= s[i];
        absMax[i] /= s[i];
      }
    }
    hessian = null;
  }

  /** {@code ||X_j||_2^2 = sum_t x_tj^2}, {@code [in]}. */
  public synchronized double[] columnSquaredNorms() {
    checkNotHandedOver();
    double[] norms = new double[width];
    for (int j = 0; j < width; j++) {
      norms[j] = sum[j * width + j];
    }
    return norms;
  }
}
