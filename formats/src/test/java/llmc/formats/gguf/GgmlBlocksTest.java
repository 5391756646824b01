package llmc.formats.gguf;

import static llmc.formats.gguf.GgufTestFiles.decode;
import static llmc.formats.gguf.GgufTestFiles.encode;
import static llmc.formats.gguf.GgufTestFiles.hex;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * Each block type against bytes worked out by hand from llama.cpp's reference quantizers
 * (quantize_row_*_ref, ggml/src/ggml-quants.c, read at ggml-org/llama.cpp commit 01243c58) and its
 * dequantizers. Every hand block is chosen so that d is a power of two and the float32 arithmetic
 * is exact or far from a rounding boundary, except where a test is about exactly that boundary. The
 * same blocks, and 3,840 random ones per type, were also run through llama.cpp's compiled
 * quantize_row_*_ref and dequantize_row_* (libggml-base.so of the npm
 * package @node-llama-cpp/linux-x64 3.22.1): identical bytes and bit-identical floats. That check
 * needs the package, so it is not part of this suite.
 */
class GgmlBlocksTest {

  /**
   * value = d * (q - zero) for each code, d and zero given; the decode rule of Q4_0 / Q5_0 / Q8_0.
   */
  private static float[] symmetric(float d, int zero, int[] q) {
    float[] v = new float[q.length];
    for (int j = 0; j < q.length; j++) {
      v[j] = (q[j] - zero) * d;
    }
    return v;
  }

  /** value = d * q + m; the decode rule of Q4_1 / Q5_1. */
  private static float[] asymmetric(float d, float m, int[] q) {
    float[] v = new float[q.length];
    for (int j = 0; j < q.length; j++) {
      v[j] = q[j] * d + m;
    }
    return v;
  }

  @Test
  void typeTableMatchesGgml() {
    assertEquals(0, GgmlType.F32.id());
    assertEquals(1, GgmlType.F16.id());
    assertEquals(2, GgmlType.Q4_0.id());
    assertEquals(3, GgmlType.Q4_1.id());
    assertEquals(6, GgmlType.Q5_0.id());
    assertEquals(7, GgmlType.Q5_1.id());
    assertEquals(8, GgmlType.Q8_0.id());
    int[] bytes = {4, 2, 18, 20, 22, 24, 34};
    int[] blocks = {1, 1, 32, 32, 32, 32, 32};
    for (GgmlType t : GgmlType.values()) {
      assertEquals(bytes[t.ordinal()], t.bytesPerBlock(), t.name());
      assertEquals(blocks[t.ordinal()], t.blockSize(), t.name());
      assertEquals(t, GgmlType.byId(t.id()).orElseThrow());
      assertEquals(t, GgmlType.byName(t.ggmlName()));
    }
    assertEquals("q4_0", GgmlType.Q4_0.ggmlName());
    assertTrue(GgmlType.byId(12).isEmpty()); // q4_K: not read by llmc
    GgufTestFiles.assertBadInput(() -> GgmlType.byName("q4_k"), "q4_k", "q4_0", "q8_0");
    assertEquals(4 * 18, GgmlType.Q4_0.byteSize(128));
    assertThrows(IllegalArgumentException.class, () -> GgmlType.Q4_0.byteSize(48));
  }

  @Test
  void q8_0BlockRoundsHalfAwayFromZeroLikeRoundf() {
    // amax = 127, so d = 127 / 127 = 1 (f16 0x3c00, bytes 00 3c), id = 1 and q = roundf(x):
    // 2.5 -> 3, -2.5 -> -3 (Java's Math.round would give -2), 63.5 -> 64, -126.5 -> -127, 1.49 ->
    // 1, -1.51 -> -2
    float[] x = {
      127, -127, 2.5f, -2.5f, 0.5f, -0.5f, 1.49f, -1.51f, 0, 0.4f, -0.4f, 63.5f, -63.5f, 126.5f,
      -126.5f, 1, 2, 3, 4, 5, 6, 7, 8, 9, -10, -20, -30, -40, -50, -60, -70, -80
    };
    int[] q = {
      127, -127, 3, -3, 1, -1, 1, -2,
      0, 0, 0, 64, -64, 127, -127, 1,
      2, 3, 4, 5, 6, 7, 8, 9,
      -10, -20, -30, -40, -50, -60, -70, -80
    };
    // the codes as int8: 127 = 7f, -127 = 81, -3 = fd, -1 = ff, -2 = fe, 64 = 40, -64 = c0, -10 =
    // f6, ... -80 = b0
    byte[] expected =
        hex("003c 7f8103fd01ff01fe 00000040c07f8101 0203040506070809 f6ece2d8cec4bab0");
    byte[] block = encode(GgmlType.Q8_0, x);
    assertEquals(hex(expected), hex(block));
    assertArrayEquals(symmetric(1f, 0, q), decode(GgmlType.Q8_0, block));
  }

