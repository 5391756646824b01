package llmc.quantize;

import llmc.formats.DType;
import llmc.formats.Floats;
import llmc.formats.QuantizedTensor;
import llmc.formats.gguf.GgmlType;

/**
 * An integer grid of PROTOCOLS.md ("Quantization grids"): {@code b} bits, levels {@code 0 .. 2^b -
 * 1}, one {@code (scale, zero)} per row and per {@code groupSize} consecutive input columns.
 *
 * <p>The scale is rounded to {@code scaleDtype} as soon as it is computed, before the zero and the
 * codes, so that the stored model is exactly the model the quantizer assumed (FORMATS.md, GPTQ). If
 * the rounded scale is 0 (a group of tiny weights under float16) it is raised to the smallest
 * positive normal number of {@code scaleDtype}: every code of such a group then lands on (or next
 * to) the zero point and the group dequantizes to (almost) zero, an error below its tiny weights. A
 * scale that overflows the dtype is clamped to its largest finite value.
 *
 * @param bits 2 to 8
 * @param groupSize input columns per group; -1, or any value {@code >= cols}, means one group per
 *     row
 * @param symmetric {@code z = 2^(b-1)} and {@code s = 2 max|w| / (2^b - 1)}
 * @param scaleDtype F16 (GPTQ, GGUF), BF16, or F32 (no rounding)
 * @param grid how a group's parameters follow from its range (an integer zero point, or one of
 *     ggml's block rules)
 */
public record QuantScheme(int bits, int groupSize, boolean symmetric, DType scaleDtype, Grid grid) {

  /**
   * How a group's levels are placed. Every grid has the value {@code s (q - z) + m}: an integer
   * zero point {@code z} and no offset ({@code m = 0}), or ggml's {@code _1} blocks' float offset
   * {@code m} and {@code z = 0}.
   */
  public enum Grid {
    /** PROTOCOLS.md's grids (GPTQ, compressed-tensors): {@code s (q - z)}, sym or asym. */
    ZERO_POINT,
    /**
     * ggml's Q4_0 / Q5_0 rule: {@code z = 2^(b-1)} and {@code s = v / -2^(b-1)} where {@code v} is
     * the weight of largest magnitude, sign kept, so that {@code v} itself is level 0 and all
     * {@code 2^b} levels are used ({@code s} may be negative).
     */
    GGML_SIGNED_MAX,
    /** ggml's Q8_0 rule: {@code z = 2^(b-1)}, {@code s = max|w| / (2^(b-1) - 1)}. */
    GGML_ABS_MAX,
    /**
     * ggml's Q4_1 / Q5_1 rule: {@code s = (max - min) / (2^b - 1)}, {@code m = min} (the group's
     * own minimum, not widened to 0), {@code z = 0}: value {@code s q + m}, both {@code s} and
     * {@code m} rounded to float16.
     */
    GGML_MIN,
    /**
     * FP8 E4M3 (compressed-tensors' float-quantized, vLLM's FP8): {@code s = max|w| / 448} per row
     * (or group), value {@code s e4m3(w / s)}, rounded to the nearest E4M3 value (ties to even);
     * the codes are the float8 bytes ({@link QuantizedTensor#isFloat8}).
     */
    FP8_E4M3
  }

  /** FP8 E4M3 weights, one scale per row ({@code groupSize -1}) or per group. */
  public static QuantScheme fp8(int groupSize, DType scaleDtype) {
    return new QuantScheme(8, groupSize, true, scaleDtype, Grid.FP8_E4M3);
  }

