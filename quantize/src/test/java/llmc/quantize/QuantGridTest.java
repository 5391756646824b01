package llmc.quantize;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Random;
import llmc.formats.DType;
import llmc.formats.QuantizedTensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** The grid of PROTOCOLS.md on hand-computed groups, through {@link Rtn}. */
class QuantGridTest {
  static final float[] RAMP = {-1f, 0f, 0.5f, 2f};

  static QuantizedTensor one(float[] w, QuantScheme scheme) {
    return Rtn.quantize(w, 1, w.length, scheme, Rtn.Clip.NONE);
  }

  static int[] codes(QuantizedTensor q) {
    int[] c = new int[q.cols()];
    for (int k = 0; k < c.length; k++) {
      c[k] = q.code(0, k);
    }
    return c;
  }

  @Test
  void asymmetric4BitOfRampHasScaleFifthZero5AndRoundsHalfToEven() {
    QuantizedTensor q = one(RAMP, new QuantScheme(4, -1, false, DType.F32));
    assertEquals(0.2f, q.scale(0, 0)); // (2 - (-1)) / 15
    assertEquals(5, q.zero(0, 0)); // round(1 / 0.2)
    assertArrayEquals(new int[] {0, 5, 7, 15}, codes(q)); // 0.5 / 0.2 = 2.5 -> 2
    assertArrayEquals(new float[] {-1f, 0f, 0.4f, 2f}, q.dequantize(), 1e-6f);
  }

  @Test
  void float16ScaleIsRoundedBeforeTheCodes() {
    QuantizedTensor q = one(RAMP, new QuantScheme(4, -1, false, DType.F16));
    assertEquals(0.199951171875f, q.scale(0, 0)); // float16 nearest to 0.2
    assertEquals(5, q.zero(0, 0));
    assertArrayEquals(new int[] {0, 5, 8, 15}, codes(q)); // 0.5 / 0.19995 = 2.5006 -> 3
  }

  @Test
  void symmetric4BitZeroIs8AndScaleIsTwiceMaxAbsOver15() {
    QuantizedTensor q = one(RAMP, new QuantScheme(4, -1, true, DType.F32));
    assertEquals(4f / 15f, q.scale(0, 0));
    assertEquals(8, q.zero(0, 0));
    assertArrayEquals(
        new int[] {4, 8, 10, 15}, codes(q)); // -3.75 -> -4; 1.875 -> 2; 7.5 -> 8, clamped
  }

  @ParameterizedTest
  @ValueSource(ints = {2, 3, 4, 5, 6, 7, 8})
  void symmetricZeroIsHalfTheLevels(int bits) {
    QuantizedTensor q = one(RAMP, new QuantScheme(bits, -1, true, DType.F32));
    assertEquals(1 << (bits - 1), q.zero(0, 0));
    assertEquals(2f * 2f / ((1 << bits) - 1), q.scale(0, 0), 1e-7f);
  }

  @Test
  void asymmetric2BitOfRampHasScale1Zero1() {
    QuantizedTensor q = one(RAMP, new QuantScheme(2, -1, false, DType.F32));
    assertEquals(1f, q.scale(0, 0));
    assertEquals(1, q.zero(0, 0));
    assertArrayEquals(new int[] {0, 1, 1, 3}, codes(q)); // 0.5 -> 0 (half to even)
  }

  @ParameterizedTest
  @ValueSource(ints = {2, 5, 6, 8})
  void everyWeightWithinOneStepOfItsValue(int bits) {
    Random random = new Random(bits);
    float[] w = new float[4 * 96];
    for (int i = 0; i < w.length; i++) {
      w[i] = (float) random.nextGaussian();
    }
    for (boolean symmetric : new boolean[] {false, true}) {
      QuantizedTensor q =
          Rtn.quantize(w, 4, 96, new QuantScheme(bits, 32, symmetric, DType.F16), Rtn.Clip.NONE);
      float[] v = q.dequantize();
      for (int i = 0; i < w.length; i++) {
        int n = i / 96;
        float s = q.scale(i % 96 / 32, n);
        assertTrue(q.code(n, i % 96) <= (1 << bits) - 1);
        // inside the grid within s/2; at the ends up to one step (symmetric grids stop one level
        // short
        // of max|w|; an asymmetric zero rounded to an integer shifts the grid by up to s/2)
        float bound = s * 1.0001f;
        assertTrue(
            Math.abs(v[i] - w[i]) <= bound, bits + " bits: " + w[i] + " -> " + v[i] + " step " + s);
      }
    }
  }

