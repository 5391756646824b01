package llmc.quantize;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Random;
import llmc.formats.DType;
import llmc.formats.QuantizedTensor;
import llmc.formats.gguf.GgmlBlocks;
import llmc.formats.gguf.GgmlType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * ggml's block grids inside llmc's quantizers: hand-computed groups, the result stored as blocks
 * without any further rounding (decode(encodeCodes(q)) == q.dequantize() bit for bit), scales and
 * mins equal to llama.cpp's own, and GPTQ on these grids beating RTN on the layer's output.
 */
class GgmlGridTest {
  static float[] group(float first, float last) {
    float[] w = new float[32];
    for (int i = 0; i < 32; i++) {
      w[i] = first + (last - first) * i / 31f;
    }
    return w;
  }

  @Test
  void q4_0PutsTheLargestMagnitudeOnLevelZeroWithItsSign() {
    float[] w = group(-1f, 0.5f); // largest magnitude: -1 -> s = -1 / -8 = 0.125
    QuantizedTensor q = Rtn.quantize(w, 1, 32, QuantScheme.ggml(GgmlType.Q4_0), Rtn.Clip.NONE);
    assertEquals(0.125f, q.scale(0, 0));
    assertEquals(8, q.zero(0, 0));
    assertNull(q.mins());
    assertEquals(0, q.code(0, 0)); // -1 / 0.125 + 8 = 0
    assertEquals(12, q.code(0, 31)); // 0.5 / 0.125 + 8 = 12
    float[] v = group(-0.5f, 1f); // largest magnitude +1 -> s = 1 / -8 = -0.125
    QuantizedTensor p = Rtn.quantize(v, 1, 32, QuantScheme.ggml(GgmlType.Q4_0), Rtn.Clip.NONE);
    assertEquals(-0.125f, p.scale(0, 0));
    assertEquals(0, p.code(0, 31));
    assertEquals(1f, p.dequantize()[31]);
  }

  @Test
  void q4_1HasAFloat16MinAndNoZeroPoint() {
    float[] w = group(0.25f, 1.75f); // all positive: the min is not widened to 0
    QuantizedTensor q = Rtn.quantize(w, 1, 32, QuantScheme.ggml(GgmlType.Q4_1), Rtn.Clip.NONE);
    assertEquals(
        Float.float16ToFloat(Float.floatToFloat16(0.1f)), q.scale(0, 0)); // (1.75 - 0.25) / 15
    assertEquals(0.25f, q.min(0, 0));
    assertEquals(0, q.zero(0, 0));
    assertEquals(0, q.code(0, 0));
    assertEquals(15, q.code(0, 31));
    assertEquals(0.25f, q.dequantize()[0]);
  }

  @Test
  void q8_0ScalesByMaxAbsOver127() {
    float[] w = group(-2.54f, 1f);
    QuantizedTensor q = Rtn.quantize(w, 1, 32, QuantScheme.ggml(GgmlType.Q8_0), Rtn.Clip.NONE);
    assertEquals(Float.float16ToFloat(Float.floatToFloat16(0.02f)), q.scale(0, 0));
    assertEquals(128, q.zero(0, 0));
    assertEquals(128 - 127, q.code(0, 0));
  }

  @Test
  void ggmlGridsRefuseOtherGroupSizesAndScaleDtypes() {
    assertThrows(
        IllegalArgumentException.class,
        () -> new QuantScheme(4, 64, true, DType.F16, QuantScheme.Grid.GGML_SIGNED_MAX));
    assertThrows(
        IllegalArgumentException.class,
        () -> new QuantScheme(4, 32, false, DType.BF16, QuantScheme.Grid.GGML_MIN));
    assertThrows(
        IllegalArgumentException.class,
        () -> new QuantScheme(4, 32, true, DType.F16, QuantScheme.Grid.GGML_MIN));
    assertThrows(IllegalArgumentException.class, () -> QuantScheme.ggml(GgmlType.F16));
  }

  /** Codes in the block type's own convention (Q8_0 is signed). */
  static int[] blockCodes(GgmlType type, QuantizedTensor q) {
    int[] codes = new int[q.rows() * q.cols()];
    int offset = type == GgmlType.Q8_0 ? 128 : 0;
    for (int i = 0; i < codes.length; i++) {
      codes[i] = (q.codes()[i] & 0xFF) - offset;
    }
    return codes;
  }

  /** Per-block scales (and mins) in row order: block b of row n is group b. */
  static float[] perBlock(QuantizedTensor q, boolean mins) {
    int groups = q.groups();
    float[] out = new float[q.rows() * groups];
    for (int n = 0; n < q.rows(); n++) {
      for (int g = 0; g < groups; g++) {
        out[n * groups + g] = mins ? q.min(g, n) : q.scale(g, n);
      }
    }
    return out;
  }

  static float[] weights(int count, long seed) {
    Random random = new Random(seed);
    float[] w = new float[count];
    for (int i = 0; i < count; i++) {
      w[i] = (float) (random.nextGaussian() * 0.05 + (i % 97 == 0 ? 0.3 : 0));
    }
    return w;
  }

