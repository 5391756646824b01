package llmc.quantize;

import llmc.formats.DType;
import llmc.formats.Floats;

/**
 * An integer grid of PROTOCOLS.md ("Quantization grids"): {@code b} bits, levels {@code 0 .. 2^b - 1},
 * one {@code (scale, zero)} per row and per {@code groupSize} consecutive input columns.
 *
 * <p>The scale is rounded to {@code scaleDtype} as soon as it is computed, before the zero and the
 * codes, so that the stored model is exactly the model the quantizer assumed (FORMATS.md, GPTQ).
 * If the rounded scale is 0 (a group of tiny weights under float16) it is raised to the smallest
 * positive normal number of {@code scaleDtype}: every code of such a group then lands on (or next
 * to) the zero point and the group dequantizes to (almost) zero, an error below its tiny weights.
 * A scale that overflows the dtype is clamped to its largest finite value.
 *
 * @param bits       2 to 8
 * @param groupSize  input columns per group; -1, or any value {@code >= cols}, means one group per row
 * @param symmetric  {@code z = 2^(b-1)} and {@code s = 2 max|w| / (2^b - 1)}
 * @param scaleDtype F16 (GPTQ, GGUF), BF16, or F32 (no rounding)
 */
public record QuantScheme(int bits, int groupSize, boolean symmetric, DType scaleDtype) {

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
  }

  /** Float16 scales, the GPTQ default. */
  public QuantScheme(int bits, int groupSize, boolean symmetric) {
    this(bits, groupSize, symmetric, DType.F16);
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
   * The scale of a group whose weights span {@code [wMin, wMax]}, already rounded to the scale dtype:
   * asym {@code s = (max(0, wMax) - min(0, wMin)) / (2^b - 1)}, sym {@code s = 2 max|w| / (2^b - 1)},
   * all-zero group {@code s = 1}. Float32 arithmetic, as the GPTQ quantizer.
   */
  public float scale(float wMin, float wMax) {
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

  /** The zero point: {@code 2^(b-1)} symmetric, {@code clamp(round(-min(0, wMin) / s), 0, 2^b - 1)} asymmetric. */
  public int zero(float wMin, float scale) {
    if (symmetric) {
      return 1 << (bits - 1);
    }
    float min = Math.min(0f, wMin);
    // The clamp only matters when float16 rounding shrank s so far that -min/s > 2^b - 1 + 1/2.
    return Math.clamp((int) Math.rint(-min / scale), 0, maxq());
  }

  /** {@code q = clamp(round(w / s) + z, 0, 2^b - 1)}, round half to even in float32. */
  public int code(float w, float scale, int zero) {
    return Math.clamp((int) Math.rint(w / scale) + zero, 0, maxq());
  }

  /** The value of a code: {@code s * (q - z)}. */
  public static float value(int code, float scale, int zero) {
    return scale * (code - zero);
  }

  /** Rounds a positive scale to {@code scaleDtype} (nearest, ties to even), never to 0 or infinity. */
  public float roundScale(float s) {
    float r = switch (scaleDtype) {
      case F16 -> Floats.f16ToF32(Floats.f32ToF16(s));
      case BF16 -> Floats.bf16ToF32(Floats.f32ToBf16(s));
      default -> s;
    };
    if (r == 0f) {
      return switch (scaleDtype) {
        case F16 -> 0x1p-14f;            // smallest normal float16
        case BF16, F32 -> Float.MIN_NORMAL;
        default -> throw new AssertionError();
      };
    }
    if (Float.isInfinite(r)) {
      return switch (scaleDtype) {
        case F16 -> 65504f;
        case BF16 -> Floats.bf16ToF32((short) 0x7F7F);
        default -> Float.MAX_VALUE;
      };
    }
    return r;
  }
}
