package llmc.quantize;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;
import llmc.formats.QuantizedTensor;
import llmc.model.kernels.Parallel;

/** Round-to-nearest: every weight to the nearest level of its group's grid (PROTOCOLS.md). */
public final class Rtn {

  /** How a group's range is chosen. */
  public enum Clip {
    /** The full range of the group. */
    NONE,
    /**
     * The shrunk range with the lowest squared error of the dequantized group. Candidates: the
     * range scaled by {@code p = 1 - 0.005 i}, {@code i = 0..99} (1.0 down to 0.505), applied to
     * min and max (asymmetric) or to max|w| (symmetric); the first best (least shrinking) wins
     * ties. This is the grid search of GPTQ's and llm-compressor's MSE observer, with AWQ's max
     * shrink of 0.5.
     */
    MSE
  }

  static final int MSE_STEPS = 100;
  static final float MSE_STEP = 0.005f;

  private Rtn() {}

  /**
   * Quantizes {@code w [rows][cols]} (row-major) group by group.
   *
   * @return codes {@code [rows][cols]}, scales and zeros {@code [G][rows]}, {@code gIdx[k] = k /
   *     groupSize}
   */
  public static QuantizedTensor quantize(
      float[] w, int rows, int cols, QuantScheme scheme, Clip clip) {
    if (w.length != (long) rows * cols) {
      throw new IllegalArgumentException(
          "w must be rows*cols = " + (long) rows * cols + " long, got " + w.length);
    }
    if (scheme.grid() == QuantScheme.Grid.FP8_E4M3) {
      return e4m3(w, rows, cols, scheme);
    }
    int size = scheme.columnsPerGroup(cols);
    int groups = scheme.groups(cols);
    byte[] codes = new byte[rows * cols];
    float[] scales = new float[groups * rows]; // [G][N]
    int[] zeros = new int[groups * rows]; // [G][N]
    float[] mins =
        scheme.hasMin() ? new float[groups * rows] : null; // [G][N], ggml's _1 grids only
    Parallel.forEach(
        rows,
        n -> {
          for (int g = 0; g < groups; g++) {
            int from = n * cols + g * size;
            int to = Math.min(from + size, (n + 1) * cols);
            float[] range = clip == Clip.MSE ? mseRange(w, from, to, scheme) : range(w, from, to);
            float s = scheme.scale(range[0], range[1]);
            int z = scheme.zero(range[0], s);
            float m = scheme.min(range[0]);
            scales[g * rows + n] = s;
            zeros[g * rows + n] = z;
            if (mins != null) {
              mins[g * rows + n] = m;
            }
            codes(w, from, to, s, z, m, scheme, codes);
          }
        });
    int[] gIdx = groupIndex(cols, size);
    return new QuantizedTensor(
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
  }

  /** {@code gIdx[k] = k / size}: the groups in column order. */
  private static int[] groupIndex(int cols, int size) {
    int[] gIdx = new int[cols];
    for (int k = 0; k < cols; k++) {
      gIdx[k] = k / size;
    }
    return gIdx;
  }

  /**
   * FP8 E4M3 per row or group: {@code s = max|w| / 448} rounded to the scale dtype ({@code s = 1}
   * for an all-zero group), codes {@code e4m3(w / s)}, rounded to nearest even and saturated at
   * {@code ±448} (a scale rounded down leaves the largest weight a little beyond 448 s).
   */
  private static QuantizedTensor e4m3(float[] w, int rows, int cols, QuantScheme scheme) {
    int size = scheme.columnsPerGroup(cols);
    int groups = scheme.groups(cols);
    byte[] codes = new byte[rows * cols];
    float[] scales = new float[groups * rows]; // [G][N]
    Parallel.forEach(
        rows,
        n -> {
          for (int g = 0; g < groups; g++) {
            int from = n * cols + g * size;
            int to = Math.min(from + size, (n + 1) * cols);
            float max = 0;
            for (int i = from; i < to; i++) {
              max = Math.max(max, Math.abs(w[i]));
            }
            float s = scheme.roundScale(max == 0 ? 1f : max / llmc.formats.Floats.E4M3_MAX);
            scales[g * rows + n] = s;
            for (int i = from; i < to; i++) {
              codes[i] = llmc.formats.Floats.f32ToF8e4m3(w[i] / s);
            }
          }
        });
    int[] gIdx = groupIndex(cols, size);
    return QuantizedTensor.e4m3(
        rows, cols, scheme.groupSize(), codes, scales, gIdx, scheme.scaleDtype());
  }

  /**
   * {@code {min w, max w}} over {@code w[from, to)}, a vector at a time (min and max are exact, and
   * Math.min's -0.0 and NaN rules hold in any order).
   */
  static float[] range(float[] w, int from, int to) {
    FloatVector lo = FloatVector.broadcast(S, Float.POSITIVE_INFINITY);
    FloatVector hi = FloatVector.broadcast(S, Float.NEGATIVE_INFINITY);
    int i = from;
    for (; i + S.length() <= to; i += S.length()) {
      FloatVector v = FloatVector.fromArray(S, w, i);
      lo = lo.min(v);
      hi = hi.max(v);
    }
    float min = lo.reduceLanes(VectorOperators.MIN);
    float max = hi.reduceLanes(VectorOperators.MAX);
    for (; i < to; i++) {
      min = Math.min(min, w[i]);
      max = Math.max(max, w[i]);
    }
    return new float[] {min, max};
  }

  private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;

  /** Bytes as many as {@link #S}'s lanes, or null when no vector shape is that small. */
  private static final VectorSpecies<Byte> BYTES =
      S.length() >= 8 ? VectorSpecies.of(byte.class, VectorShape.forBitSize(S.length() * 8)) : null;

  /** 1.5 * 2^23: {@code (x + RINT) - RINT} is {@code Math.rint(x)} for {@code |x| < 2^22}. */
  private static final float RINT = 12582912f;

  /**
   * {@code codes[i] = scheme.code(w[i], s, z, m)} for {@code i} in {@code [from, to)}: {@code
   * clamp(rint((w - m) / s) + z, 0, maxq)}, a vector at a time, the same bits. A vector holding a
   * quotient of 2^22 or more (a weight far outside its group's range) takes the scalar formula.
   */
  static void codes(
      float[] w, int from, int to, float s, int z, float m, QuantScheme scheme, byte[] codes) {
    int maxq = scheme.maxq();
    int i = from;
    if (BYTES != null) {
      for (; i + S.length() <= to; i += S.length()) {
        FloatVector x = FloatVector.fromArray(S, w, i).sub(m).div(s);
        if (x.abs().compare(VectorOperators.GE, 4194304f).anyTrue()) {
          for (int k = i; k < i + S.length(); k++) {
            codes[k] = (byte) scheme.code(w[k], s, z, m);
          }
          continue;
        }
        ((IntVector) x.add(RINT).sub(RINT).convert(VectorOperators.F2I, 0))
            .add(z)
            .max(0)
            .min(maxq)
            .convertShape(VectorOperators.I2B, BYTES, 0)
            .reinterpretAsBytes()
            .intoArray(codes, i);
      }
    }
    for (; i < to; i++) {
      codes[i] = (byte) scheme.code(w[i], s, z, m);
    }
  }

  /** The shrunk {@code {min, max}} of {@link Clip#MSE}. */
  static float[] mseRange(float[] w, int from, int to, QuantScheme scheme) {
    float[] full = range(w, from, to);
    boolean widen =
        scheme.grid() == QuantScheme.Grid.ZERO_POINT; // ggml's grids need not hold 0 exactly
    float min = widen ? Math.min(0f, full[0]) : full[0];
    float max = widen ? Math.max(0f, full[1]) : full[1];
    if (scheme.symmetric()) {
      max = Math.max(-min, max);
      min = -max;
    }
    float[] best = full;
    double bestError = Double.POSITIVE_INFINITY;
    for (int i = 0; i < MSE_STEPS; i++) {
      float p = 1f - MSE_STEP * i;
      float lo = p * min;
      float hi = p * max;
      float s = scheme.scale(lo, hi);
      int z = scheme.zero(lo, s);
      float m = scheme.min(lo);
      double error = 0;
      for (int k = from; k < to; k++) {
        double d = QuantScheme.value(scheme.code(w[k], s, z, m), s, z, m) - w[k];
        error += d * d;
      }
      if (error < bestError) {
        bestError = error;
        best = new float[] {lo, hi};
      }
    }
    return best;
  }
}
