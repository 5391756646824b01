package llmc.prune.grad;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import java.util.EnumMap;
import java.util.LinkedHashMap;
import java.util.Map;
import llmc.formats.BadInputException;
import llmc.model.LayerWeights;
import llmc.model.Linear;
import llmc.model.LlamaFamily;
import llmc.model.Rope;
import llmc.model.TensorNames;
import llmc.model.Weights;
import llmc.model.kernels.Tensors;

/**
 * The Llama-family forward (Llama, Mistral with its sliding window, Qwen2 biases, Qwen3 q/k norms)
 * written in DJL array operations, so that PyTorch's autograd can run it backwards. It is the model
 * {@code LlamaRuntime} runs, in the same Hugging Face conventions, written for gradients rather
 * than speed: every activation of a batch stays alive until its backward.
 *
 * <p>Only the linear weights (q, k, v, o, gate, up, down of every layer) require gradients; norms,
 * biases, embedding and lm_head are constants. Everything is float32. Parameters live in the
 * manager given to the constructor; a forward's activations live in the scope passed to it.
 *
 * <p>Shapes: B windows, T tokens, H hidden, nh / nkv heads, g = nh / nkv, d head_dim, I
 * intermediate, V vocabulary.
 */
final class AutogradLlama {
  /**
   * The parameters of one decoder layer as arrays: weights {@code [out, in]}, the rest constants.
   */
  private record Layer(
      Map<Linear, NDArray> weight, // [out, in], requires gradient
      Map<Linear, NDArray> bias, // [out], only those present (Qwen2 q/k/v)
      NDArray inputNorm, // [H]
      NDArray postAttentionNorm, // [H]
      NDArray qNorm, // [d], Qwen3 only, else null
      NDArray kNorm) {} // [d], Qwen3 only, else null

  private final LlamaFamily f;
  private final Weights weights;
  private final Layer[] layers;
  private final NDArray finalNorm; // [H]
  private final NDArray lmHead; // [V, H] (the embedding when tied)
  private final Map<String, NDArray> linear = new LinkedHashMap<>(); // HF name -> [out, in]

  /** Reads every parameter from {@code weights} (shapes checked) into arrays of {@code manager}. */
  AutogradLlama(LlamaFamily f, Weights weights, NDManager manager) {
    this.f = f;
    this.weights = weights;
    this.layers = new Layer[f.layers()];
    for (int i = 0; i < f.layers(); i++) {
      LayerWeights w = LayerWeights.load(weights, f, i);
      Map<Linear, NDArray> weight = new EnumMap<>(Linear.class);
      Map<Linear, NDArray> bias = new EnumMap<>(Linear.class);
      for (Linear l : Linear.values()) {
        NDArray array =
            Tensors.create(
                manager, w.weight().get(l), new Shape(l.outFeatures(f), l.inFeatures(f)));
        array.setRequiresGradient(true);
        weight.put(l, array);
        linear.put(l.weightName(i), array);
        if (w.bias().containsKey(l)) {
          bias.put(l, Tensors.create(manager, w.bias().get(l), new Shape(l.outFeatures(f))));
        }
      }
      layers[i] =
          new Layer(
              weight,
              bias,
              vector(manager, w.inputNorm()),
              vector(manager, w.postAttentionNorm()),
              w.qNorm() == null ? null : vector(manager, w.qNorm()),
              w.kNorm() == null ? null : vector(manager, w.kNorm()));
    }
    finalNorm = vector(manager, LayerWeights.read(weights, TensorNames.FINAL_NORM, f.hidden()));
    boolean tied = f.tiedEmbeddings() || !weights.contains(TensorNames.LM_HEAD);
    lmHead =
        Tensors.create(
            manager,
            LayerWeights.read(
                weights, tied ? TensorNames.EMBED : TensorNames.LM_HEAD, f.vocab(), f.hidden()),
            new Shape(f.vocab(), f.hidden()));
  }

  /**
   * The linear weights by Hugging Face name, layer by layer in {@link Linear} order: {@code [out,
   * in]}.
   */
  Map<String, NDArray> linearWeights() {
    return linear;
  }

