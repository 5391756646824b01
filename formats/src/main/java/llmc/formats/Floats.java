package llmc.formats;

/** Scalar conversions, exact (round-to-nearest-even where narrowing). */
public final class Floats {

  /** float8 e4m3fn (bias 7, no infinities, S.1111.111 is NaN) for every byte. */
  private static final float[] F8_E4M3 = new float[256];

  /** float8 e5m2 (bias 15, IEEE-like) for every byte: the top byte of a float16. */
  private static final float[] F8_E5M2 = new float[256];

  static {
    for (int b = 0; b < 256; b++) {
      F8_E4M3[b] = decodeE4m3(b);
      F8_E5M2[b] = Float.float16ToFloat((short) (b << 8));
    }
  }

  private Floats() {}

  private static final jdk.incubator.vector.VectorSpecies<Float> S =
      jdk.incubator.vector.FloatVector.SPECIES_PREFERRED;

  /**
   * The index of the first NaN or infinity in {@code v[from, from + count)}, or -1: a vector of
   * values at a time (a scalar loop that stops at the first one does not vectorize, and checking a
   * 70B model's weights that way took a second per 10^9 values).
   */
  public static int firstNonFinite(float[] v, int from, int count) {
    int end = from + count;
    int i = from;
    for (; i + S.length() <= end; i += S.length()) {
      // NaN compares false, infinity is above the largest float
      if (!jdk.incubator.vector.FloatVector.fromArray(S, v, i)
          .abs()
          .compare(jdk.incubator.vector.VectorOperators.LE, Float.MAX_VALUE)
          .allTrue()) {
        break;
      }
    }
    for (; i < end; i++) {
      if (!Float.isFinite(v[i])) {
        return i;
      }
    }
    return -1;
  }

  public static float f16ToF32(short bits) {
    return Float.float16ToFloat(bits);
  }

  public static short f32ToF16(float v) {
    return Float.floatToFloat16(v);
  }

  /** bfloat16 is the top 16 bits of a float32. */
  public static float bf16ToF32(short bits) {
    return Float.intBitsToFloat((bits & 0xFFFF) << 16);
  }

  public static short f32ToBf16(float v) {
    int bits = Float.floatToRawIntBits(v);
    if (Float.isNaN(v)) {
      return (short) ((bits >>> 16) | 0x0040);
    }
    int roundingBias = 0x7FFF + ((bits >>> 16) & 1);
    return (short) ((bits + roundingBias) >>> 16);
  }

  public static float f8e4m3ToF32(byte bits) {
    return F8_E4M3[bits & 0xFF];
  }

  /**
   * {@code v} as stored in {@code dtype} and read back: rounded to nearest even for F16 and BF16,
   * unchanged for any other dtype.
   */
  public static float round(float v, DType dtype) {
    return switch (dtype) {
      case F16 -> f16ToF32(f32ToF16(v));
      case BF16 -> bf16ToF32(f32ToBf16(v));
      default -> v;
    };
  }

  /** The largest finite float8 e4m3fn, {@code 1.75 * 2^8}. */
  public static final float E4M3_MAX = 448f;

  /** The float8 e4m3fn values of every byte, {@code [256]} (a new array; 0x7F and 0xFF are NaN). */
  public static float[] e4m3Values() {
    return F8_E4M3.clone();
  }

  /**
   * float32 to float8 e4m3fn, round to nearest, ties to even, saturating at {@code ±448} (as
   * compressed-tensors and vLLM clamp before the cast); NaN stays NaN, {@code -0.0} keeps its sign.
   * With {@code e = max(floor(log2 |v|), -6)} the representable values near {@code |v|} are the
   * multiples of {@code 2^(e-3)} (3 mantissa bits; the subnormals are the multiples of {@code
   * 2^-9}), and the parity of that multiple is the parity of the mantissa: {@code rint} of the
   * exact quotient is the nearest-even value.
   */
  public static byte f32ToF8e4m3(float v) {
    if (Float.isNaN(v)) {
      return 0x7F;
    }
    int sign = (Float.floatToRawIntBits(v) >>> 24) & 0x80;
    float a = Math.min(Math.abs(v), E4M3_MAX);
    int e = Math.max(Math.getExponent(a), -6); // a == 0: getExponent is -127
    float step = Math.scalb(1f, e - 3);
    int m = (int) Math.rint(a / step); // exact: a power-of-two divisor
    if (m == 16) { // rounded up into the next binade
      e++;
      m = 8;
    }
    int bits;
    if (m < 8) { // subnormal (e == -6) or zero: exponent field 0, mantissa m
      bits = m;
    } else {
      bits = ((e + 7) << 3) | (m - 8);
    }
    return (byte) (sign | bits);
  }

  public static float f8e5m2ToF32(byte bits) {
    return F8_E5M2[bits & 0xFF];
  }

  private static float decodeE4m3(int b) {
    float sign = (b & 0x80) != 0 ? -1f : 1f;
    int exponent = (b >>> 3) & 0xF;
    int mantissa = b & 0x7;
    if (exponent == 0xF && mantissa == 0x7) {
      return Float.NaN;
    }
    if (exponent == 0) {
      return sign * Math.scalb((float) mantissa, -9);
    }
    return sign * Math.scalb(1f + mantissa / 8f, exponent - 7);
  }
}
