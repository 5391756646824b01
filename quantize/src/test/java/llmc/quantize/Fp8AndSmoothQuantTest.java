package llmc.quantize;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.Random;
import llmc.formats.DType;
import llmc.formats.Floats;
import llmc.formats.QuantizedTensor;
import org.junit.jupiter.api.Test;

/**
 * Round-to-nearest on the FP8 E4M3 grid: one scale per row, {@code max|w| / 448} in the scale
 * dtype, every weight the nearest E4M3 multiple of it; and SmoothQuant's scales by their formula.
 */
class Fp8AndSmoothQuantTest {

  @Test
  void fp8RowsAreTheNearestE4m3MultiplesOfMaxOver448() {
    Random random = new Random(5);
    int rows = 7;
    int cols = 50;
    float[] w = new float[rows * cols];
    for (int i = 0; i < w.length; i++) {
      w[i] = (float) random.nextGaussian() * 0.05f;
    }
    java.util.Arrays.fill(w, 3 * cols, 4 * cols, 0f); // an all-zero row
    QuantScheme scheme = QuantScheme.fp8(-1, DType.F32);
    QuantizedTensor q = Rtn.quantize(w, rows, cols, scheme, Rtn.Clip.NONE);
    assertTrue(q.isFloat8());
    for (int n = 0; n < rows; n++) {
      float max = 0;
      for (int k = 0; k < cols; k++) {
        max = Math.max(max, Math.abs(w[n * cols + k]));
      }
      float s = max == 0 ? 1f : max / 448f;
      assertEquals(s, q.scale(0, n), "row " + n);
      for (int k = 0; k < cols; k++) {
        float v = w[n * cols + k] / s;
        // the nearest of all finite E4M3 values, brute force
        float best = Float.NaN;
        for (int b = 0; b < 256; b++) {
          float e = Floats.f8e4m3ToF32((byte) b);
          if (!Float.isNaN(e) && (Float.isNaN(best) || Math.abs(e - v) < Math.abs(best - v))) {
            best = e;
          }
        }
        assertEquals(Math.abs(best), Math.abs(q.value(n, k) / s), 1e-6f * Math.abs(best));
      }
    }
    float[] bf16 =
        Rtn.quantize(w, rows, cols, QuantScheme.fp8(-1, DType.BF16), Rtn.Clip.NONE).scales();
    for (float s : bf16) {
      assertEquals(Floats.bf16ToF32(Floats.f32ToBf16(s)), s, "scales rounded to BF16");
    }
  }

  @Test
  void smoothQuantScalesFollowTheFormula() {
    float[] xMax = {10f, 0.5f, 0f};
    float[] w1 = {0.1f, -2f, 0.3f, 0.2f, 0.5f, 0f}; // [2][3]
    float[] w2 = {-0.4f, 1f, 0f}; // [1][3]
    float[] s = SmoothQuantCompressor.scales(xMax, List.of(w1, w2), 0.5);
    float[] expected = {
      (float) (Math.sqrt(10) / Math.sqrt(0.4)),
      (float) (Math.sqrt(0.5) / Math.sqrt(2)),
      1e-5f // no activation: floored
    };
    assertArrayEquals(expected, s, 1e-6f);
    float[] all = SmoothQuantCompressor.scales(xMax, List.of(w1, w2), 1.0);
    assertEquals(10f, all[0], 1e-6f, "alpha 1: the activation range alone");
  }
}