  /**
   * The summed next-token negative log-likelihood of windows {@code tokens [B][T]}, each from an
   * empty cache: {@code -sum_{b, t < T-1} log p(tokens[b][t+1] | tokens[b][..t])}, a float32 scalar
   * in {@code scope}, differentiable w.r.t. the linear weights.
   */
  NDArray nllSum(NDManager scope, int[][] tokens) {
    int batch = tokens.length;
    int count = tokens[0].length;
    int d = f.headDim();
    NDArray x =
        Tensors.create(scope, embedRows(tokens), new Shape(batch, count, f.hidden())); // [B, T, H]
    float[][] cosSin = Rope.tables(f.rope(), d, 0, count);
    NDArray cos =
        Tensors.create(
            scope, cosSin[0], new Shape(count, d)); // [T, d], broadcast over [B, n, T, d]
    NDArray sin = Tensors.create(scope, cosSin[1], new Shape(count, d));
    NDArray mask = Tensors.create(scope, causalMask(count), new Shape(count, count)); // [T, T]
    for (Layer layer : layers) {
      x = decoderLayer(scope, layer, x, cos, sin, mask);
    }
    // The last position predicts nothing that is scored: drop it before the vocabulary projection.
    NDArray scored = rmsNorm(x, finalNorm).split(new long[] {count - 1}, 1).get(0); // [B, T-1, H]
    NDArray logProbs = scored.matMul(transposed(scope, lmHead)).logSoftmax(-1); // [B, T-1, V]
    NDArray targets = scope.create(nextTokens(tokens), new Shape(batch, count - 1, 1));
    return logProbs.gather(targets, -1).sum().neg();
  }

  /** One decoder layer, {@code x [B, T, H] -> [B, T, H]}: attention block, then SwiGLU block. */
  private NDArray decoderLayer(
      NDManager scope, Layer layer, NDArray x, NDArray cos, NDArray sin, NDArray mask) {
    long batch = x.getShape().get(0);
    long count = x.getShape().get(1);
    int d = f.headDim();
    NDArray h = rmsNorm(x, layer.inputNorm); // [B, T, H]
    NDArray q = heads(project(scope, layer, Linear.Q, h), f.heads(), layer.qNorm); // [B, nh, T, d]
    NDArray k =
        heads(project(scope, layer, Linear.K, h), f.kvHeads(), layer.kNorm); // [B, nkv, T, d]
    NDArray v = heads(project(scope, layer, Linear.V, h), f.kvHeads(), null); // [B, nkv, T, d]
    q = rope(q, cos, sin);
    k = rope(k, cos, sin);
    // Grouped-query attention: query head j*g + i reads key/value head j. Broadcasting the
    // [B, nkv, 1, ...] keys over the g queries of a group avoids copying them.
    NDArray q5 =
        q.reshape(batch, f.kvHeads(), f.groupSize(), count, d)
            .mul(1.0 / Math.sqrt(d)); // [B, nkv, g, T, d]
    NDArray raw = q5.matMul(k.expandDims(2).transpose(0, 1, 2, 4, 3)); // [B, nkv, g, T, T]
    NDArray masked = raw.add(mask);
    NDArray p = masked.softmax(-1);
    // Autograd keeps what it needs (p); the T x T arrays it does not need are released now.
    raw.close();
    masked.close();
    NDArray merged =
        p.matMul(v.expandDims(2)) // [B, nkv, g, T, d]
            .reshape(batch, f.heads(), count, d)
            .transpose(0, 2, 1, 3) // [B, T, nh, d]
            .reshape(batch, count, f.qWidth()); // [B, T, nh*d]
    NDArray residual = x.add(project(scope, layer, Linear.O, merged)); // [B, T, H]
    NDArray h2 = rmsNorm(residual, layer.postAttentionNorm);
    NDArray gate = project(scope, layer, Linear.GATE, h2); // [B, T, I]
    NDArray up = project(scope, layer, Linear.UP, h2);
    NDArray act = gate.mul(gate.getNDArrayInternal().sigmoid()).mul(up); // silu(gate) * up
    return residual.add(project(scope, layer, Linear.DOWN, act));
  }

