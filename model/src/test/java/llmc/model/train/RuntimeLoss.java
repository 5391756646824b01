package llmc.model.train;

import ai.djl.ndarray.NDManager;
import java.util.List;
import llmc.model.LlamaFamily;
import llmc.model.LlamaRuntime;
import llmc.model.Weights;

/**
 * The language-model loss by the fast runtime, for checking autograd against it (here and in
 * prune's gradient tests, through model's test jar).
 */
public final class RuntimeLoss {
  private RuntimeLoss() {}

  /**
   * Mean next-token cross-entropy over windows {@code [B][T]}, from {@link LlamaRuntime}'s float32
   * logits, log-softmax in float64.
   */
  public static double meanNll(LlamaFamily f, Weights weights, List<int[]> windows) {
    int[][] tokens = windows.toArray(int[][]::new);
    int length = tokens[0].length;
    int vocab = f.vocab();
    try (LlamaRuntime runtime = new LlamaRuntime(f, weights, true);
        NDManager scope = runtime.manager().newSubManager()) {
      float[] logits = runtime.forward(scope, tokens).toFloatArray(); // [B, T, V]
      double nll = 0;
      for (int b = 0; b < tokens.length; b++) {
        for (int t = 0; t < length - 1; t++) {
          int row = (b * length + t) * vocab;
          double max = Double.NEGATIVE_INFINITY;
          for (int v = 0; v < vocab; v++) {
            max = Math.max(max, logits[row + v]);
          }
          double sum = 0;
          for (int v = 0; v < vocab; v++) {
            sum += Math.exp(logits[row + v] - max);
          }
          nll += max + Math.log(sum) - logits[row + tokens[b][t + 1]];
        }
      }
      return nll / ((double) tokens.length * (length - 1));
    }
  }
}
