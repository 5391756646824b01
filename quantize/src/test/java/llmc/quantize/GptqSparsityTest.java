package llmc.quantize;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import java.util.Random;
import llmc.formats.gguf.GgmlType;
import org.junit.jupiter.api.Test;

/** GPTQ on a pruned matrix keeps its zeros at exactly 0 and compensates around them. */
class GptqSparsityTest {
  static float[] twoFour(int rows, int cols, long seed) {
    Random random = new Random(seed);
    float[] w = new float[rows * cols];
    for (int i = 0; i < w.length; i++) {
      w[i] =
          i % 4 < 2
              ? (float) random.nextGaussian() * 0.05f
              : 0f; // 2:4, kept first two of every four
    }
    return w;
  }

  static float[] hessian(int cols, long seed) {
    Random random = new Random(seed);
    int n = 256;
    float[] x = new float[n * cols];
    for (int t = 0; t < n; t++) {
      double shared = random.nextGaussian();
      for (int k = 0; k < cols; k++) {
        x[t * cols + k] = (float) (shared + random.nextGaussian());
      }
    }
    return Gptq.hessian(x, n, cols);
  }

  @Test
  void zerosOfAPrunedMatrixStayZeroOnIntegerGrids() {
    int rows = 16;
    int cols = 128;
    float[] w = twoFour(rows, cols, 1);
    for (QuantScheme scheme :
        new QuantScheme[] {
          new QuantScheme(4, 32, false),
          new QuantScheme(3, -1, true),
          QuantScheme.ggml(GgmlType.Q4_0),
          QuantScheme.ggml(GgmlType.Q8_0)
        }) {
      for (boolean actOrder : new boolean[] {false, true}) {
        if (actOrder && scheme.grid() != QuantScheme.Grid.ZERO_POINT) {
          continue;
        }
        float[] q =
            Gptq.quantize(
                    w, rows, cols, hessian(cols, 2), Gptq.Options.of(scheme).withActOrder(actOrder))
                .quantized()
                .dequantize();
        int nonZeroKept = 0;
        for (int i = 0; i < w.length; i++) {
          if (w[i] == 0f) {
            assertEquals(0f, q[i], scheme + " act-order " + actOrder + " at " + i);
          } else if (q[i] != 0f) {
            nonZeroKept++;
          }
        }
        assertNotEquals(0, nonZeroKept);
      }
    }
  }

  @Test
  void ggmlMinGridsCannotHoldExactZerosAndSaySoByNotMasking() {
    assertNull(Gptq.prunedWeights(twoFour(4, 32, 3), QuantScheme.ggml(GgmlType.Q4_1)));
  }
}