  /** {@code x [B, T, in] -> x W^T (+ b) [B, T, out]}. */
  private static NDArray project(NDManager scope, Layer layer, Linear l, NDArray x) {
    NDArray y = x.matMul(transposed(scope, layer.weight.get(l)));
    NDArray bias = layer.bias.get(l);
    return bias == null ? y : y.add(bias);
  }

  /**
   * {@code [B, T, n*d] -> [B, n, T, d]}, each head RMS-normed first when {@code norm [d]} is given
   * (Qwen3).
   */
  private NDArray heads(NDArray x, int n, NDArray norm) {
    Shape s = x.getShape();
    NDArray split = x.reshape(s.get(0), s.get(1), n, f.headDim());
    if (norm != null) {
      split = rmsNorm(split, norm);
    }
    return split.transpose(0, 2, 1, 3);
  }

  /**
   * Hugging Face RoPE: {@code x * cos + rotate_half(x) * sin}, with {@code rotate_half([x1, x2]) =
   * [-x2, x1]}.
   */
  private NDArray rope(NDArray x, NDArray cos, NDArray sin) {
    NDList halves = x.split(new long[] {f.headDim() / 2}, 3);
    NDArray rotated = halves.get(1).neg().concat(halves.get(0), 3);
    return x.mul(cos).add(rotated.mul(sin));
  }

  /** RMSNorm over the last axis: {@code x / sqrt(mean(x^2) + eps) * w}. */
  private NDArray rmsNorm(NDArray x, NDArray w) {
    NDArray rms = x.square().mean(new int[] {-1}, true).add(f.rmsNormEps()).sqrt();
    return x.div(rms).mul(w);
  }

  /**
   * {@code w^T} as a view owned by {@code scope}: operations put their result in the manager of the
   * array they are called on, and views of parameters must not pile up in the parameters' manager.
   */
  private static NDArray transposed(NDManager scope, NDArray w) {
    NDArray t = w.transpose();
    t.attach(scope);
    return t;
  }

  /**
   * Additive mask {@code [T][T]}: 0 where query i may see key j (j <= i, and i - j < window for a
   * sliding window), -infinity elsewhere.
   */
  private float[] causalMask(int count) {
    int window = f.slidingWindow();
    float[] mask = new float[count * count];
    for (int i = 0; i < count; i++) {
      for (int j = 0; j < count; j++) {
        boolean visible = j <= i && (window <= 0 || i - j < window);
        mask[i * count + j] = visible ? 0f : Float.NEGATIVE_INFINITY;
      }
    }
    return mask;
  }

  /**
   * Token ids {@code [B][T]} to embedding rows {@code [B*T][H]}, read row by row from the weights.
   */
  private float[] embedRows(int[][] tokens) {
    int hidden = f.hidden();
    float[] x = new float[tokens.length * tokens[0].length * hidden];
    int at = 0;
    for (int[] window : tokens) {
      for (int id : window) {
        if (id < 0 || id >= f.vocab()) {
          throw new BadInputException(
              "token id " + id + " is outside the vocabulary [0, " + f.vocab() + ")");
        }
        System.arraycopy(weights.rows(TensorNames.EMBED, id, 1), 0, x, at, hidden);
        at += hidden;
      }
    }
    return x;
  }

  /** The scored targets {@code tokens[b][t + 1]}, {@code [B * (T-1)]}. */
  private static long[] nextTokens(int[][] tokens) {
    int count = tokens[0].length;
    long[] next = new long[tokens.length * (count - 1)];
    for (int b = 0; b < tokens.length; b++) {
      for (int t = 1; t < count; t++) {
        next[b * (count - 1) + t - 1] = tokens[b][t];
      }
    }
    return next;
  }

  private static NDArray vector(NDManager manager, float[] values) {
    return Tensors.create(manager, values, new Shape(values.length));
  }
}