  @Test
  void q8_0CodesUseTheFloat32ScaleNotTheStoredF16One() {
    // amax = 127 * (1 + 2^-12) = 127.031005859375 (exact in float32): d = 1 + 2^-12 exactly, which
    // f16 rounds
    // to 1.0 (its 10-bit mantissa cannot hold 2^-12). id = 1 / d = 1 - 2^-12 + 2^-24 (float32).
    // x = 2.5 + 2^-12: x * id = 2.5 - 1.5 * 2^-12 (after float32 rounding) = 2.49963..., so roundf
    // gives 2,
    // although x / 1.0 (the stored d) would round to 3. llama.cpp writes 2; decoding gives 2 * 1.0
    // = 2.
    float amax = 127.031005859375f;
    assertEquals(127 * (1 + 0x1p-12f), amax);
    float x = 2.500244140625f;
    assertEquals(2.5f + 0x1p-12f, x);
    float[] values = new float[32];
    values[0] = amax;
    values[1] = x;
    values[2] = -x;
    byte[] block = encode(GgmlType.Q8_0, values);
    // d: 00 3c; codes 127 (amax * id = 127 * (1 + 2^-36) -> 127), 2, -2 (fe), then 29 zeros
    assertEquals("003c" + "7f02fe" + "00".repeat(29), hex(block));
    float[] decoded = decode(GgmlType.Q8_0, block);
    assertEquals(127f, decoded[0]);
    assertEquals(2f, decoded[1]);
    assertEquals(-2f, decoded[2]);
  }

  @Test
  void q4_0BlockWithPositiveLargestValue() {
    // max = 8 (the first value of largest magnitude: -8 at index 24 ties and loses), d = 8 / -8 =
    // -1
    // (f16 0xbc00, bytes 00 bc), id = -1, q = min(15, (int) (-x + 8.5)):
    // 8 -> 0, 0 -> 8, 1 -> 7, -1 -> 9, 0.5 -> 8, -0.5 -> 9, 1.5 -> 7, -1.5 -> 10, 2.4 -> 6 (6.1),
    // -2.4 -> 10,
    // 3 -> 5, -3 -> 11, 7 -> 1, -7 -> 15, 0.25 -> 8, -6 -> 14, 4 -> 4, -4 -> 12, 5 -> 3, -5 -> 13,
    // 6 -> 2,
    // -6 -> 14, 2 -> 6, -2 -> 10, -8 -> 16 clamped to 15 (so it decodes to -7, not -8), 0 -> 8.
    float[] x = {
      8, 0, 1, -1, 0.5f, -0.5f, 1.5f, -1.5f, 2.4f, -2.4f, 3, -3, 7, -7, 0.25f, -6, 4, -4, 5, -5, 6,
      -6, 2, -2, -8, 0, 0, 0, 0, 0, 0, 0
    };
    int[] q = {
      0, 8, 7, 9, 8, 9, 7, 10, 6, 10, 5, 11, 1, 15, 8, 14,
      4, 12, 3, 13, 2, 14, 6, 10, 15, 8, 8, 8, 8, 8, 8, 8
    };
    // byte j = q[j] | q[j + 16] << 4: 0|4<<4 = 40, 8|12<<4 = c8, 7|3<<4 = 37, 9|13<<4 = d9, ...
    byte[] expected = hex("00bc 40c837d928e967aa f68a858b818f888e");
    byte[] block = encode(GgmlType.Q4_0, x);
    assertEquals(hex(expected), hex(block));
    float[] decoded = decode(GgmlType.Q4_0, block);
    assertArrayEquals(symmetric(-1f, 8, q), decoded);
    assertEquals(8f, decoded[0]);
    assertEquals(-7f, decoded[24]);
  }

