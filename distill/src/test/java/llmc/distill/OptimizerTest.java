package llmc.distill;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import java.util.LinkedHashMap;
import java.util.Map;
import llmc.model.Engines;
import llmc.model.kernels.Tensors;
import org.junit.jupiter.api.Test;

/** AdamW, clipping, the schedule and the D1 windows against their definitions. */
class OptimizerTest {

  @Test
  void twoAdamWStepsEqualTheFormulaWithDecayOnMatricesOnly() {
    try (NDManager m = Engines.newManager()) {
      NDArray matrix = Tensors.create(m, new float[] {1f, -2f, 0.5f, 3f}, new Shape(2, 2));
      NDArray vector = Tensors.create(m, new float[] {0.25f, -1f}, new Shape(2));
      matrix.setRequiresGradient(true);
      vector.setRequiresGradient(true);
      Map<String, NDArray> parameters = new LinkedHashMap<>();
      parameters.put("w", matrix);
      parameters.put("b", vector);
      AdamW adam = new AdamW(parameters, m, 0.9, 0.95, 1e-8, 0.1);
      double[] w = {1, -2, 0.5, 3};
      double[] b = {0.25, -1};
      double[][] mw = new double[2][4];
      double[][] mb = new double[2][2];
      double lr = 0.01;
      for (int step = 1; step <= 2; step++) {
        // loss = sum(w^2) + sum(b^3): gradients 2 w and 3 b^2
        try (GradientCollector c = m.getEngine().newGradientCollector()) {
          c.backward(matrix.mul(matrix).sum().add(vector.mul(vector).mul(vector).sum()));
        }
        adam.step(parameters, lr);
        AdamW.zeroGradients(parameters);
        reference(w, mw, g -> 2 * g, 0.1, lr, step);
        reference(b, mb, g -> 3 * g * g, 0, lr, step);
        assertArrayEquals(toFloat(w), read(matrix), 1e-6f);
        assertArrayEquals(toFloat(b), read(vector), 1e-6f);
      }
    }
  }

  private static void reference(
      double[] p,
      double[][] moments,
      java.util.function.DoubleUnaryOperator gradient,
      double decay,
      double lr,
      int step) {
    for (int i = 0; i < p.length; i++) {
      double g = gradient.applyAsDouble(p[i]);
      p[i] -= lr * decay * p[i];
      moments[0][i] = 0.9 * moments[0][i] + 0.1 * g;
      moments[1][i] = 0.95 * moments[1][i] + 0.05 * g * g;
      double mHat = moments[0][i] / (1 - Math.pow(0.9, step));
      double vHat = moments[1][i] / (1 - Math.pow(0.95, step));
      p[i] -= lr * mHat / (Math.sqrt(vHat) + 1e-8);
    }
  }

  @Test
  void clippingScalesTheGlobalNormToTheLimit() {
    try (NDManager m = Engines.newManager()) {
      NDArray a = Tensors.create(m, new float[] {3f, 0f}, new Shape(2));
      NDArray b = Tensors.create(m, new float[] {0f, 4f}, new Shape(2));
      a.setRequiresGradient(true);
      b.setRequiresGradient(true);
      try (GradientCollector c = m.getEngine().newGradientCollector()) {
        c.backward(a.mul(a).sum().div(2).add(b.mul(b).sum().div(2))); // gradients a, b: norm 5
      }
      Map<String, NDArray> parameters = Map.of("a", a, "b", b);
      assertEquals(5.0, AdamW.clipGradients(parameters, 1.0), 1e-6);
      try (NDArray ga = a.getGradient();
          NDArray gb = b.getGradient()) {
        assertArrayEquals(new float[] {0.6f, 0f}, ga.toFloatArray(), 1e-6f);
        assertArrayEquals(new float[] {0f, 0.8f}, gb.toFloatArray(), 1e-6f);
      }
    }
  }

  @Test
  void scheduleWarmsUpLinearlyThenDecaysByCosineToTheFloor() {
    LearningRate lr = new LearningRate(1.0, 110, 10, LearningRate.Schedule.COSINE, 0.1);
    assertEquals(0.1, lr.at(0), 1e-12);
    assertEquals(1.0, lr.at(9), 1e-12);
    assertEquals(1.0, lr.at(10), 1e-12);
    assertEquals(0.1 + 0.9 * 0.5, lr.at(60), 1e-12);
    assertEquals(0.1, lr.at(110), 1e-12);
    assertEquals(
        1.0, new LearningRate(1.0, 110, 10, LearningRate.Schedule.CONSTANT, 0.1).at(80), 1e-12);
  }

  @Test
  void windowsDependOnlyOnTheSeedAndTheirIndexSoASeekResumes() {
    int[] stream = java.util.stream.IntStream.range(0, 1000).toArray();
    TrainingWindows a = new TrainingWindows(stream, 16, 7);
    a.next(5);
    int[][] expected = a.next(3);
    TrainingWindows b = new TrainingWindows(stream, 16, 7);
    b.seek(5);
    assertArrayEquals(expected, b.next(3));
    for (int[] w : expected) {
      assertEquals(16, w.length);
      assertEquals(w[0] + 15, w[15]); // a contiguous slice of the stream
    }
  }

  private static float[] read(NDArray a) {
    float[] out = new float[Math.toIntExact(a.size())];
    Tensors.read(a, out);
    return out;
  }

  private static float[] toFloat(double[] d) {
    float[] f = new float[d.length];
    for (int i = 0; i < d.length; i++) {
      f[i] = (float) d[i];
    }
    return f;
  }
}