  @ParameterizedTest
  @EnumSource(
      value = GgmlType.class,
      names = {"Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0"})
  void rtnOnTheGridIsStoredExactlyAndHasLlamaCppsScales(GgmlType type) {
    int rows = 16;
    int cols = 128;
    float[] w = weights(rows * cols, 7);
    QuantizedTensor q = Rtn.quantize(w, rows, cols, QuantScheme.ggml(type), Rtn.Clip.NONE);
    boolean hasMin = type == GgmlType.Q4_1 || type == GgmlType.Q5_1;
    try (Arena arena = Arena.ofConfined()) {
      MemorySegment ours = arena.allocate(type.byteSize(w.length));
      GgmlBlocks.encodeCodes(
          type,
          blockCodes(type, q),
          perBlock(q, false),
          hasMin ? perBlock(q, true) : null,
          0,
          w.length,
          ours);
      float[] decoded = new float[w.length];
      GgmlBlocks.decode(type, ours, decoded, 0, w.length);
      float[] expected = q.dequantize();
      for (int i = 0; i < w.length; i++) {
        assertEquals(
            Float.floatToRawIntBits(expected[i] + 0f),
            Float.floatToRawIntBits(decoded[i] + 0f),
            "weight " + i);
      }
      // llama.cpp's reference quantizer on the same weights: identical d (and m) in every block.
      MemorySegment theirs = arena.allocate(type.byteSize(w.length));
      GgmlBlocks.encode(type, w, 0, w.length, theirs);
      int headerBytes = hasMin ? 4 : 2;
      int sameCodes = 0;
      float[] reference = new float[w.length];
      GgmlBlocks.decode(type, theirs, reference, 0, w.length);
      for (int b = 0; b < w.length / 32; b++) {
        long at = (long) b * type.bytesPerBlock();
        for (int j = 0; j < headerBytes; j++) {
          assertEquals(
              theirs.get(ValueLayout.JAVA_BYTE, at + j),
              ours.get(ValueLayout.JAVA_BYTE, at + j),
              "block " + b + " header byte " + j);
        }
      }
      for (int i = 0; i < w.length; i++) {
        sameCodes += reference[i] == decoded[i] ? 1 : 0;
      }
      // Codes may differ only where w / f16(d) and w * (1 / d) round differently.
      assertTrue(sameCodes >= w.length * 0.97, sameCodes + " of " + w.length);
    }
  }

  @ParameterizedTest
  @EnumSource(
      value = GgmlType.class,
      names = {"Q4_0", "Q4_1"})
  void gptqOnTheGridBeatsRtnOnTheOutputAndIsStoredExactly(GgmlType type) {
    int rows = 32;
    int cols = 128;
    int n = 512;
    Random random = new Random(3);
    float[] x = new float[n * cols]; // correlated inputs: a shared factor per sample
    for (int t = 0; t < n; t++) {
      double shared = random.nextGaussian();
      for (int k = 0; k < cols; k++) {
        x[t * cols + k] = (float) (shared * 2 + random.nextGaussian() * (0.5 + k % 5));
      }
    }
    float[] w = weights(rows * cols, 11);
    QuantScheme scheme = QuantScheme.ggml(type);
    Gptq.Result r = Gptq.quantize(w, rows, cols, Gptq.hessian(x, n, cols), Gptq.Options.of(scheme));
    QuantizedTensor rtn = Rtn.quantize(w, rows, cols, scheme, Rtn.Clip.NONE);
    double gptqError = outputError(x, n, cols, w, r.quantized().dequantize(), rows);
    double rtnError = outputError(x, n, cols, w, rtn.dequantize(), rows);
    assertTrue(gptqError < 0.7 * rtnError, "GPTQ " + gptqError + " vs RTN " + rtnError);
    assertEquals(type == GgmlType.Q4_1, r.quantized().mins() != null);
    for (float s : r.quantized().scales()) {
      assertEquals(s, Float.float16ToFloat(Float.floatToFloat16(s)));
    }
    if (r.quantized().mins() != null) {
      for (float m : r.quantized().mins()) {
        assertEquals(m, Float.float16ToFloat(Float.floatToFloat16(m)));
      }
    }
  }

  /** {@code sum ((W - Q) x)^2} over the samples. */
  static double outputError(float[] x, int n, int cols, float[] w, float[] q, int rows) {
    double sum = 0;
    for (int t = 0; t < n; t++) {
      for (int r = 0; r < rows; r++) {
        double d = 0;
        for (int k = 0; k < cols; k++) {
          d += (double) (w[r * cols + k] - q[r * cols + k]) * x[t * cols + k];
        }
        sum += d * d;
      }
    }
    return sum;
  }

  @Test
  void reorderingRowsKeepsEachRowsGroups() {
    float[] w = weights(4 * 64, 5);
    QuantizedTensor q = Rtn.quantize(w, 4, 64, QuantScheme.ggml(GgmlType.Q4_1), Rtn.Clip.NONE);
    QuantizedTensor p = q.withRows(new int[] {2, 0, 3, 1});
    float[] a = q.dequantize();
    float[] b = p.dequantize();
    int[] order = {2, 0, 3, 1};
    for (int r = 0; r < 4; r++) {
      assertArrayEquals(
          java.util.Arrays.copyOfRange(a, order[r] * 64, order[r] * 64 + 64),
          java.util.Arrays.copyOfRange(b, r * 64, r * 64 + 64));
    }
  }
}
