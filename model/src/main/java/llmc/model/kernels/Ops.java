package llmc.model.kernels;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * The element-wise parts of a decoder layer on row-major Java arrays, vectorized.
 *
 * <p>Reproducibility: the Vector API leaves the order of {@code reduceLanes(ADD)} and the
 * implementation of {@code EXP} open, and HotSpot's interpreted and compiled code differ in both,
 * so results would depend on when the JIT compiled what. Everything here uses only lane-wise add,
 * multiply, fused multiply-add and comparisons ({@link #sum}, {@link #exp}), whose results Java
 * fixes exactly, so the same inputs give the same bits on every run.
 */
public final class Ops {
  private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
  private static final int L = S.length();

  private Ops() {}

  /**
   * RMSNorm of each row: {@code out[r] = x[r] / sqrt(mean(x[r]^2) + eps) * w} for {@code rows} rows
   * of {@code width} ({@code x} and {@code out} may be the same array).
   */
  public static void rmsNorm(float[] x, float[] w, float eps, float[] out, int rows, int width) {
    Parallel.forEach(
        tasks(rows, width),
        t -> {
          int[] range = range(t, rows, width);
          for (int r = range[0]; r < range[1]; r++) {
            int o = r * width;
            FloatVector acc = FloatVector.zero(S);
            int i = 0;
            for (; i + L <= width; i += L) {
              FloatVector v = FloatVector.fromArray(S, x, o + i);
              acc = v.fma(v, acc);
            }
            float sum = sum(acc);
            for (; i < width; i++) {
              sum += x[o + i] * x[o + i];
            }
            float inv = (float) (1.0 / Math.sqrt(sum / width + eps));
            i = 0;
            for (; i + L <= width; i += L) {
              FloatVector.fromArray(S, x, o + i)
                  .mul(inv)
                  .mul(FloatVector.fromArray(S, w, i))
                  .intoArray(out, o + i);
            }
            for (; i < width; i++) {
              out[o + i] = x[o + i] * inv * w[i];
            }
          }
        });
  }

  /**
   * SwiGLU's gate: {@code gate[i] = silu(gate[i]) * up[i]} with {@code silu(g) = g / (1 + e^-g)},
   * in place.
   */
  public static void siluMul(float[] gate, float[] up, int n) {
    Parallel.forEach(
        tasks(n, 1),
        t -> {
          int[] range = range(t, n, 1);
          int i = range[0];
          for (; i + L <= range[1]; i += L) {
            FloatVector g = FloatVector.fromArray(S, gate, i);
            FloatVector e = exp(g.neg()).add(1f);
            g.div(e).mul(FloatVector.fromArray(S, up, i)).intoArray(gate, i);
          }
          for (; i < range[1]; i++) {
            float g = gate[i];
            gate[i] = g / (exp(-g) + 1f) * up[i];
          }
        });
  }

  /** {@code a[i] += b[i]} for {@code i < n}. */
  /**
   * {@code y[yOff ..] -= alpha * x[xOff ..]} over {@code len} elements, product rounded before the
   * subtraction (not fused) as PyTorch's outer product and subtraction do: GPTQ's and SparseGPT's
   * in-block error update.
   */
  public static void subtractScaled(
      float alpha, float[] x, int xOff, float[] y, int yOff, int len) {
    int i = 0;
    FloatVector a = FloatVector.broadcast(S, alpha);
    for (int bound = S.loopBound(len); i < bound; i += S.length()) {
      FloatVector.fromArray(S, y, yOff + i)
          .sub(FloatVector.fromArray(S, x, xOff + i).mul(a))
          .intoArray(y, yOff + i);
    }
    for (; i < len; i++) {
      y[yOff + i] -= alpha * x[xOff + i];
    }
  }

  public static void addInPlace(float[] a, float[] b, int n) {
    addInPlace(a, 0, b, 0, n);
  }

  /** {@code a[aOff + i] += b[bOff + i]} for {@code i < n}. */
  public static void addInPlace(float[] a, int aOff, float[] b, int bOff, int n) {
    int i = 0;
    for (; i + L <= n; i += L) {
      FloatVector.fromArray(S, a, aOff + i)
          .add(FloatVector.fromArray(S, b, bOff + i))
          .intoArray(a, aOff + i);
    }
    for (; i < n; i++) {
      a[aOff + i] += b[bOff + i];
    }
  }

  /**
   * Rotary embedding in place, the {@code rotate_half} convention: for each head vector x of width
   * d, {@code x' = x * cos + [-x2, x1] * sin}. {@code x [B][T][heads * d]}; {@code cos, sin
   * [T][d]}.
   */
  public static void rope(
      float[] x, int batch, int count, int heads, int d, float[] cos, float[] sin) {
    int half = d / 2;
    int width = heads * d;
    Parallel.forEach(
        tasks(batch * count, width),
        t -> {
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

  /** The lanes of {@code v} summed in lane order. */
  public static float sum(FloatVector v) {
    float[] lanes = v.toArray();
    float sum = 0f;
    for (float lane : lanes) {
      sum += lane;
    }
    return sum;
  }

  // exp(x) as in Cephes' expf: x = n ln2 + r with |r| <= ln2/2 (ln2 split in two parts), a degree-6
  // polynomial for e^r, then the exponent n added to the float's bits; about 1 ulp on
  // [EXP_LO, EXP_HI], clamped outside it (e^-87.3 is the smallest normal float, e^88.3 < 2^128).
  private static final float EXP_HI = 88.3f;
  private static final float EXP_LO = -87.3f;
  private static final float LOG2E = 1.44269504088896341f;
  private static final float LN2_HI = 0.693359375f;
  private static final float LN2_LO = -2.12194440e-4f;
  private static final float P0 = 1.9875691500e-4f;
  private static final float P1 = 1.3981999507e-3f;
  private static final float P2 = 8.3334519073e-3f;
  private static final float P3 = 4.1665795894e-2f;
  private static final float P4 = 1.6666665459e-1f;
  private static final float P5 = 5.0000001201e-1f;

  /** {@code e^x} per lane, bit-identical to {@link #exp(float)} lane by lane. */
  public static FloatVector exp(FloatVector x) {
    x = x.max(EXP_LO).min(EXP_HI);
    FloatVector fx = x.mul(LOG2E).add(0.5f);
    FloatVector t =
        ((jdk.incubator.vector.IntVector) fx.convert(VectorOperators.F2I, 0))
            .convert(VectorOperators.I2F, 0)
            .reinterpretAsFloats();
    FloatVector n = t.sub(1f, t.compare(VectorOperators.GT, fx)); // floor(fx)
    FloatVector r = x.sub(n.mul(LN2_HI)).sub(n.mul(LN2_LO));
    FloatVector y =
        r.mul(P0)
            .add(P1)
            .mul(r)
            .add(P2)
            .mul(r)
            .add(P3)
            .mul(r)
            .add(P4)
            .mul(r)
            .add(P5)
            .mul(r.mul(r))
            .add(r)
            .add(1f);
    jdk.incubator.vector.IntVector bits =
        ((jdk.incubator.vector.IntVector) n.convert(VectorOperators.F2I, 0))
            .add(127)
            .lanewise(VectorOperators.LSHL, 23);
    return y.mul(bits.reinterpretAsFloats());
  }

  /** {@code e^x}, the same arithmetic as {@link #exp(FloatVector)} on one value. */
  public static float exp(float x) {
    x = Math.min(Math.max(x, EXP_LO), EXP_HI);
    float fx = x * LOG2E + 0.5f;
    float t = (float) (int) fx;
    float n = t > fx ? t - 1f : t;
    float r = x - n * LN2_HI - n * LN2_LO;
    float y = ((((((r * P0 + P1) * r + P2) * r + P3) * r + P4) * r + P5) * (r * r)) + r + 1f;
    return y * Float.intBitsToFloat(((int) n + 127) << 23);
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
