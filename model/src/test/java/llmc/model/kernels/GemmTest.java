package llmc.model.kernels;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * The product is defined element by element: {@code c = fma(sign * A(r, p), B(p, j), c)} for {@code
 * p} in increasing order. Every tiling (register tiles of 6 rows, single rows, panels of 64 columns
 * and the narrower last ones, chunks of {@link Gemm#KC}) and every split into parallel tasks must
 * give those bits, which is what makes a run's output independent of its thread count.
 */
class GemmTest {

  @Test
  void everyTileGivesTheBitsOfTheScalarFmaLoop() {
    Random random = new Random(3);
    // rows around the 6-row tile, columns around the 64-wide panel and the 16-wide vector,
    // depths below, at and across the 128 chunk
    int[][] shapes = {
      {1, 1, 1},
      {5, 17, 3},
      {6, 64, 128},
      {7, 65, 129},
      {13, 130, 300},
      {12, 79, 257},
      {263, 600, 140}
    };
    for (int[] shape : shapes) {
      int m = shape[0];
      int n = shape[1];
      int k = shape[2];
      for (boolean transposedA : new boolean[] {false, true}) {
        for (float sign : new float[] {1f, -1f}) {
          float[] a = gaussian(random, m * k + 3);
          float[] b = gaussian(random, k * n + 5);
          float[] c0 = gaussian(random, m * n + 2);
          int aOff = 3;
          int bOff = 5;
          int cOff = 2;
          int aRow = transposedA ? 1 : k;
          int aCol = transposedA ? m : 1;

          float[] expected = c0.clone();
          for (int r = 0; r < m; r++) {
            for (int j = 0; j < n; j++) {
              float acc = expected[cOff + r * n + j];
              for (int p = 0; p < k; p++) {
                acc = Math.fma(sign * a[aOff + r * aRow + p * aCol], b[bOff + p * n + j], acc);
              }
              expected[cOff + r * n + j] = acc;
            }
          }
          float[] single = c0.clone();
          Gemm.multiplyAdd(sign, a, aOff, aRow, aCol, b, bOff, n, single, cOff, n, m, n, k);
          float[] parallel = c0.clone();
          Gemm.parallelMultiplyAdd(
              sign, a, aOff, aRow, aCol, b, bOff, n, parallel, cOff, n, m, n, k);
          for (int i = 0; i < expected.length; i++) {
            String where = m + "x" + n + "x" + k + (transposedA ? " Aᵀ" : "") + " sign " + sign;
            assertEquals(
                Float.floatToRawIntBits(expected[i]), Float.floatToRawIntBits(single[i]), where);
            assertEquals(
                Float.floatToRawIntBits(expected[i]), Float.floatToRawIntBits(parallel[i]), where);
          }
        }
      }
    }
  }

  private static float[] gaussian(Random random, int count) {
    float[] v = new float[count];
    for (int i = 0; i < count; i++) {
      v[i] = (float) random.nextGaussian();
    }
    return v;
  }
}
