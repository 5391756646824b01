package llmc.quantize;

import java.util.List;
import llmc.model.kernels.Gemm;
import llmc.model.kernels.Parallel;

/**
 * Activation-aware weight quantization (Lin et al. 2023, AWQ): the input features that carry large
 * activations are scaled up in the weights ({@code W diag(s)}) and down in the input ({@code x /
 * s}), so that rounding costs them less. Both searches minimise the output error of the quantized
 * matrices on the calibration activations, written with their second moment {@code H ∝ sum_t x_t
 * x_tᵀ}: for a weight change {@code D [out][in]}, {@code sum_t ||D x_t||² ∝ sum_rows d H dᵀ}. So
 * the searches need the walk's statistics only, never the activations themselves.
 */
public final class Awq {
  private Awq() {}

  /** {@code alpha = 0, 0.05, ..., 1}: 21 candidates, 0 being plain round-to-nearest. */
  static final int GRID = 20;

  /** Clipping ratios {@code 1 - i / 40}, {@code i = 0..19}: 1, 0.975, ..., 0.525. */
  static final int CLIP_STEPS = 20;

  static final float CLIP_STEP = 1f / 40;

  /**
   * The scales of one group of matrices sharing an input.
   *
   * @param scales {@code s [in]}, or null when {@code alpha = 0} won (no scaling)
   * @param alpha the exponent chosen
   * @param loss the group's output error with those scales
   * @param rtnLoss the output error with {@code alpha = 0} (plain round-to-nearest)
   */
  public record Scales(float[] scales, double alpha, double loss, double rtnLoss) {}

  /**
   * AWQ's scale search: {@code s = mean|x|^alpha} (floored at 1e-4, then divided by {@code sqrt(max
   * s * min s)}) for {@code alpha = 0, 0.05, ..., 1}, each matrix {@code W diag(s)} rounded to
   * nearest on its grid and divided back by {@code s}; the alpha whose summed output error {@code
   * sum d H dᵀ} is lowest wins (the first of equal ones, so {@code alpha = 0} on a tie).
   *
   * @param meanAbs {@code mean_t |x_tj|}, {@code [in]}
   * @param weights each matrix {@code [rows_i][in]}, unscaled
   * @param rows the rows of each
   * @param schemes the grid of each
   * @param hessian {@code H [in][in]}, symmetric (any positive multiple of {@code sum x xᵀ})
   */
  public static Scales searchScales(
      double[] meanAbs,
      List<float[]> weights,
      int[] rows,
      List<QuantScheme> schemes,
      float[] hessian) {
    int in = meanAbs.length;
    double best = Double.POSITIVE_INFINITY;
    double rtn = Double.NaN;
    float[] bestScales = null;
    double bestAlpha = 0;
    for (int step = 0; step <= GRID; step++) {
      double alpha = step / (double) GRID;
      float[] s = scales(meanAbs, alpha);
      double loss = 0;
      for (int m = 0; m < weights.size(); m++) {
        loss += outputError(weights.get(m), rows[m], in, s, schemes.get(m), hessian);
      }
      if (step == 0) {
        rtn = loss;
      }
      if (loss < best) {
        best = loss;
        bestAlpha = alpha;
        bestScales = step == 0 ? null : s;
      }
    }
    return new Scales(bestScales, bestAlpha, best, rtn);
  }

  /** {@code s = max(mean|x|^alpha, 1e-4) / sqrt(max s * min s)}: AWQ's scales for one alpha. */
  static float[] scales(double[] meanAbs, double alpha) {
    int in = meanAbs.length;
    float[] s = new float[in];
    float max = 0;
    float min = Float.POSITIVE_INFINITY;
    for (int j = 0; j < in; j++) {
      s[j] = (float) Math.max(Math.pow(meanAbs[j], alpha), 1e-4);
      max = Math.max(max, s[j]);
      min = Math.min(min, s[j]);
    }
    float norm = (float) Math.sqrt((double) max * min);
    for (int j = 0; j < in; j++) {
      s[j] /= norm;
    }
    return s;
  }