  @Test
  void q4_0BlockWithNegativeLargestValue() {
    // max = -8 (8 at index 20 has the same magnitude but comes later), d = -8 / -8 = 1 (bytes 00
    // 3c), id = 1,
    // q = min(15, (int) (x + 8.5)): -8 -> 0, 7.9 -> 16 -> 15, 0.49 -> 8 (8.99), -0.51 -> 7 (7.99),
    // -0.5 -> 8, 0.5 -> 9, 8 -> 16 -> 15, 0 -> 8.
    float[] x = new float[32];
    x[0] = -8;
    x[1] = 7.9f;
    x[2] = 0.49f;
    x[3] = -0.51f;
    x[4] = -0.5f;
    x[5] = 0.5f;
    x[20] = 8;
    int[] q = new int[32];
    Arrays.fill(q, 8);
    q[0] = 0;
    q[1] = 15;
    q[3] = 7;
    q[5] = 9;
    q[20] = 15;
    // byte j = q[j] | q[j + 16] << 4: 0|8<<4 = 80, 15|8<<4 = 8f, 88, 87, 8|15<<4 = f8, 89, then 88
    byte[] expected = hex("003c 808f8887f889" + "88".repeat(10));
    byte[] block = encode(GgmlType.Q4_0, x);
    assertEquals(hex(expected), hex(block));
    assertArrayEquals(symmetric(1f, 8, q), decode(GgmlType.Q4_0, block));
  }

  @Test
  void allZeroBlocksFollowLlamaCpp() {
    // Q4_0 / Q5_0: max = 0, d = 0 / -8 = -0.0 in float32, stored as f16 0x8000 (bytes 00 80); id =
    // 0, so every
    // code is the zero point: (int) (0 + 8.5) = 8 (nibbles 88), (int) (0 + 16.5) = 16 (all qh bits
    // set).
    // Q8_0: d = 0 / 127 = +0.0. Q4_1 / Q5_1: d = (0 - 0) / 15 = 0, m = 0, codes (int) 0.5 = 0.
    float[] zeros = new float[32];
    assertEquals("0080" + "88".repeat(16), hex(encode(GgmlType.Q4_0, zeros)));
    assertEquals("0080" + "ffffffff" + "00".repeat(16), hex(encode(GgmlType.Q5_0, zeros)));
    assertEquals("0000" + "00".repeat(32), hex(encode(GgmlType.Q8_0, zeros)));
    assertEquals("00000000" + "00".repeat(16), hex(encode(GgmlType.Q4_1, zeros)));
    assertEquals("00000000" + "00000000" + "00".repeat(16), hex(encode(GgmlType.Q5_1, zeros)));
    for (GgmlType t :
        new GgmlType[] {
          GgmlType.Q4_0, GgmlType.Q4_1, GgmlType.Q5_0, GgmlType.Q5_1, GgmlType.Q8_0
        }) {
      for (float v : decode(t, encode(t, zeros))) {
        assertEquals(0f, Math.abs(v), t.name()); // -0.0 where d = -0.0
      }
    }
  }

  @Test
  void q4_1Block() {
    // min = -1, max = 14: d = 15 / 15 = 1 (00 3c), m = -1 (f16 0xbc00: 00 bc), id = 1,
    // q = min(15, (int) (x + 1 + 0.5)): -1 -> 0, 14 -> 15, 0 -> 1, 0.49 -> 1 (1.99), 0.5 -> 2, 6.5
    // -> 8,
    // 3 -> 4, 3.6 -> 5, 12.2 -> 13, 13.5 -> 15, -0.6 -> 0 (0.9), 1 -> 2, 2 -> 3, 4 -> 5, 5 -> 6, 7
    // -> 8,
    // 8 -> 9, ..., 13 -> 14, -0.5 -> 1, 0.25 -> 1, 0 -> 1.
    float[] x = {
      -1, 14, 0, 0.49f, 0.5f, 6.5f, 3, 3.6f, 12.2f, 13.5f, -0.6f, 1, 2, 4, 5, 7, 8, 9, 10, 11, 12,
      13, -0.5f, 0.25f, 0, 0, 0, 0, 0, 0, 0, 0
    };
    int[] q = {
      0, 15, 1, 1, 2, 8, 4, 5, 13, 15, 0, 2, 3, 5, 6, 8,
      9, 10, 11, 12, 13, 14, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1
    };
    // byte j = q[j] | q[j + 16] << 4: 0|9<<4 = 90, 15|10<<4 = af, 1|11<<4 = b1, ..., 8|1<<4 = 18
    byte[] expected = hex("003c 00bc 90afb1c1d2e814151d1f101213151618");
    byte[] block = encode(GgmlType.Q4_1, x);
    assertEquals(hex(expected), hex(block));
    assertArrayEquals(asymmetric(1f, -1f, q), decode(GgmlType.Q4_1, block));
  }

