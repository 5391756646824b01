package llmc.model.kernels;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.SplittableRandom;
import jdk.incubator.vector.FloatVector;
import org.junit.jupiter.api.Test;

class OpsTest {
  private static final jdk.incubator.vector.VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;

  @Test
  void expIsWithinTwoUlpOfMathExpOverTheFloatRange() {
    double worst = 0;
    for (float x = -87f; x <= 88f; x += 0.0137f) {
      double exact = Math.exp(x);
      double err = Math.abs(Ops.exp(x) - exact) / Math.ulp((float) exact);
      worst = Math.max(worst, err);
    }
    assertTrue(worst <= 2, "worst error " + worst + " ulp");
    assertEquals(0f, Ops.exp(-1000f), 1e-37f); // clamped: the smallest normal float's order
    assertTrue(Ops.exp(1000f) > 1e38f && Float.isFinite(Ops.exp(1000f)));
    assertEquals(1f, Ops.exp(0f));
  }

  @Test
  void vectorExpEqualsScalarExpBitForBit() {
    SplittableRandom random = new SplittableRandom(1);
    float[] x = new float[S.length() * 4096];
    for (int i = 0; i < x.length; i++) {
      x[i] = (float) (random.nextDouble() * 200 - 100);
    }
    float[] y = new float[x.length];
    for (int i = 0; i < x.length; i += S.length()) {
      Ops.exp(FloatVector.fromArray(S, x, i)).intoArray(y, i);
    }
    for (int i = 0; i < x.length; i++) {
      assertEquals(Float.floatToIntBits(Ops.exp(x[i])), Float.floatToIntBits(y[i]), "x = " + x[i]);
    }
  }

  @Test
  void sumAddsLanesInOrder() {
    float[] lanes = new float[S.length()];
    lanes[0] = 1e8f;
    lanes[1] = 1f;
    lanes[2] = -1e8f;
    // In lane order (1e8 + 1) - 1e8 = 0 in float32; a tree order could give 1.
    assertEquals(0f, Ops.sum(FloatVector.fromArray(S, lanes, 0)));
  }

  @Test
  void rmsNormAndSiluMulMatchDoublePrecisionFormulas() {
    SplittableRandom random = new SplittableRandom(2);
    int rows = 3;
    int width = 37;
    float[] x = new float[rows * width];
    float[] w = new float[width];
    for (int i = 0; i < x.length; i++) {
      x[i] = (float) random.nextGaussian();
    }
    for (int i = 0; i < width; i++) {
      w[i] = (float) random.nextGaussian();
    }
    float[] out = new float[x.length];
    Ops.rmsNorm(x, w, 1e-5f, out, rows, width);
    for (int r = 0; r < rows; r++) {
      double ms = 0;
      for (int i = 0; i < width; i++) {
        ms += (double) x[r * width + i] * x[r * width + i];
      }
      double inv = 1 / Math.sqrt(ms / width + 1e-5);
      for (int i = 0; i < width; i++) {
        assertEquals(x[r * width + i] * inv * w[i], out[r * width + i], 1e-5);
      }
    }
    float[] gate = x.clone();
    float[] up = out.clone();
    Ops.siluMul(gate, up, gate.length);
    for (int i = 0; i < x.length; i++) {
      double g = x[i];
      assertEquals(g / (1 + Math.exp(-g)) * up[i], gate[i], 1e-5 * (1 + Math.abs(up[i])));
    }
  }
}
