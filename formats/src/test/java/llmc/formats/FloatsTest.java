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
}
