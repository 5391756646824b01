package llmc.quantize;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.Random;
import llmc.formats.DType;
import org.junit.jupiter.api.Test;

/**
 * AWQ's searches on a matrix whose input has a few large features (the activation outliers AWQ is
 * about): the output error written with {@code H = Xᵀ X} is the error on the activations
 * themselves; {@code alpha = 0} is plain RTN and the search never does worse; the clipping search
 * never raises a group's output error and shrinks a group whose largest weight meets a quiet input.
 */
class AwqTest {
  private static final int ROWS = 16;
  private static final int IN = 64;
  private static final int TOKENS = 300;
  private static final QuantScheme SCHEME = new QuantScheme(4, 32, false, DType.F16);

  /** {@code [TOKENS][IN]}: unit noise, features 3 and 40 a hundred times larger. */
  private static float[] activations(Random random) {
    float[] x = new float[TOKENS * IN];
    for (int t = 0; t < TOKENS; t++) {
      for (int j = 0; j < IN; j++) {
        x[t * IN + j] = (float) random.nextGaussian() * (j == 3 || j == 40 ? 100 : 1);
      }
    }
    return x;
  }

  private static float[] weights(Random random) {
    float[] w = new float[ROWS * IN];
    for (int i = 0; i < w.length; i++) {
      w[i] = (float) random.nextGaussian() * 0.1f;
    }
    return w;
  }

  /** {@code H = Xᵀ X}, full. */
  private static float[] gram(float[] x) {
    float[] h = new float[IN * IN];
    for (int a = 0; a < IN; a++) {
      for (int b = 0; b < IN; b++) {
        double sum = 0;
        for (int t = 0; t < TOKENS; t++) {
          sum += (double) x[t * IN + a] * x[t * IN + b];
        }
        h[a * IN + b] = (float) sum;
      }
    }
    return h;
  }

  private static double[] meanAbs(float[] x) {
    double[] m = new double[IN];
    for (int t = 0; t < TOKENS; t++) {
      for (int j = 0; j < IN; j++) {
        m[j] += Math.abs(x[t * IN + j]) / TOKENS;
      }
    }
    return m;
  }

  /** {@code sum_t ||(W' - W) x_t||²} on the activations. */
  private static double errorOnActivations(float[] w, float[] wq, float[] x) {
    double sum = 0;
    for (int t = 0; t < TOKENS; t++) {
      for (int r = 0; r < ROWS; r++) {
        double y = 0;
        for (int j = 0; j < IN; j++) {
          y += (double) (wq[r * IN + j] - w[r * IN + j]) * x[t * IN + j];
        }
        sum += y * y;
      }
    }
    return sum;
  }

  @Test
  void outputErrorFromTheHessianIsTheErrorOnTheActivations() {
    Random random = new Random(1);
    float[] x = activations(random);
    float[] w = weights(random);
    float[] s = Awq.scales(meanAbs(x), 0.5);
    float[] scaled = w.clone();
    for (int i = 0; i < w.length; i++) {
      scaled[i] *= s[i % IN];
    }
    float[] wq = Rtn.quantize(scaled, ROWS, IN, SCHEME, Rtn.Clip.NONE).dequantize();
    for (int i = 0; i < wq.length; i++) {
      wq[i] /= s[i % IN];
    }
    double expected = errorOnActivations(w, wq, x);
    assertEquals(expected, Awq.outputError(w, ROWS, IN, s, SCHEME, gram(x)), expected * 1e-4);
  }

  @Test
  void scalesAreNormalisedAndAlphaZeroIsOne() {
    double[] m = {0.5, 2, 8, 1e-9};
    float[] s = Awq.scales(m, 0.7);
    float max = 0;
    float min = Float.MAX_VALUE;
    for (float v : s) {
      max = Math.max(max, v);
      min = Math.min(min, v);
    }
    assertEquals(1.0, (double) max * min, 1e-5);
    for (float v : Awq.scales(m, 0)) {
      assertEquals(1f, v);
    }
  }

  @Test
  void searchNeverLosesToRtnAndWinsWithOutliers() {
    Random random = new Random(2);
    float[] x = activations(random);
    float[] w1 = weights(random);
    float[] w2 = weights(random);
    float[] h = gram(x);
    Awq.Scales r =
        Awq.searchScales(
            meanAbs(x), List.of(w1, w2), new int[] {ROWS, ROWS}, List.of(SCHEME, SCHEME), h);
    float[] ones = new float[IN];
    java.util.Arrays.fill(ones, 1f);
    double rtn =
        Awq.outputError(w1, ROWS, IN, ones, SCHEME, h)
            + Awq.outputError(w2, ROWS, IN, ones, SCHEME, h);
    assertEquals(rtn, r.rtnLoss(), rtn * 1e-9);
    assertTrue(r.alpha() > 0, "alpha " + r.alpha());
    assertNotNull(r.scales());
    assertTrue(r.loss() < 0.9 * rtn, r.loss() + " against RTN's " + rtn);
    assertEquals(0, Math.round(r.alpha() * 20) - r.alpha() * 20, 1e-9, "on the 0.05 grid");
  }

  @Test
  void clippingNeverRaisesAGroupsErrorAndShrinksAnOutlierWeightOnAQuietInput() {
    Random random = new Random(3);
    float[] x = activations(random);
    for (int t = 0; t < TOKENS; t++) {
      x[t * IN + 10] *= 1e-3f; // a quiet input feature
    }
    float[] w = weights(random);
    w[5 * IN + 10] = 3f; // row 5's largest weight by far, on the quiet feature
    float[] h = gram(x);
    float[] clipped = w.clone();
    long groups = Awq.clip(clipped, ROWS, IN, SCHEME, h);
    assertTrue(groups >= 1);
    assertTrue(clipped[5 * IN + 10] < 3f, "the outlier was clipped: " + clipped[5 * IN + 10]);
    float[] before = Rtn.quantize(w, ROWS, IN, SCHEME, Rtn.Clip.NONE).dequantize();
    float[] after = Rtn.quantize(clipped, ROWS, IN, SCHEME, Rtn.Clip.NONE).dequantize();
    for (int r = 0; r < ROWS; r++) {
      for (int g = 0; g < 2; g++) {
        double e0 = groupError(w, before, h, r, g);
        double e1 = groupError(w, after, h, r, g);
        assertTrue(
            e1 <= e0 * (1 + 1e-6) + 1e-12, "row " + r + " group " + g + ": " + e1 + " > " + e0);
        for (int k = g * 32; k < g * 32 + 32; k++) {
          assertTrue(Math.abs(clipped[r * IN + k]) <= Math.abs(w[r * IN + k]));
        }
      }
    }
    assertTrue(
        groupError(w, after, h, 5, 0) < 0.5 * groupError(w, before, h, 5, 0),
        "clipping the outlier's group lowers its error");
  }

  /** {@code d H_gg dᵀ} of one row's group against the original weights. */
  private static double groupError(float[] w, float[] wq, float[] h, int r, int g) {
    double sum = 0;
    for (int a = g * 32; a < g * 32 + 32; a++) {
      for (int b = g * 32; b < g * 32 + 32; b++) {
        sum +=
            (double) (wq[r * IN + a] - w[r * IN + a])
                * h[a * IN + b]
                * (wq[r * IN + b] - w[r * IN + b]);
      }
    }
    return sum;
  }
}
