package llmc.model.kernels;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/** The element-wise parts of a decoder layer on row-major Java arrays, vectorized. */
public final class Ops {
  private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
  private static final int L = S.length();

  private Ops() {
  }

  /**
   * RMSNorm of each row: {@code out[r] = x[r] / sqrt(mean(x[r]^2) + eps) * w} for {@code rows} rows
   * of {@code width} ({@code x} and {@code out} may be the same array).
   */
  public static void rmsNorm(float[] x, float[] w, float eps, float[] out, int rows, int width) {
    Parallel.forEach(tasks(rows, width), t -> {
      int[] range = range(t, rows, width);
      for (int r = range[0]; r < range[1]; r++) {
        int o = r * width;
        FloatVector acc = FloatVector.zero(S);
        int i = 0;
        for (; i + L <= width; i += L) {
          FloatVector v = FloatVector.fromArray(S, x, o + i);
          acc = v.fma(v, acc);
        }
        float sum = acc.reduceLanes(VectorOperators.ADD);
        for (; i < width; i++) {
          sum += x[o + i] * x[o + i];
        }
        float inv = (float) (1.0 / Math.sqrt(sum / width + eps));
        i = 0;
        for (; i + L <= width; i += L) {
          FloatVector.fromArray(S, x, o + i).mul(inv).mul(FloatVector.fromArray(S, w, i)).intoArray(out, o + i);
        }
        for (; i < width; i++) {
          out[o + i] = x[o + i] * inv * w[i];
        }
      }
    });
  }

  /** SwiGLU's gate: {@code gate[i] = silu(gate[i]) * up[i]} with {@code silu(g) = g / (1 + e^-g)}, in place. */
  public static void siluMul(float[] gate, float[] up, int n) {
    Parallel.forEach(tasks(n, 1), t -> {
      int[] range = range(t, n, 1);
      int i = range[0];
      for (; i + L <= range[1]; i += L) {
        FloatVector g = FloatVector.fromArray(S, gate, i);
        FloatVector e = g.neg().lanewise(VectorOperators.EXP).add(1f);
        g.div(e).mul(FloatVector.fromArray(S, up, i)).intoArray(gate, i);
      }
      for (; i < range[1]; i++) {
        float g = gate[i];
        gate[i] = (float) (g / (1 + Math.exp(-g))) * up[i];
      }
    });
  }

  /** {@code a[i] += b[i]} for {@code i < n}. */
  public static void addInPlace(float[] a, float[] b, int n) {
    addInPlace(a, 0, b, 0, n);
  }

  /** {@code a[aOff + i] += b[bOff + i]} for {@code i < n}. */
  public static void addInPlace(float[] a, int aOff, float[] b, int bOff, int n) {
    int i = 0;
    for (; i + L <= n; i += L) {
      FloatVector.fromArray(S, a, aOff + i).add(FloatVector.fromArray(S, b, bOff + i)).intoArray(a, aOff + i);
    }
    for (; i < n; i++) {
      a[aOff + i] += b[bOff + i];
    }
  }

  /**
   * Rotary embedding in place, the {@code rotate_half} convention: for each head vector x of width
   * d, {@code x' = x * cos + [-x2, x1] * sin}. {@code x [B][T][heads * d]}; {@code cos, sin [T][d]}.
   */
  public static void rope(float[] x, int batch, int count, int heads, int d, float[] cos, float[] sin) {
    int half = d / 2;
    int width = heads * d;
    Parallel.forEach(tasks(batch * count, width), t -> {
      int[] range = range(t, batch * count, width);
      for (int r = range[0]; r < range[1]; r++) {
        int c = (r % count) * d;
        for (int h = 0; h < heads; h++) {
          int o = r * width + h * d;
          for (int i = 0; i < half; i++) {
            float x1 = x[o + i];
            float x2 = x[o + i + half];
            x[o + i] = x1 * cos[c + i] - x2 * sin[c + i];
            x[o + i + half] = x2 * cos[c + i + half] + x1 * sin[c + i + half];
          }
        }
      }
    });
  }

  /** Work items of about 64K elements each. */
  private static int tasks(int rows, int width) {
    long total = (long) rows * width;
    return (int) Math.max(1, Math.min(rows, total / 65536));
  }

  private static int[] range(int task, int rows, int width) {
    int tasks = tasks(rows, width);
    return new int[] {(int) ((long) rows * task / tasks), (int) ((long) rows * (task + 1) / tasks)};
  }
}
