package llmc.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import java.util.List;
import java.util.function.IntConsumer;

/**
 * Protocol P1 (perplexity) and the KL divergence / top-1 agreement against a base model
 * (PROTOCOLS.md): each window one forward pass from an empty cache, its L-1 next-token predictions
 * scored, log-probabilities in float32, sums in float64.
 */
public final class Evaluator {
  private Evaluator() {}

  /** P1 result; with a base model also mean KL(p_base || p) and the top-1 agreement. */
  public record Result(
      int seqLen,
      int windows,
      long scoredTokens,
      double meanNll,
      double perplexity,
      Double meanKl,
      Double top1Agreement,
      Double baseMeanNll,
      double seconds) {
    /** The base model's perplexity on the same windows (null without a base). */
    public Double basePerplexity() {
      return baseMeanNll == null ? null : Math.exp(baseMeanNll);
    }

    public double tokensPerSecond() {
      return (double) windows * seqLen / seconds;
    }
  }

  /**
   * @param base the reference model for KL, or null
   * @param batch windows per forward pass
   * @param progress told the number of windows done
   */
  public static Result evaluate(
      LlamaRuntime model, LlamaRuntime base, List<int[]> windows, int batch, IntConsumer progress) {
    if (windows.isEmpty()) {
      throw new IllegalArgumentException("no windows to evaluate");
    }
    int seqLen = windows.get(0).length;
    double nllSum = 0;
    double klSum = 0;
    double baseNllSum = 0;
    long agree = 0;
    long scored = 0;
    model.preload();
    if (base != null) {
      base.preload();
    }
    long t0 = System.nanoTime();
    // A model whose layers are not all kept runs layer-major: every window through a layer, loaded
    // once, then the next; the vocabulary projection still goes batch by batch.
    boolean layerMajor = !model.keepsAllLayers() || (base != null && !base.keepsAllLayers());
    int chunk = layerMajor ? windows.size() : batch;
    for (int first = 0; first < windows.size(); first += chunk) {
      int[][] chunkTokens =
          windows.subList(first, Math.min(windows.size(), first + chunk)).toArray(int[][]::new);
      try (NDManager outer = model.manager().newSubManager()) {
        NDArray hidden = model.hiddenStates(outer, chunkTokens); // [C, L, H]
        NDArray baseHidden = base == null ? null : base.hiddenStates(outer, chunkTokens);
        for (int from = 0; from < chunkTokens.length; from += batch) {
          int to = Math.min(chunkTokens.length, from + batch);
          int[][] tokens = java.util.Arrays.copyOfRange(chunkTokens, from, to);
          try (NDManager scope = outer.newSubManager()) {
            String rows = from + ":" + to + ", :-1, :";
            NDArray logProbs = predictions(model, scope, hidden, rows); // [B, L-1, V]
            NDArray targets =
                scope.create(nextTokens(tokens), new Shape(tokens.length, seqLen - 1, 1));
            for (float logProb : logProbs.gather(targets, -1).toFloatArray()) {
              nllSum -= logProb;
            }
            if (base != null) {
              NDArray baseLogProbs = predictions(base, scope, baseHidden, rows);
              for (float logProb : baseLogProbs.gather(targets, -1).toFloatArray()) {
                baseNllSum -= logProb;
              }
              NDArray kl = baseLogProbs.exp().muli(baseLogProbs.sub(logProbs)).sum(new int[] {-1});
              for (float value : kl.toFloatArray()) {
                klSum += value;
              }
              NDArray same = baseLogProbs.argMax(-1).eq(logProbs.argMax(-1));
              for (boolean b : same.toBooleanArray()) {
                agree += b ? 1 : 0;
              }
            }
          }
          scored += (long) tokens.length * (seqLen - 1);
          progress.accept(first + to);
        }
      }
    }
    double seconds = (System.nanoTime() - t0) / 1e9;
    double meanNll = nllSum / scored;
    return new Result(
        seqLen,
        windows.size(),
        scored,
        meanNll,
        Math.exp(meanNll),
        base == null ? null : klSum / scored,
        base == null ? null : (double) agree / scored,
        base == null ? null : baseNllSum / scored,
        seconds);
  }

  /**
   * Log-probabilities of the next token at positions {@code 0 .. L-2}, from the last layer's output
   * at those positions ({@code [B, L-1, H]}; the last position predicts nothing that is scored, so
   * it is left out before the vocabulary projection): {@code [B, L-1, V]}.
   */
  private static NDArray predictions(
      LlamaRuntime runtime, NDManager scope, NDArray hidden, String rows) {
    NDArray x = hidden.get(rows);
    x.attach(scope); // what is made from it goes when the batch is done
    return runtime.logits(x).logSoftmax(-1);
  }

  private static long[] nextTokens(int[][] tokens) {
    int seqLen = tokens[0].length;
    long[] next = new long[tokens.length * (seqLen - 1)];
    for (int b = 0; b < tokens.length; b++) {
      for (int t = 1; t < seqLen; t++) {
        next[b * (seqLen - 1) + t - 1] = tokens[b][t];
      }
    }
    return next;
  }
}