  @Test
  void allZeroGroupGetsScale1AndDequantizesToZero() {
    float[] w = {0f, 0f, 0f, 0f, 1f, -2f, 0.5f, 0.25f};
    QuantizedTensor asym =
        Rtn.quantize(w, 1, 8, new QuantScheme(4, 4, false, DType.F16), Rtn.Clip.NONE);
    assertEquals(1f, asym.scale(0, 0));
    assertEquals(0, asym.zero(0, 0));
    QuantizedTensor sym =
        Rtn.quantize(w, 1, 8, new QuantScheme(4, 4, true, DType.F16), Rtn.Clip.NONE);
    assertEquals(1f, sym.scale(0, 0));
    assertEquals(8, sym.zero(0, 0));
    for (QuantizedTensor q : new QuantizedTensor[] {asym, sym}) {
      float[] v = q.dequantize();
      assertArrayEquals(new float[] {0f, 0f, 0f, 0f}, java.util.Arrays.copyOf(v, 4));
    }
  }

  @Test
  void scaleThatRoundsToZeroInFloat16BecomesSmallestNormal() {
    float[] w = {1e-9f, -2e-9f, 0f, 5e-10f};
    QuantizedTensor q = one(w, new QuantScheme(4, -1, true, DType.F16));
    assertEquals(0x1p-14f, q.scale(0, 0));
    for (float v : q.dequantize()) {
      assertEquals(0f, v);
    }
  }

  @Test
  void groupSizeAtLeastColsIsOneGroupPerRow() {
    float[] w = {0.1f, -0.3f, 0.2f, 0.7f, -0.1f, 0.4f};
    QuantizedTensor wide = Rtn.quantize(w, 2, 3, new QuantScheme(4, 1000, false), Rtn.Clip.NONE);
    QuantizedTensor perRow = Rtn.quantize(w, 2, 3, new QuantScheme(4, -1, false), Rtn.Clip.NONE);
    assertEquals(1, wide.groups());
    assertArrayEquals(new int[] {0, 0, 0}, wide.gIdx());
    assertArrayEquals(perRow.codes(), wide.codes());
    assertArrayEquals(perRow.scales(), wide.scales());
  }

  @Test
  void mseClippingNeverIncreasesSquaredError() {
    Random random = new Random(7);
    float[] w = new float[8 * 128];
    for (int i = 0; i < w.length; i++) {
      w[i] = (float) (random.nextGaussian() * (i % 17 == 0 ? 4 : 1)); // outliers worth clipping
    }
    for (boolean symmetric : new boolean[] {false, true}) {
      QuantScheme scheme = new QuantScheme(3, 64, symmetric);
      double none = squaredError(w, Rtn.quantize(w, 8, 128, scheme, Rtn.Clip.NONE));
      double mse = squaredError(w, Rtn.quantize(w, 8, 128, scheme, Rtn.Clip.MSE));
      assertTrue(mse < none * 0.95, "mse clip " + mse + " vs none " + none);
    }
  }

  static double squaredError(float[] w, QuantizedTensor q) {
    float[] v = q.dequantize();
    double e = 0;
    for (int i = 0; i < w.length; i++) {
      e += (double) (v[i] - w[i]) * (v[i] - w[i]);
    }
    return e;
  }

  @Test
  void aScaleBeyondFloat16IsClampedAndReported() {
    QuantScheme scheme = new QuantScheme(4, 4, false, DType.F16);
    // Group 0: range 1e7 / 15 per step, far beyond float16; group 1: ordinary.
    float[] w = {-5e6f, 0f, 1e6f, 5e6f, -1f, 0f, 0.5f, 2f};
    QuantizedTensor q = Rtn.quantize(w, 1, w.length, scheme, Rtn.Clip.NONE);
    assertEquals(65504f, q.scale(0, 0));
    assertTrue(Float.isFinite(q.scale(1, 0)) && q.scale(1, 0) < 1f);
    String warning = QuantScheme.clampedScalesWarning(q);
    assertTrue(warning != null && warning.startsWith("1 of 2 scales reached F16's"), warning);
    assertEquals(null, QuantScheme.clampedScalesWarning(one(RAMP, scheme)));
    for (float v : q.dequantize()) {
      assertTrue(Float.isFinite(v));
    }
  }
}
