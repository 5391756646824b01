package llmc.prune.grad;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.training.GradientCollector;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.IntConsumer;
import llmc.formats.BadInputException;
import llmc.model.Engines;
import llmc.model.LlamaFamily;
import llmc.model.Weights;
import llmc.model.kernels.Tensors;
import llmc.model.train.DifferentiableLlama;

/**
 * The gradient of the language-model loss with respect to every linear weight (q, k, v, o, gate,
 * up, down of every layer), from DJL/PyTorch autograd over the calibration windows: what the {@code
 * sensitivity} ({@code |g| / sum |g|}) and {@code taylor} ({@code |g * w|}) scores read.
 *
 * <p>The loss L is the mean next-token cross-entropy over all predicted positions of all windows,
 * each window run from an empty cache (as in protocol P1: L-1 predictions per window of L tokens).
 * Windows go through in batches, one forward and one backward per batch; each batch's summed NLL is
 * scaled by {@code 1 / (windows * (L-1))} before its backward, so the gradients PyTorch accumulates
 * (float32, in the weights' {@code .grad}) add up to the gradient of the overall mean.
 *
 * <p>Memory: while computing, the linear weights as float32 arrays and their float32 gradients (8
 * bytes per linear parameter), the lm_head (the embedding when tied; {@code 4 * V * H} bytes) and
 * the norms and biases, and one batch's activations, which autograd keeps until the backward:
 * dominated by the attention probabilities, {@code 4 * B * nh * L * L} bytes per layer, with two
 * more such arrays alive at a time while a layer's attention is computed and while it is
 * differentiated. Afterwards only the gradients, 4 bytes per linear parameter ({@link #bytes()}),
 * moved to Java one tensor at a time. The embedding rows are read from {@code weights} per token.
 */
public final class Gradients {
  private final Map<String, float[]> gradients; // HF weight name -> [out][in] row-major
  private final double loss;
  private final long scoredTokens;
  private final double seconds;

  private Gradients(
      Map<String, float[]> gradients, double loss, long scoredTokens, double seconds) {
    this.gradients = gradients;
    this.loss = loss;
    this.scoredTokens = scoredTokens;
    this.seconds = seconds;
  }

  /**
   * dL/dW for every linear weight, L the mean next-token cross-entropy over all predicted positions
   * of all windows (each from an empty cache), accumulated over batches of {@code batch} windows.
   *
   * <p>Uses the DJL engine (call {@link Engines#configure} first to choose its threads) and its one
   * gradient collector: not to be run alongside other autograd work in the same process.
   *
   * @param windows token windows, all of the same length L >= 2
   * @param batch windows per forward/backward
   * @param progress told the number of windows done after each batch
   */
  public static Gradients compute(
      LlamaFamily f, Weights weights, List<int[]> windows, int batch, IntConsumer progress) {
    if (windows.isEmpty()) {
      throw new BadInputException("no calibration windows to compute gradients on");
    }
    if (batch < 1) {
      throw new IllegalArgumentException("batch must be at least 1, got " + batch);
    }
    int length = windows.get(0).length;
    for (int[] window : windows) {
      if (window.length != length || length < 2) {
        throw new BadInputException(
            "calibration windows must all have the same length of at least 2 tokens; got "
                + window.length
                + " and "
                + length);
      }
    }
    long t0 = System.nanoTime();
    long scored = (long) windows.size() * (length - 1);
    double nllSum = 0;
    Map<String, float[]> gradients = new LinkedHashMap<>();
    try (NDManager manager = Engines.newManager()) {
      DifferentiableLlama model = new DifferentiableLlama(f, weights, manager);
      float scale = (float) (1.0 / scored);
      try (GradientCollector collector = manager.getEngine().newGradientCollector()) {
        for (int from = 0; from < windows.size(); from += batch) {
          int to = Math.min(windows.size(), from + batch);
          int[][] tokens = windows.subList(from, to).toArray(int[][]::new);
          try (NDManager scope = manager.newSubManager()) {
            NDArray nll = model.nllSum(scope, tokens); // scalar, float32
            nllSum += nll.getFloat();
            collector.backward(nll.mul(Tensors.scalar(scope, scale)));
          }
          progress.accept(to);
        }
      }
      for (Map.Entry<String, NDArray> e : model.parameters().entrySet()) {
        NDArray w = e.getValue();
        float[] g = new float[Math.toIntExact(w.size())];
        try (NDArray grad = w.getGradient()) {
          Tensors.read(grad, g);
        }
        w.close(); // frees the weight and its gradient before the next one is copied
        gradients.put(e.getKey(), g);
      }
    }
    return new Gradients(
        Collections.unmodifiableMap(gradients),
        nllSum / scored,
        scored,
        (System.nanoTime() - t0) / 1e9);
  }

  /**
   * Gradients computed earlier ({@link #all} and the figures of that run), e.g. saved in a work
   * folder and read back on resume.
   */
  public static Gradients restored(
      Map<String, float[]> gradients, double loss, long scoredTokens, double seconds) {
    return new Gradients(
        Collections.unmodifiableMap(new LinkedHashMap<>(gradients)), loss, scoredTokens, seconds);
  }

  /** Every gradient by Hugging Face weight name, in {@link #names} order; not copies. */
  public Map<String, float[]> all() {
    return gradients;
  }

  /**
   * dL/dW of one linear weight by its Hugging Face name, {@code [out][in]} row-major like {@link
   * Weights#floats}; not a copy.
   */
  public float[] of(String hfWeightName) {
    float[] g = gradients.get(hfWeightName);
    if (g == null) {
      throw new IllegalArgumentException(
          "no gradient for '"
              + hfWeightName
              + "'; gradients exist for the linear weights, e.g. model.layers.0.self_attn.q_proj.weight");
    }
    return g;
  }

  /**
   * The names of the weights that have gradients, layer by layer in q, k, v, o, gate, up, down
   * order.
   */
  public Set<String> names() {
    return gradients.keySet();
  }

  /** Memory held by the gradients: 4 bytes per linear parameter. */
  public long bytes() {
    long floats = 0;
    for (float[] g : gradients.values()) {
      floats += g.length;
    }
    return 4 * floats;
  }

  /** The mean next-token cross-entropy (nats) over all scored positions. */
  public double loss() {
    return loss;
  }

  /** Positions scored: windows x (L - 1). */
  public long scoredTokens() {
    return scoredTokens;
  }

  /** Wall time of {@link #compute}, loading the weights included. */
  public double seconds() {
    return seconds;
  }
}
