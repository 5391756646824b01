package llmc.formats;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class FloatsTest {

  @Test
  void f16BitsDecodeToHandComputedValues() {
    assertEquals(1.0f, Floats.f16ToF32((short) 0x3C00));
    assertEquals(-2.0f, Floats.f16ToF32((short) 0xC000));
    assertEquals(0x1p-24f, Floats.f16ToF32((short) 0x0001)); // smallest subnormal, 5.96e-8
    assertEquals(5.9604645e-8f, Floats.f16ToF32((short) 0x0001));
    assertEquals(65504f, Floats.f16ToF32((short) 0x7BFF));
    assertEquals(Float.POSITIVE_INFINITY, Floats.f16ToF32((short) 0x7C00));
    assertEquals(Float.NEGATIVE_INFINITY, Floats.f16ToF32((short) 0xFC00));
    assertTrue(Float.isNaN(Floats.f16ToF32((short) 0x7E00)));
    assertEquals(-0.0f, Floats.f16ToF32((short) 0x8000));
  }

  @Test
  void f32ToF16RoundsTiesToEven() {
    assertEquals((short) 0x3C00, Floats.f32ToF16(1.0f));
    assertEquals((short) 0x3C00, Floats.f32ToF16(1 + 0x1p-11f)); // tie: 0x3C00 is even
    assertEquals((short) 0x3C02, Floats.f32ToF16(1 + 3 * 0x1p-11f)); // tie: 0x3C02 is even
    assertEquals((short) 0x3C01, Floats.f32ToF16(1 + 0x1p-11f + 0x1p-20f)); // above the tie
    assertEquals((short) 0x0000, Floats.f32ToF16(0x1p-25f)); // half the smallest subnormal
    assertEquals((short) 0x0001, Floats.f32ToF16(0x1p-24f));
    assertEquals((short) 0x7C00, Floats.f32ToF16(65520f)); // tie between 65504 and 2^16 -> infinity
    assertEquals((short) 0x7BFF, Floats.f32ToF16(65519f));
    assertTrue(Float.isNaN(Floats.f16ToF32(Floats.f32ToF16(Float.NaN))));
  }

  @Test
  void bf16IsTopHalfOfF32AndRoundsTiesToEven() {
    assertEquals(1.0f, Floats.bf16ToF32((short) 0x3F80));
    assertEquals(-2.0f, Floats.bf16ToF32((short) 0xC000));
    assertEquals((short) 0x3F80, Floats.f32ToBf16(1 + 0x1p-8f)); // tie: 0x3F80 is even
    assertEquals((short) 0x3F82, Floats.f32ToBf16(1 + 3 * 0x1p-8f)); // tie: 0x3F82 is even
    assertEquals((short) 0x3F81, Floats.f32ToBf16(1 + 0x1p-8f + 0x1p-20f));
    assertEquals((short) 0x7F80, Floats.f32ToBf16(Float.MAX_VALUE)); // rounds up to infinity
    assertEquals((short) 0xFF80, Floats.f32ToBf16(Float.NEGATIVE_INFINITY));
    assertTrue(Float.isNaN(Floats.bf16ToF32(Floats.f32ToBf16(Float.intBitsToFloat(0x7F800001)))));
  }

  @Test
  void f8e4m3fnDecodesMaxSubnormalAndNan() {
    assertEquals(448f, Floats.f8e4m3ToF32((byte) 0x7E)); // 0 1111 110 = 1.75 * 2^8
    assertEquals(-448f, Floats.f8e4m3ToF32((byte) 0xFE));
    assertEquals(1.0f, Floats.f8e4m3ToF32((byte) 0x38)); // 0 0111 000
    assertEquals(-2.0f, Floats.f8e4m3ToF32((byte) 0xC0)); // 1 1000 000
    assertEquals(0x1p-9f, Floats.f8e4m3ToF32((byte) 0x01)); // smallest subnormal
    assertEquals(0x1p-6f, Floats.f8e4m3ToF32((byte) 0x08)); // smallest normal
    assertEquals(0x1.cp-7f, Floats.f8e4m3ToF32((byte) 0x07)); // largest subnormal 7/8 * 2^-6
    assertTrue(Float.isNaN(Floats.f8e4m3ToF32((byte) 0x7F)));
    assertTrue(Float.isNaN(Floats.f8e4m3ToF32((byte) 0xFF)));
  }

  @Test
  void f8e5m2DecodesLikeTopByteOfF16() {
    assertEquals(1.0f, Floats.f8e5m2ToF32((byte) 0x3C));
    assertEquals(-2.0f, Floats.f8e5m2ToF32((byte) 0xC0));
    assertEquals(57344f, Floats.f8e5m2ToF32((byte) 0x7B)); // 1.75 * 2^15
    assertEquals(0x1p-16f, Floats.f8e5m2ToF32((byte) 0x01));
    assertEquals(Float.POSITIVE_INFINITY, Floats.f8e5m2ToF32((byte) 0x7C));
    assertTrue(Float.isNaN(Floats.f8e5m2ToF32((byte) 0x7E)));
  }

  @Test
  void everyF16RoundTripsThroughF32() {
    for (int bits = 0; bits < 0x10000; bits++) {
      float v = Floats.f16ToF32((short) bits);
      if (!Float.isNaN(v)) {
        assertEquals((short) bits, Floats.f32ToF16(v), "bits " + Integer.toHexString(bits));
      }
    }
  }

  /** E4M3 (fn) from its bit layout: 1 sign, 4 exponent bits with bias 7, 3 mantissa bits. */
  private static double e4m3FromBits(int b) {
    int sign = (b >> 7) & 1;
    int exponent = (b >> 3) & 15;
    int mantissa = b & 7;
    double magnitude =
        exponent == 0
            ? mantissa / 8.0 * Math.pow(2, 1 - 7) // subnormal: 0.M x 2^-6
            : (1 + mantissa / 8.0) * Math.pow(2, exponent - 7);
    return sign == 1 ? -magnitude : magnitude;
  }

  /**
   * The encoder against the table: every finite byte round-trips; values between two neighbours go
   * to the nearer, a midpoint to the one with the even mantissa; beyond 448 saturates; NaN stays
   * NaN. Midpoints, values just off them, subnormals and random floats over the whole range.
   */
  @Test
  void e4m3EncodingIsNearestEvenAgainstTheBitLayout() {
    java.util.List<Integer> finite = new java.util.ArrayList<>();
    for (int b = 0; b < 128; b++) {
      if (b != 0x7F) { // S.1111.111 is NaN in e4m3fn
        finite.add(b);
        assertEquals(e4m3FromBits(b), Floats.f8e4m3ToF32((byte) b), 0.0, "decode " + b);
        assertEquals(b, Floats.f32ToF8e4m3((float) e4m3FromBits(b)) & 0xFF, "round trip " + b);
        assertEquals(b | 0x80, Floats.f32ToF8e4m3((float) -e4m3FromBits(b)) & 0xFF);
      }
    }
    assertEquals(448.0, e4m3FromBits(0x7E));
    java.util.Random random = new java.util.Random(11);
    java.util.List<Float> probes = new java.util.ArrayList<>();
    for (int i = 0; i + 1 < finite.size(); i++) {
      double lo = e4m3FromBits(finite.get(i));
      double hi = e4m3FromBits(finite.get(i + 1));
      float mid = (float) ((lo + hi) / 2);
      probes.add(mid);
      probes.add(Math.nextUp(mid));
      probes.add(Math.nextDown(mid));
    }
    for (int i = 0; i < 100_000; i++) {
      probes.add((float) (Math.scalb(random.nextDouble(), random.nextInt(20) - 12)));
    }
    for (float v : probes) {
      int expected = nearestEven(v, finite);
      assertEquals(expected, Floats.f32ToF8e4m3(v) & 0xFF, "encode " + v);
      assertEquals(expected | 0x80, Floats.f32ToF8e4m3(-v) & 0xFF, "encode " + -v);
    }
    assertEquals(0x7E, Floats.f32ToF8e4m3(1e6f) & 0xFF, "saturates at 448");
    assertEquals(0x7E, Floats.f32ToF8e4m3(464f) & 0xFF);
    assertEquals(0xFE, Floats.f32ToF8e4m3(Float.NEGATIVE_INFINITY) & 0xFF);
    assertTrue(Float.isNaN(Floats.f8e4m3ToF32(Floats.f32ToF8e4m3(Float.NaN))));
    assertEquals(0x80, Floats.f32ToF8e4m3(-0f) & 0xFF);
    assertEquals(0, Floats.f32ToF8e4m3(Math.scalb(1f, -11)) & 0xFF, "2^-11 is below half of 2^-9");
    assertEquals(1, Floats.f32ToF8e4m3(Math.nextUp(Math.scalb(1f, -10))) & 0xFF);
    assertEquals(0, Floats.f32ToF8e4m3(Math.scalb(1f, -10)) & 0xFF, "half of 2^-9: ties to 0");
  }

  /** The finite byte nearest to {@code v >= 0}; on a tie the one with the even mantissa. */
  private static int nearestEven(float v, java.util.List<Integer> finite) {
    double x = Math.min(v, 448.0);
    int best = -1;
    double bestDistance = Double.POSITIVE_INFINITY;
    for (int b : finite) {
      double d = Math.abs(e4m3FromBits(b) - x);
      if (d < bestDistance || (d == bestDistance && (b & 1) == 0)) {
        best = b;
        bestDistance = d;
      }
    }
    return best;
  }
}