  @Test
  void q5_0Block() {
    // max = -16 (16 at index 16 ties and loses), d = -16 / -16 = 1 (00 3c), id = 1,
    // q = min(31, (int) (x + 16.5)): -16 -> 0, 15 -> 31, 0 -> 16, 1 -> 17, -1 -> 15, 0.5 -> 17,
    // -0.5 -> 16,
    // 7.4 -> 23, -7.6 -> 8, 10 -> 26, -10 -> 6, 15.9 -> 32 -> 31, 3 -> 19, -3 -> 13, 12 -> 28, -12
    // -> 4,
    // 16 -> 32 -> 31, 8 -> 24, -8 -> 8, 4 -> 20, -4 -> 12, 2 -> 18, -2 -> 14, 1.5 -> 18, 0 -> 16.
    float[] x = {
      -16, 15, 0, 1, -1, 0.5f, -0.5f, 7.4f, -7.6f, 10, -10, 15.9f, 3, -3, 12, -12, 16, 8, -8, 4, -4,
      2, -2, 1.5f, 0, 0, 0, 0, 0, 0, 0, 0
    };
    int[] q = {
      0, 31, 16, 17, 15, 17, 16, 23, 8, 26, 6, 31, 19, 13, 28, 4,
      31, 24, 8, 20, 12, 18, 14, 18, 16, 16, 16, 16, 16, 16, 16, 16
    };
    // qh bit j = q[j] >= 16: codes 0..15 set bits 1,2,3,5,6,7,9,11,12,14 = 0x5aee; codes 16..31 set
    // bits
    // 16,17,19,21,23 and 24..31 = 0xffab0000; qh = 0xffab5aee, little-endian ee 5a ab ff.
    // low nibbles q & 15: 0,15,0,1,15,1,0,7,8,10,6,15,3,13,12,4 | 15,8,8,4,12,2,14,2,0,...
    // byte j = lo[j] | lo[j + 16] << 4: f0 8f 80 41 cf 21 e0 27 08 0a 06 0f 03 0d 0c 04
    byte[] expected = hex("003c ee5aabff f08f8041cf21e027080a060f030d0c04");
    byte[] block = encode(GgmlType.Q5_0, x);
    assertEquals(hex(expected), hex(block));
    assertArrayEquals(symmetric(1f, 16, q), decode(GgmlType.Q5_0, block));
  }

  @Test
  void q5_1Block() {
    // min = -2, max = 29: d = 31 / 31 = 1 (00 3c), m = -2 (f16 0xc000: 00 c0), id = 1,
    // q = (int) (x + 2 + 0.5): -2 -> 0, 29 -> 31, 0 -> 2, 13.5 -> 16, 13.49 -> 15 (15.99), -1.5 ->
    // 1,
    // 5 -> 7, 6 -> 8, ..., 28 -> 30.
    float[] x = {
      -2, 29, 0, 13.5f, 13.49f, -1.5f, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20,
      21, 22, 23, 24, 25, 26, 27, 28, -2, 29
    };
    int[] q = {
      0, 31, 2, 16, 15, 1, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
      17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 0, 31
    };
    // qh: codes 1, 3, 15 of the first half are >= 16 (0x800a); of the second half all but index 30
    // (0xbfff0000); qh = 0xbfff800a, little-endian 0a 80 ff bf.
    // byte j = (q[j] & 15) | (q[j + 16] & 15) << 4: 0|1<<4 = 10, 15|2<<4 = 2f, 2|3<<4 = 32, 0|4<<4
    // = 40, ...,
    // 15|0<<4 = 0f, 0|15<<4 = f0
    byte[] expected = hex("003c 00c0 0a80ffbf 102f32405f61778899aabbccddee0ff0");
    byte[] block = encode(GgmlType.Q5_1, x);
    assertEquals(hex(expected), hex(block));
    assertArrayEquals(asymmetric(1f, -2f, q), decode(GgmlType.Q5_1, block));
  }

