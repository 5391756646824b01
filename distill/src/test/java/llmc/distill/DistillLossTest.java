package llmc.distill;

import static org.junit.jupiter.api.Assertions.assertEquals;

import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import java.util.List;
import java.util.SplittableRandom;
import llmc.model.Engines;
import llmc.model.kernels.Tensors;
import llmc.model.train.DifferentiableLlama;
import org.junit.jupiter.api.Test;

/** The loss's terms equal PROTOCOLS.md's formulas computed in double precision in plain Java. */
class DistillLossTest {
  private static final int B = 2;
  private static final int T = 5;
  private static final int V = 7;

  @Test
  void everyDivergenceAndTheHardLabelsEqualThePlainJavaFormulas() {
    SplittableRandom random = new SplittableRandom(3);
    float[] zt = new float[B * T * V];
    float[] zs = new float[B * T * V];
    for (int i = 0; i < zt.length; i++) {
      zt[i] = (float) (random.nextGaussian() * 2);
      zs[i] = (float) (random.nextGaussian() * 2);
    }
    int[][] tokens = new int[B][T];
    for (int[] row : tokens) {
      for (int t = 0; t < T; t++) {
        row[t] = random.nextInt(V);
      }
    }
    double temperature = 1.7;
    try (NDManager m = Engines.newManager()) {
      var teacher =
          new DifferentiableLlama.Forward(Tensors.create(m, zt, new Shape(B, T, V)), List.of());
      var student =
          new DifferentiableLlama.Forward(Tensors.create(m, zs, new Shape(B, T, V)), List.of());
      for (Divergence d : Divergence.values()) {
        DistillLoss loss = new DistillLoss(0.3, temperature, 0, d, 0.25, List.of());
        DistillLoss.Terms terms = loss.of(m, teacher, student, tokens);
        double expectedD = reference(d, zt, zs, temperature, 0.25);
        double expectedCe = crossEntropy(zs, tokens);
        assertEquals(expectedD, terms.divergence(), 1e-5 * Math.max(1, expectedD), d.name());
        assertEquals(expectedCe, terms.crossEntropy(), 1e-5 * expectedCe);
        // Chunks of two rows split each window: the same sums.
        DistillLoss.Terms chunked =
            loss.of(null, m, loss.teacher(teacher, T), student, tokens, 2L * V);
        assertEquals(terms.divergence(), chunked.divergence(), 1e-6 * Math.max(1, expectedD));
        assertEquals(terms.crossEntropy(), chunked.crossEntropy(), 1e-6 * expectedCe);
        assertEquals(
            0.3 * temperature * temperature * expectedD + 0.7 * expectedCe, terms.loss(), 1e-4);
      }
    }
  }

  /** Mean over the scored positions (t < T - 1) of D(p_t, p_s) at temperature T. */
  private static double reference(Divergence d, float[] zt, float[] zs, double temp, double b) {
    double sum = 0;
    for (int bt = 0; bt < B; bt++) {
      for (int t = 0; t < T - 1; t++) {
        int at = (bt * T + t) * V;
        double[] pt = softmax(zt, at, temp);
        double[] ps = softmax(zs, at, temp);
        sum +=
            switch (d) {
              case FORWARD_KL -> kl(pt, ps);
              case REVERSE_KL -> kl(ps, pt);
              case JSD -> {
                double[] mix = new double[V];
                for (int v = 0; v < V; v++) {
                  mix[v] = b * pt[v] + (1 - b) * ps[v];
                }
                yield b * kl(pt, mix) + (1 - b) * kl(ps, mix);
              }
            };
      }
    }
    return sum / (B * (T - 1));
  }

  private static double crossEntropy(float[] zs, int[][] tokens) {
    double sum = 0;
    for (int bt = 0; bt < B; bt++) {
      for (int t = 0; t < T - 1; t++) {
        sum -= Math.log(softmax(zs, (bt * T + t) * V, 1)[tokens[bt][t + 1]]);
      }
    }
    return sum / (B * (T - 1));
  }

  private static double[] softmax(float[] z, int at, double temp) {
    double max = Double.NEGATIVE_INFINITY;
    for (int v = 0; v < V; v++) {
      max = Math.max(max, z[at + v] / temp);
    }
    double[] p = new double[V];
    double total = 0;
    for (int v = 0; v < V; v++) {
      p[v] = Math.exp(z[at + v] / temp - max);
      total += p[v];
    }
    for (int v = 0; v < V; v++) {
      p[v] /= total;
    }
    return p;
  }

  private static double kl(double[] p, double[] q) {
    double sum = 0;
    for (int v = 0; v < V; v++) {
      sum += p[v] * Math.log(p[v] / q[v]);
    }
    return sum;
  }
}