  /**
   * {@code sum_rows d H dᵀ} for {@code D = RTN(W diag(s)) diag(1/s) - W}: the output error of the
   * matrix quantized with scales {@code s}, over the calibration tokens (up to H's factor).
   */
  static double outputError(
      float[] w, int rows, int in, float[] s, QuantScheme scheme, float[] hessian) {
    float[] scaled = new float[w.length];
    for (int i = 0; i < w.length; i++) {
      scaled[i] = w[i] * s[i % in];
    }
    float[] d = Rtn.quantize(scaled, rows, in, scheme, Rtn.Clip.NONE).dequantize();
    for (int i = 0; i < d.length; i++) {
      d[i] = d[i] / s[i % in] - w[i];
    }
    float[] dh = new float[d.length]; // [rows][in] = D H
    Gemm.parallelMultiplyAdd(1f, d, 0, in, 1, hessian, 0, in, dh, 0, in, rows, in, in);
    double[] perRow = new double[rows];
    Parallel.forEach(
        rows,
        r -> {
          double sum = 0;
          for (int j = r * in; j < (r + 1) * in; j++) {
            sum += (double) d[j] * dh[j];
          }
          perRow[r] = sum;
        });
    double sum = 0;
    for (double v : perRow) {
      sum += v;
    }
    return sum;
  }

  /**
   * AWQ's clipping search, in place: each group of each row is clamped to {@code ±r max|w|} for the
   * ratio {@code r} in 1, 0.975, ..., 0.525 whose rounded group has the lowest output error {@code
   * d H_gg dᵀ} ({@code H_gg} the group's block of the Hessian; the first of equal ones wins, so a
   * group is left whole on a tie).
   *
   * @param w {@code [rows][in]}, the weights as they will be quantized (already scaled by AWQ)
   * @param hessian {@code [in][in]} of the input those weights read
   * @return the number of groups clipped
   */
  public static long clip(float[] w, int rows, int in, QuantScheme scheme, float[] hessian) {
    int size = scheme.columnsPerGroup(in);
    int groups = scheme.groups(in);
    long[] clipped = new long[rows];
    Parallel.forEach(
        rows,
        n -> {
          float[] d = new float[size];
          for (int g = 0; g < groups; g++) {
            int from = n * in + g * size;
            int width = Math.min(size, in - g * size);
            int col = g * size;
            float absMax = 0;
            for (int k = 0; k < width; k++) {
              absMax = Math.max(absMax, Math.abs(w[from + k]));
            }
            double best = Double.POSITIVE_INFINITY;
            float bestLimit = absMax;
            for (int i = 0; i < CLIP_STEPS; i++) {
              float limit = absMax * (1 - i * CLIP_STEP);
              float lo = Float.POSITIVE_INFINITY;
              float hi = Float.NEGATIVE_INFINITY;
              for (int k = 0; k < width; k++) {
                float v = Math.clamp(w[from + k], -limit, limit);
                lo = Math.min(lo, v);
                hi = Math.max(hi, v);
              }
              float scale = scheme.scale(lo, hi);
              int zero = scheme.zero(lo, scale);
              float min = scheme.min(lo);
              for (int k = 0; k < width; k++) {
                float v = Math.clamp(w[from + k], -limit, limit);
                float q = QuantScheme.value(scheme.code(v, scale, zero, min), scale, zero, min);
                d[k] = q - w[from + k];
              }
              double err = 0;
              for (int a = 0; a < width; a++) {
                float sum = 0;
                int h = (col + a) * in + col;
                for (int b = 0; b < width; b++) {
                  sum += hessian[h + b] * d[b];
                }
                err += (double) d[a] * sum;
              }
              if (err < best) {
                best = err;
                bestLimit = limit;
              }
            }
            if (bestLimit < absMax) {
              clipped[n]++;
              for (int k = 0; k < width; k++) {
                w[from + k] = Math.clamp(w[from + k], -bestLimit, bestLimit);
              }
            }
          }
        });
    long total = 0;
    for (long c : clipped) {
      total += c;
    }
    return total;
  }
}