  @Test
  void f16AndF32AreStoredAsIs() {
    // f16 rounds to nearest even: 1/3 -> 0x3555, 65504 -> 0x7bff, 1 + 2^-11 (a tie) -> 0x3c00,
    // 1 + 3 * 2^-11 (a tie) -> 0x3c02, -2 -> 0xc000; little-endian.
    float[] x = {1f / 3, 65504, 1 + 0x1p-11f, 1 + 3 * 0x1p-11f, -2};
    byte[] f16 = encode(GgmlType.F16, x);
    assertEquals("5535ff7b003c023c00c0", hex(f16));
    assertArrayEquals(
        new float[] {0.333251953125f, 65504, 1, 1 + 0x1p-9f, -2}, decode(GgmlType.F16, f16));
    byte[] f32 = encode(GgmlType.F32, new float[] {1, -2.5f});
    assertEquals("0000803f000020c0", hex(f32));
    assertArrayEquals(new float[] {1, -2.5f}, decode(GgmlType.F32, f32));
  }

  @Test
  void rowsOfSeveralBlocksAndSlicesEncodeBlockByBlock() {
    Random random = new Random(1);
    float[] row = new float[4 * 32];
    for (int i = 0; i < row.length; i++) {
      row[i] = (float) random.nextGaussian();
    }
    for (GgmlType t : GgmlType.values()) {
      byte[] whole = encode(t, row);
      float[] block2 = Arrays.copyOfRange(row, 64, 96);
      byte[] alone = encode(t, block2);
      byte[] slice = new byte[alone.length];
      GgmlBlocks.encode(t, row, 64, 32, MemorySegment.ofArray(slice));
      assertEquals(hex(alone), hex(slice), t.name());
      assertEquals(
          hex(alone),
          hex(Arrays.copyOfRange(whole, (int) t.byteSize(64), (int) t.byteSize(96))),
          t.name());
      float[] decoded = new float[row.length];
      GgmlBlocks.decode(t, MemorySegment.ofArray(slice), decoded, 64, 32);
      assertArrayEquals(
          Arrays.copyOfRange(decode(t, whole), 64, 96),
          Arrays.copyOfRange(decoded, 64, 96),
          t.name());
    }
  }

  @Test
  void quantizedEncodeRefusesNonFiniteValuesAndPartialBlocks() {
    float[] x = new float[32];
    x[7] = Float.NaN;
    IllegalArgumentException e =
        assertThrows(IllegalArgumentException.class, () -> encode(GgmlType.Q4_0, x));
    assertTrue(e.getMessage().contains("index 7"), e.getMessage());
    x[7] = Float.POSITIVE_INFINITY;
    assertThrows(IllegalArgumentException.class, () -> encode(GgmlType.Q8_0, x));
    assertThrows(IllegalArgumentException.class, () -> encode(GgmlType.Q4_1, new float[48]));
    assertThrows(
        IllegalArgumentException.class,
        () ->
            GgmlBlocks.encode(
                GgmlType.Q8_0,
                new float[64],
                0,
                64,
                MemorySegment.ofArray(new byte[67]))); // needs 68
  }

