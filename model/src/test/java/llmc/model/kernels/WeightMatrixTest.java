package llmc.model.kernels;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.Random;
import llmc.formats.DType;
import llmc.formats.QuantizedTensor;
import org.junit.jupiter.api.Test;

/**
 * A linear layer multiplied from the weight as it is kept (float32 rows, BF16 rows, codes) gives
 * the bits of the float32 product on a transposed copy of the same values, for shapes with and
 * without a partial last panel, and for a row count that is not a multiple of 4.
 */
class WeightMatrixTest {

  @Test
  void everyFormGivesTheBitsOfTheTransposedFloatProduct() {
    Random random = new Random(7);
    for (int[] shape : new int[][] {{7, 300, 130}, {64, 1100, 257}, {1, 64, 128}, {5, 19, 3}}) {
      int m = shape[0];
      int out = shape[1];
      int in = shape[2];
      float[] x = new float[m * in];
      for (int i = 0; i < x.length; i++) {
        x[i] = (float) random.nextGaussian();
      }
      short[] bf16 = new short[out * in];
      for (int i = 0; i < bf16.length; i++) {
        bf16[i] = (short) (Float.floatToRawIntBits((float) random.nextGaussian()) >>> 16);
      }
      QuantizedTensor q = codes(random, out, in, 32);

      float[] fromBf16 = new float[out * in];
      for (int i = 0; i < bf16.length; i++) {
        fromBf16[i] = Float.intBitsToFloat(bf16[i] << 16);
      }
      float[] expectedBf16 = reference(x, fromBf16, m, out, in);
      float[] expectedCodes = reference(x, q.dequantize(), m, out, in);

      assertArrayEquals(expectedBf16, product(x, new WeightMatrix.Bf16(bf16, out, in), m));
      assertArrayEquals(expectedBf16, product(x, new WeightMatrix.F32(fromBf16, out, in), m));
      assertArrayEquals(expectedCodes, product(x, new WeightMatrix.Codes(q), m));
    }
  }

  @Test
  void ggufBlocksGiveTheBitsOfTheirDecodedValuesInHuggingFaceRowOrder() {
    Random random = new Random(9);
    int m = 7;
    int out = 70;
    int in = 288; // 9 blocks of 32: two chunks of the product, the second partial
    float[] x = new float[m * in];
    for (int i = 0; i < x.length; i++) {
      x[i] = (float) random.nextGaussian();
    }
    float[] values = new float[out * in];
    for (int i = 0; i < values.length; i++) {
      values[i] = (float) random.nextGaussian();
    }
    int[] rowOf = new int[out]; // stored row of each row: a permutation, as for q and k
    for (int r = 0; r < out; r++) {
      rowOf[r] = (r * 31) % out;
    }
    for (llmc.formats.gguf.GgmlType type :
        new llmc.formats.gguf.GgmlType[] {
          llmc.formats.gguf.GgmlType.Q4_0,
          llmc.formats.gguf.GgmlType.Q8_0,
          llmc.formats.gguf.GgmlType.Q5_1,
          llmc.formats.gguf.GgmlType.F16
        }) {
      java.lang.foreign.MemorySegment blocks =
          java.lang.foreign.MemorySegment.ofArray(new byte[(int) type.byteSize(out * in)]);
      llmc.formats.gguf.GgmlBlocks.encode(type, values, 0, values.length, blocks);
      float[] stored = new float[values.length];
      llmc.formats.gguf.GgmlBlocks.decode(type, blocks, stored, 0, stored.length);
      float[] decoded = new float[values.length]; // row r is stored row rowOf[r]
      for (int r = 0; r < out; r++) {
        System.arraycopy(stored, rowOf[r] * in, decoded, r * in, in);
      }
      WeightMatrix w = new WeightMatrix.Blocks(type, blocks, out, in, rowOf);
      assertArrayEquals(decoded, w.toFloats(), type.ggmlName());
      assertArrayEquals(reference(x, decoded, m, out, in), product(x, w, m), type.ggmlName());
      assertEquals(type.byteSize(out * in), w.bytes());
    }
  }

  @Test
  void bytesAreWhatEachFormHolds() {
    assertEquals(4L * 6, new WeightMatrix.F32(new float[6], 2, 3).bytes());
    assertEquals(2L * 6, new WeightMatrix.Bf16(new short[6], 2, 3).bytes());
    QuantizedTensor q = codes(new Random(1), 4, 64, 32);
    // 256 codes, 64 group indices, 2 groups x 4 rows of (scale, zero)
    assertEquals(256 + 4 * 64 + 8 * 8, new WeightMatrix.Codes(q).bytes());
  }

  private static float[] product(float[] x, WeightMatrix w, int m) {
    float[] y = new float[m * w.rows()];
    Gemm.parallelMultiplyAdd(1f, x, 0, w.cols(), 1, w, y, 0, w.rows(), m);
    return y;
  }

  /** {@code x Wᵀ} through the float32 product on {@code Wᵀ} stored row-major. */
  private static float[] reference(float[] x, float[] w, int m, int out, int in) {
    float[] t = new float[w.length];
    for (int r = 0; r < out; r++) {
      for (int c = 0; c < in; c++) {
        t[c * out + r] = w[r * in + c];
      }
    }
    float[] y = new float[m * out];
    Gemm.parallelMultiplyAdd(1f, x, 0, in, 1, t, 0, out, y, 0, out, m, out, in);
    return y;
  }

  private static QuantizedTensor codes(Random random, int rows, int cols, int groupSize) {
    int groups = (cols + groupSize - 1) / groupSize;
    byte[] c = new byte[rows * cols];
    for (int i = 0; i < c.length; i++) {
      c[i] = (byte) random.nextInt(16);
    }
    float[] scales = new float[groups * rows];
    int[] zeros = new int[groups * rows];
    for (int i = 0; i < scales.length; i++) {
      scales[i] = 0.01f + random.nextFloat();
      zeros[i] = random.nextInt(16);
    }
    int[] gIdx = new int[cols];
    for (int k = 0; k < cols; k++) {
      gIdx[k] = k / groupSize;
    }
    return new QuantizedTensor(
        rows, cols, 4, groupSize, false, c, scales, zeros, gIdx, DType.F16, null);
  }
}