  public QuantScheme {
    if (bits < 2 || bits > 8) {
      throw new IllegalArgumentException("bits must be 2..8, got " + bits);
    }
    if (groupSize == 0 || groupSize < -1) {
      throw new IllegalArgumentException("group size must be positive or -1, got " + groupSize);
    }
    if (scaleDtype != DType.F16 && scaleDtype != DType.BF16 && scaleDtype != DType.F32) {
      throw new IllegalArgumentException("scale dtype must be F16, BF16 or F32, got " + scaleDtype);
    }
    if (grid == Grid.FP8_E4M3 && (bits != 8 || !symmetric)) {
      throw new IllegalArgumentException("FP8 E4M3 codes are 8-bit and symmetric");
    }
    if (grid != Grid.ZERO_POINT
        && grid != Grid.FP8_E4M3
        && (groupSize != GgmlType.QK
            || scaleDtype != DType.F16
            || symmetric != (grid != Grid.GGML_MIN))) {
      throw new IllegalArgumentException(
          "ggml's grids are groups of 32 with float16 scales, "
              + (grid == Grid.GGML_MIN ? "asymmetric" : "symmetric"));
    }
  }

  /** An integer zero point (PROTOCOLS.md). */
  public QuantScheme(int bits, int groupSize, boolean symmetric, DType scaleDtype) {
    this(bits, groupSize, symmetric, scaleDtype, Grid.ZERO_POINT);
  }

  /** Float16 scales, the GPTQ default. */
  public QuantScheme(int bits, int groupSize, boolean symmetric) {
    this(bits, groupSize, symmetric, DType.F16);
  }

  /**
   * The grid of a ggml block type, so that a quantizer's result is exactly a block of that type:
   * Q4_0, Q5_0 ({@link Grid#GGML_SIGNED_MAX}), Q8_0 ({@link Grid#GGML_ABS_MAX}), Q4_1, Q5_1 ({@link
   * Grid#GGML_MIN}); groups of 32, float16 scales (and mins).
   */
  public static QuantScheme ggml(GgmlType type) {
    return switch (type) {
      case Q4_0 -> new QuantScheme(4, GgmlType.QK, true, DType.F16, Grid.GGML_SIGNED_MAX);
      case Q5_0 -> new QuantScheme(5, GgmlType.QK, true, DType.F16, Grid.GGML_SIGNED_MAX);
      case Q8_0 -> new QuantScheme(8, GgmlType.QK, true, DType.F16, Grid.GGML_ABS_MAX);
      case Q4_1 -> new QuantScheme(4, GgmlType.QK, false, DType.F16, Grid.GGML_MIN);
      case Q5_1 -> new QuantScheme(5, GgmlType.QK, false, DType.F16, Grid.GGML_MIN);
      default ->
          throw new IllegalArgumentException(type.ggmlName() + " is not an integer block type");
    };
  }

  /** True for the grids with a float offset {@code m} per group (ggml's _1 types). */
  public boolean hasMin() {
    return grid == Grid.GGML_MIN;
  }

  /** The largest code, {@code 2^b - 1}. */
  public int maxq() {
    return (1 << bits) - 1;
  }

  /** Columns per group for a matrix with {@code cols} input columns (one group per row for -1). */
  public int columnsPerGroup(int cols) {
    return groupSize < 0 || groupSize >= cols ? cols : groupSize;
  }

  /** Number of groups per row, {@code G}. */
  public int groups(int cols) {
    int size = columnsPerGroup(cols);
    return (cols + size - 1) / size;
  }

  /**
   * The scale of a group whose weights span {@code [wMin, wMax]}, already rounded to the scale
   * dtype: asym {@code s = (max(0, wMax) - min(0, wMin)) / (2^b - 1)}, sym {@code s = 2 max|w| /
   * (2^b - 1)}, all-zero group {@code s = 1}. Float32 arithmetic, as the GPTQ quantizer.
   */
  public float scale(float wMin, float wMax) {
    switch (grid) {
      case GGML_SIGNED_MAX -> {
        float v = -wMin > wMax ? wMin : wMax; // the weight of largest magnitude, sign kept
        float magnitude = roundScale(v == 0f ? 1f : Math.abs(v) / (1 << (bits - 1)));
        return v > 0f ? -magnitude : magnitude; // s = v / -2^(b-1)
      }
      case GGML_ABS_MAX -> {
        float absMax = Math.max(-wMin, wMax);
        return roundScale(absMax == 0f ? 1f : absMax / ((1 << (bits - 1)) - 1));
      }
      case GGML_MIN -> {
        return roundScale(wMax - wMin == 0f ? 1f : (wMax - wMin) / maxq());
      }
      default -> {}
    }
    float min = Math.min(0f, wMin);
    float max = Math.max(0f, wMax);
    float s;
    if (symmetric) {
      float absMax = Math.max(-min, max);
      s = absMax == 0f ? 1f : (absMax + absMax) / maxq();
    } else {
      s = max - min == 0f ? 1f : (max - min) / maxq();
    }
    return roundScale(s);
  }