  @Test
  void codesAreStoredWithoutRounding() {
    // Q4_1: codes 0..15 then 15..0, scale 0.25 (f16 0x3400: 00 34), min -1.5 (f16 0xbe00: 00 be);
    // byte j = j | (15 - j) << 4 = f0 e1 d2 c3 b4 a5 96 87 78 69 5a 4b 3c 2d 1e 0f
    int[] codes = new int[32];
    for (int j = 0; j < 32; j++) {
      codes[j] = j < 16 ? j : 31 - j;
    }
    byte[] q41 = new byte[20];
    GgmlBlocks.encodeCodes(
        GgmlType.Q4_1,
        codes,
        new float[] {0.25f},
        new float[] {-1.5f},
        0,
        32,
        MemorySegment.ofArray(q41));
    assertEquals("003400be" + "f0e1d2c3b4a5968778695a4b3c2d1e0f", hex(q41));
    assertArrayEquals(asymmetric(0.25f, -1.5f, codes), decode(GgmlType.Q4_1, q41));

    // Q8_0 holds every int8, -128 included: scale 0.5 (f16 0x3800: 00 38), codes -128 (80), 127
    // (7f), 0...
    int[] q8 = new int[32];
    q8[0] = -128;
    q8[1] = 127;
    byte[] q80 = new byte[34];
    GgmlBlocks.encodeCodes(
        GgmlType.Q8_0, q8, new float[] {0.5f}, null, 0, 32, MemorySegment.ofArray(q80));
    assertEquals("0038807f" + "00".repeat(30), hex(q80));
    float[] decoded = decode(GgmlType.Q8_0, q80);
    assertEquals(-64f, decoded[0]);
    assertEquals(63.5f, decoded[1]);
  }

  @Test
  void codesOfEveryTypeDecodeToTheirGrid() {
    Random random = new Random(7);
    for (GgmlType t :
        new GgmlType[] {
          GgmlType.Q4_0, GgmlType.Q4_1, GgmlType.Q5_0, GgmlType.Q5_1, GgmlType.Q8_0
        }) {
      int levels = t == GgmlType.Q8_0 ? 256 : t == GgmlType.Q5_0 || t == GgmlType.Q5_1 ? 32 : 16;
      int lowest = t == GgmlType.Q8_0 ? -128 : 0;
      int zero = t == GgmlType.Q4_0 ? 8 : t == GgmlType.Q5_0 ? 16 : 0;
      boolean hasMin = t == GgmlType.Q4_1 || t == GgmlType.Q5_1;
      int[] codes = new int[3 * 32];
      for (int i = 0; i < codes.length; i++) {
        codes[i] = lowest + random.nextInt(levels);
      }
      // f16-exact scales and mins: any f16 value, here 1/1024 steps
      float[] scales = {0.0205078125f, 3.5f, -0.001953125f};
      float[] mins = hasMin ? new float[] {-0.5f, 0.125f, -12.25f} : null;
      byte[] bytes = new byte[(int) t.byteSize(codes.length)];
      GgmlBlocks.encodeCodes(t, codes, scales, mins, 0, codes.length, MemorySegment.ofArray(bytes));
      float[] decoded = decode(t, bytes);
      for (int i = 0; i < codes.length; i++) {
        float d = scales[i / 32];
        float expected = hasMin ? codes[i] * d + mins[i / 32] : (codes[i] - zero) * d;
        assertEquals(expected, decoded[i], t + " weight " + i);
      }
    }
  }

  @Test
  void codesOutOfRangeOrScalesNotF16AreRefused() {
    MemorySegment dst = MemorySegment.ofArray(new byte[34]);
    float[] one = {1f};
    assertRefused(GgmlType.Q4_0, 16, one, null, dst, "code 16", "[0, 15]");
    assertRefused(GgmlType.Q4_1, -1, one, one, dst, "code -1");
    assertRefused(GgmlType.Q5_0, 32, one, null, dst, "[0, 31]");
    assertRefused(GgmlType.Q5_1, 32, one, one, dst, "code 32");
    assertRefused(GgmlType.Q8_0, 128, one, null, dst, "[-128, 127]");
    assertRefused(GgmlType.Q8_0, -129, one, null, dst, "code -129");
    assertRefused(
        GgmlType.Q4_0, 3, new float[] {0.1f}, null, dst, "scale 0.1", "not exactly an f16");
    assertRefused(GgmlType.Q4_1, 3, one, new float[] {0.1f}, dst, "min 0.1");
    assertRefused(GgmlType.Q8_0, 3, new float[] {Float.NaN}, null, dst, "scale NaN");
    assertRefused(GgmlType.Q8_0, 3, new float[] {1e6f}, null, dst, "scale 1000000"); // beyond 65504
    assertRefused(GgmlType.Q4_1, 3, one, null, dst, "needs mins");
    assertRefused(GgmlType.Q4_0, 3, one, one, dst, "has no mins");
    assertRefused(GgmlType.F16, 3, one, null, dst, "no integer codes");
    assertThrows(
        IndexOutOfBoundsException.class,
        () ->
            GgmlBlocks.encodeCodes(
                GgmlType.Q4_0,
                new int[64],
                one,
                null,
                0,
                64,
                MemorySegment.ofArray(new byte[36]))); // two blocks, one scale
  }

