package llmc.quantize;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Random;
import llmc.formats.DType;
import llmc.formats.QuantizedTensor;
import llmc.model.kernels.Gemm;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class GptqTest {

  static float[] gaussian(int count, long seed) {
    Random random = new Random(seed);
    float[] a = new float[count];
    for (int i = 0; i < a.length; i++) {
      a[i] = (float) random.nextGaussian();
    }
    return a;
  }

  @ParameterizedTest
  @ValueSource(ints = {3, 4})
  void gptqBeatsRtnInOutputErrorOnAnchorMatrix(int bits) {
    UnitAnchors a = UnitAnchors.load();
    for (int groupSize : new int[] {32, -1}) {
      QuantScheme scheme = new QuantScheme(bits, groupSize, false);
      double rtn =
          a.outputError(Rtn.quantize(a.w, a.rows, a.cols, scheme, Rtn.Clip.NONE).dequantize());
      double gptq =
          a.outputError(
              Gptq.quantize(a.w, a.rows, a.cols, a.hessian, Gptq.Options.of(scheme))
                  .quantized()
                  .dequantize());
      assertTrue(
          gptq < 0.8 * rtn, bits + " bits g" + groupSize + ": gptq " + gptq + " vs rtn " + rtn);
    }
  }

  @Test
  void sameInputGivesIdenticalArrays() {
    int rows = 70;
    int cols = 300;
    float[] x = gaussian(400 * cols, 1);
    float[] h = Gptq.hessian(x, 400, cols);
    float[] w = gaussian(rows * cols, 2);
    Gptq.Options options = Gptq.Options.of(new QuantScheme(4, 32, false)).withActOrder(true);
    Gptq.Result first = Gptq.quantize(w, rows, cols, h, options);
    Gptq.Result second = Gptq.quantize(w, rows, cols, Gptq.hessian(x, 400, cols), options);
    assertArrayEquals(first.quantized().codes(), second.quantized().codes());
    assertArrayEquals(first.quantized().scales(), second.quantized().scales());
    assertArrayEquals(first.quantized().zeros(), second.quantized().zeros());
    assertArrayEquals(first.quantized().gIdx(), second.quantized().gIdx());
    assertEquals(first.loss(), second.loss());
  }

  @Test
  void actOrderGroupIndexFollowsProcessingOrderAndStaticGroupsKeepColumnOrder() {
    int rows = 8;
    int cols = 96;
    float[] x = gaussian(200 * cols, 3);
    for (int i = 0; i < x.length; i++) {
      x[i] *= 1 + (i % cols) % 7; // distinct diagonal magnitudes
    }
    float[] h = Gptq.hessian(x, 200, cols);
    float[] w = gaussian(rows * cols, 4);
    QuantScheme scheme = new QuantScheme(4, 32, true, DType.F16);
    QuantizedTensor actOrder =
        Gptq.quantize(w, rows, cols, h, Gptq.Options.of(scheme).withActOrder(true)).quantized();
    assertFalse(actOrder.hasTrivialGroupIndex());
    int[] perGroup = new int[3];
    for (int g : actOrder.gIdx()) {
      perGroup[g]++;
    }
    assertArrayEquals(new int[] {32, 32, 32}, perGroup);
    // the 32 columns with the largest H_ii form group 0
    for (int k = 0; k < cols; k++) {
      for (int j = 0; j < cols; j++) {
        if (actOrder.gIdx()[k] == 0 && actOrder.gIdx()[j] == 2) {
          assertTrue(h[k * cols + k] >= h[j * cols + j]);
        }
      }
    }
    QuantizedTensor fixed =
        Gptq.quantize(
                w, rows, cols, h, Gptq.Options.of(scheme).withActOrder(true).withStaticGroups(true))
            .quantized();
    assertTrue(fixed.hasTrivialGroupIndex());
    // static groups: the RTN grid of the original W
    QuantizedTensor rtn = Rtn.quantize(w, rows, cols, scheme, Rtn.Clip.NONE);
    assertArrayEquals(rtn.scales(), fixed.scales());
    assertArrayEquals(rtn.zeros(), fixed.zeros());
  }

  @Test
  void deadColumnsAreZeroedAndIgnored() {
    int rows = 4;
    int cols = 64;
    float[] x = gaussian(100 * cols, 5);
    for (int t = 0; t < 100; t++) {
      x[t * cols + 3] = 0f;
      x[t * cols + 40] = 0f;
    }
    float[] h = Gptq.hessian(x, 100, cols);
    float[] w = gaussian(rows * cols, 6);
    Gptq.Result r =
        Gptq.quantize(
            w, rows, cols, h, Gptq.Options.of(new QuantScheme(4, 16, false)).withActOrder(true));
    assertFalse(r.fellBackToRtn());
    float[] v = r.quantized().dequantize();
    for (int n = 0; n < rows; n++) {
      assertEquals(0f, v[n * cols + 3]);
      assertEquals(0f, v[n * cols + 40]);
    }
    assertTrue(Double.isFinite(r.loss()));
  }

  @Test
  void indefiniteHessianRetriesWithTenfoldDampening() {
    // 2x2 blocks [[1, 1.02], [1.02, 1]]: eigenvalue -0.02, so dampening 0.01 fails and 0.1 works
    int cols = 4;
    float[] h = new float[cols * cols];
    for (int b = 0; b < cols; b += 2) {
      h[b * cols + b] = 1f;
      h[(b + 1) * cols + b + 1] = 1f;
      h[b * cols + b + 1] = 1.02f;
      h[(b + 1) * cols + b] = 1.02f;
    }
    float[] w = gaussian(2 * cols, 8);
    Gptq.Result r = Gptq.quantize(w, 2, cols, h, Gptq.Options.of(new QuantScheme(4, -1, false)));
    assertFalse(r.fellBackToRtn());
    assertEquals(0.1, r.damp(), 1e-12);
    assertNotNull(r.warning());
  }

  @Test
  void negativeDefiniteHessianFallsBackToRtnWithWarning() {
    int cols = 8;
    float[] h = new float[cols * cols];
    for (int i = 0; i < cols; i++) {
      h[i * cols + i] = -1f;
    }
    float[] w = gaussian(3 * cols, 9);
    QuantScheme scheme = new QuantScheme(4, 4, false);
    Gptq.Result r = Gptq.quantize(w, 3, cols, h, Gptq.Options.of(scheme));
    assertTrue(r.fellBackToRtn());
    assertNotNull(r.warning());
    assertArrayEquals(
        Rtn.quantize(w, 3, cols, scheme, Rtn.Clip.NONE).codes(), r.quantized().codes());
  }

  @Test
  void positiveDefiniteHessianNeedsNoWarning() {
    UnitAnchors a = UnitAnchors.load();
    Gptq.Result r =
        Gptq.quantize(
            a.w, a.rows, a.cols, a.hessian, Gptq.Options.of(new QuantScheme(4, 32, false)));
    assertNull(r.warning());
    assertEquals(0.01, r.damp());
    assertTrue(r.loss() > 0);
  }

  @Test
  void hessianIsTwiceTheMeanOuterProductOverAllBatches() {
    int cols = 150;
    float[] x = gaussian(333 * cols, 10);
    llmc.calibration.InputStatistics acc = new llmc.calibration.InputStatistics(cols);
    acc.add(java.util.Arrays.copyOfRange(x, 0, 100 * cols), 100);
    acc.add(java.util.Arrays.copyOfRange(x, 100 * cols, 333 * cols), 233);
    float[] h = acc.hessian();
    assertEquals(333, acc.tokens());
    for (int i = 0; i < cols; i++) {
      for (int j = 0; j < cols; j++) {
        double s = 0;
        for (int t = 0; t < 333; t++) {
          s += (double) x[t * cols + i] * x[t * cols + j];
        }
        assertEquals(2 * s / 333, h[i * cols + j], 1e-5 * (1 + Math.abs(2 * s / 333)));
        assertEquals(h[i * cols + j], h[j * cols + i]);
      }
    }
  }

  @Test
  void blockedCholeskyGivesUpperFactorOfInverse() {
    int n = 300; // three blocks, the last one partial
    float[] x = gaussian(600 * n, 11);
    float[] h = Gptq.hessian(x, 600, n);
    float[] u = Cholesky.upperFactorOfInverse(h, n);
    assertNotNull(u);
    // U^T U H = I
    double worst = 0;
    for (int i = 0; i < n; i++) {
      for (int j = 0; j < n; j++) {
        assertEquals(0f, i > j ? u[i * n + j] : 0f);
      }
    }
    double[] utu = new double[n * n];
    for (int i = 0; i < n; i++) {
      for (int j = 0; j < n; j++) {
        double s = 0;
        for (int k = 0; k <= Math.min(i, j); k++) {
          s += (double) u[k * n + i] * u[k * n + j];
        }
        utu[i * n + j] = s;
      }
    }
    for (int i = 0; i < n; i++) {
      for (int j = 0; j < n; j++) {
        double s = 0;
        for (int k = 0; k < n; k++) {
          s += utu[i * n + k] * h[k * n + j];
        }
        worst = Math.max(worst, Math.abs(s - (i == j ? 1 : 0)));
      }
    }
    assertTrue(worst < 1e-3, "max |U^T U H - I| = " + worst);
    assertEquals(null, Cholesky.upperFactorOfInverse(new float[] {1f, 2f, 2f, 1f}, 2));
  }

  @Test
  void matrixProductMatchesNaiveOnOddShapes() {
    int m = 37;
    int n = 131;
    int k = 259;
    float[] a = gaussian(m * k, 12);
    float[] b = gaussian(k * n, 13);
    float[] c = gaussian(m * n, 14);
    float[] expected = c.clone();
    for (int i = 0; i < m; i++) {
      for (int j = 0; j < n; j++) {
        double s = expected[i * n + j];
        for (int p = 0; p < k; p++) {
          s -= (double) a[i * k + p] * b[p * n + j];
        }
        expected[i * n + j] = (float) s;
      }
    }
    Gemm.parallelMultiplyAdd(-1f, a, 0, k, 1, b, 0, n, c, 0, n, m, n, k);
    assertArrayEquals(expected, c, 1e-3f);
  }
}