  /**
   * The zero point: {@code 2^(b-1)} symmetric, {@code clamp(round(-min(0, wMin) / s), 0, 2^b - 1)}
   * asymmetric.
   */
  public int zero(float wMin, float scale) {
    if (grid == Grid.GGML_MIN) {
      return 0;
    }
    if (symmetric) {
      return 1 << (bits - 1);
    }
    float min = Math.min(0f, wMin);
    // The clamp only matters when float16 rounding shrank s so far that -min/s > 2^b - 1 + 1/2.
    return Math.clamp((int) Math.rint(-min / scale), 0, maxq());
  }

  /**
   * The offset {@code m} of a group whose smallest weight is {@code wMin}: 0, or (ggml's _1) {@code
   * wMin} in float16.
   */
  public float min(float wMin) {
    return grid == Grid.GGML_MIN ? Floats.f16ToF32(Floats.f32ToF16(wMin)) : 0f;
  }

  /** {@code q = clamp(round(w / s) + z, 0, 2^b - 1)}, round half to even in float32. */
  public int code(float w, float scale, int zero) {
    return Math.clamp((int) Math.rint(w / scale) + zero, 0, maxq());
  }

  /**
   * {@code q = clamp(round((w - m) / s) + z, 0, 2^b - 1)}; the same as the 3-argument form when
   * {@code m = 0}.
   */
  public int code(float w, float scale, int zero, float min) {
    return Math.clamp((int) Math.rint((w - min) / scale) + zero, 0, maxq());
  }

  /** The value of a code: {@code s * (q - z)}. */
  public static float value(int code, float scale, int zero) {
    return scale * (code - zero);
  }

  /** The value of a code: {@code s * (q - z) + m} (ggml's {@code d * q + m} for the _1 types). */
  public static float value(int code, float scale, int zero, float min) {
    return scale * (code - zero) + min;
  }

  /**
   * Rounds a positive scale to {@code scaleDtype} (nearest, ties to even), never to 0 or infinity.
   */
  public float roundScale(float s) {
    float r = Floats.round(s, scaleDtype);
    if (r == 0f) {
      return switch (scaleDtype) {
        case F16 -> 0x1p-14f; // smallest normal float16
        case BF16, F32 -> Float.MIN_NORMAL;
        default -> throw new AssertionError();
      };
    }
    if (Float.isInfinite(r)) {
      return largestScale(scaleDtype);
    }
    return r;
  }

  /** The largest finite scale of a dtype: where {@link #roundScale} clamps. */
  public static float largestScale(DType scaleDtype) {
    return switch (scaleDtype) {
      case F16 -> 65504f;
      case BF16 -> Floats.bf16ToF32((short) 0x7F7F);
      default -> Float.MAX_VALUE;
    };
  }

  /**
   * A warning for the report when scales of {@code q} were clamped to their dtype's largest value
   * ({@link #roundScale}): the weights of those groups beyond the largest scale times the grid's
   * top level are clipped. Null when none was.
   */
  public static String clampedScalesWarning(QuantizedTensor q) {
    float largest = largestScale(q.scaleDtype());
    int clamped = 0;
    for (float scale : q.scales()) {
      if (scale == largest) {
        clamped++;
      }
    }
    if (clamped == 0) {
      return null;
    }
    return clamped
        + " of "
        + q.scales().length
        + " scales reached "
        + q.scaleDtype()
        + "'s largest value "
        + largest
        + ", so weights of those groups beyond it times the grid's top level are clipped; keep"
        + " this module unquantized (--ignore) to keep them";
  }
}