  private static void assertRefused(
      GgmlType type,
      int code,
      float[] scales,
      float[] mins,
      MemorySegment dst,
      String... fragments) {
    int[] codes = new int[32];
    Arrays.fill(codes, type == GgmlType.Q8_0 ? 0 : 1);
    codes[5] = code;
    IllegalArgumentException e =
        assertThrows(
            IllegalArgumentException.class,
            () -> GgmlBlocks.encodeCodes(type, codes, scales, mins, 0, 32, dst));
    for (String fragment : fragments) {
      assertTrue(
          e.getMessage().contains(fragment), "'" + fragment + "' missing from: " + e.getMessage());
    }
  }

  @Test
  void aWeightBeyondFloat16IsRefusedNotStoredAsInfinity() {
    float[] f16 = new float[32];
    f16[3] = 1e6f;
    var e =
        assertThrows(
            llmc.formats.BadInputException.class,
            () -> GgmlBlocks.encode(GgmlType.F16, f16, 0, 32, MemorySegment.ofArray(new byte[64])));
    assertTrue(
        e.getMessage().contains("index 3") && e.getMessage().contains("F32"), e.getMessage());
    float[] q8 = new float[32];
    q8[0] = 1e8f; // d = 1e8 / 127 > 65504
    e =
        assertThrows(
            llmc.formats.BadInputException.class,
            () -> GgmlBlocks.encode(GgmlType.Q8_0, q8, 0, 32, MemorySegment.ofArray(new byte[34])));
    assertTrue(e.getMessage().contains("block 0"), e.getMessage());
    q8[0] = 8e6f; // d = 62992, still a float16
    GgmlBlocks.encode(GgmlType.Q8_0, q8, 0, 32, MemorySegment.ofArray(new byte[34]));
  }

  @Test
  void vectorQuantizersGiveTheBitsOfTheScalarReference() {
    java.util.Random random = new java.util.Random(17);
    for (int trial = 0; trial < 20_000; trial++) {
      float[] x = new float[32];
      int kind = trial % 6;
      for (int j = 0; j < 32; j++) {
        x[j] =
            switch (kind) {
              case 0 -> (float) random.nextGaussian();
              case 1 -> (float) (random.nextGaussian() * 1e-30); // subnormal scales
              case 2 -> random.nextInt(9) - 4; // ties of magnitude, exact halves below
              case 3 -> random.nextInt(254) - 127 + 0.5f; // x * id = k + 0.5 for Q8_0 (amax 127)
              case 4 -> random.nextBoolean() ? 0f : -0f;
              default -> (float) (random.nextGaussian() * Math.pow(10, random.nextInt(9) - 4));
            };
      }
      if (kind == 2) { // the largest magnitude with both signs: the first one wins
        x[random.nextInt(32)] = 5;
        x[random.nextInt(32)] = -5;
      }
      if (kind == 3) {
        x[random.nextInt(32)] = 127;
      }
      String where = "trial " + trial + ": " + java.util.Arrays.toString(x);
      int[] expected = new int[32];
      int[] actual = new int[32];
      assertEquals(
          GgmlBlocks.quantizeQ8_0(x, 0, expected),
          GgmlBlocks.quantizeQ8_0Vector(x, 0, actual),
          where);
      assertArrayEquals(expected, actual, where);
      for (int zero : new int[] {8, 16}) {
        assertEquals(
            GgmlBlocks.quantizeSymmetric(x, 0, zero, expected),
            GgmlBlocks.quantizeSymmetricVector(x, 0, zero, actual),
            where);
        assertArrayEquals(expected, actual, where);
      }
    }
  }
}
