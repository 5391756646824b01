package llmc.model.train;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import java.util.ArrayList;
import java.util.Collections;
import java.util.EnumMap;
import java.util.EnumSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;
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
 * written in DJL array operations, so that PyTorch's autograd can run it backwards: the model
 * {@link llmc.model.LlamaRuntime} runs, in the same Hugging Face conventions, written for gradients
 * rather than speed. Pruning scores read its gradients ({@code llmc.prune.grad.Gradients});
 * training (distillation) updates its parameters.
 *
 * <p><b>Parameters.</b> The constructor reads every parameter from a {@link Weights} (shapes
 * checked against the family) into float32 arrays of the manager it is given; they live until that
 * manager closes. The groups of {@link Trainable} asked for require gradients (by default only the
 * seven linear weights of every layer), the others are constants. {@link #parameters()} gives the
 * trainable ones by Hugging Face name, {@link #floats(String)} and {@link #current()} read their
 * values back. Everything is float32; no other data type is ever created.
 *
 * <p><b>LoRA.</b> Given a {@link LoRA}, the model trains low-rank adapters instead (Hu et al.,
 * 2021): each targeted linear layer of every decoder layer gets {@code A [r, in]} and {@code B
 * [out, r]}, the forward computes {@code x W^T + (alpha / r) (x A^T) B^T} with {@code W} frozen,
 * and the adapters are the trainable {@link #parameters()} ({@code
 * model.layers.3.mlp.down_proj.lora_A}, {@code ...lora_B}). {@code B} starts at 0, so the untrained
 * model is the base model exactly; {@code A} starts as PEFT's default ({@code init_lora_weights =
 * True}): Kaiming-uniform with {@code a = sqrt(5)}, i.e. uniform in {@code [-1/sqrt(in),
 * 1/sqrt(in)]}, drawn from {@link LoRA#seed()} (the same seed gives the same adapters, and an
 * adapter's values do not depend on which others exist). {@link #current()} gives the merged
 * weights {@code W + (alpha / r) B A} under the linear weights' names and no adapter tensors, so a
 * trained model is evaluated and written as a plain dense one.
 *
 * <p><b>Forward.</b> {@link #forward} and {@link #nllSum} put every array they create (the
 * activations, which autograd keeps until the backward) in the scope they are given: run them in a
 * sub-manager per batch, and close it after the backward. To differentiate, run them inside the
 * engine's {@code GradientCollector} and call its {@code backward} on a scalar; the gradients
 * accumulate in each parameter's {@code getGradient()}. Each window runs from an empty cache
 * (positions 0 to T-1). Not thread-safe.
 *
 * <p>Shapes: B windows, T tokens, H hidden, nh / nkv query / key-value heads, g = nh / nkv, d
 * head_dim, I intermediate, V vocabulary.
 */
public final class DifferentiableLlama {
  /**
   * Groups of parameters that can be made trainable (require gradients); the rest are constants.
   */
  public enum Trainable {
    /** The q, k, v, o, gate, up, down weights of every layer, {@code [out, in]}. */
    LINEAR,
    /** The biases of the linear layers that have one (Qwen2's q, k, v), {@code [out]}. */
    BIASES,
    /**
     * The RMSNorm weights: each layer's input and post-attention norms {@code [H]}, Qwen3's q and k
     * norms {@code [d]}, and the final norm {@code [H]}.
     */
    NORMS,
    /**
     * The token embedding {@code [V, H]}; in a model whose lm_head is the embedding (tied, or no
     * {@code lm_head.weight} stored), the one matrix both use.
     */
    EMBEDDING,
    /**
     * The lm_head {@code [V, H]}; in a tied model the embedding, which then trains for both uses
     * (as {@link #EMBEDDING}).
     */
    LM_HEAD
  }

  /**
   * What {@link #forward} computes, every array in the scope passed to it.
   *
   * @param logits {@code [B, T, V]}: position t's scores for token t + 1
   * @param hidden the output of each decoder layer, in layer order, {@code [B, T, H]} each (the
   *     residual stream after the layer, before the final norm: the last one, RMS-normed and
   *     projected by the lm_head, gives the logits); empty unless asked for
   */
  public record Forward(NDArray logits, List<NDArray> hidden) {}

  /**
   * Low-rank adapters on the linear layers {@code targets} of every decoder layer.
   *
   * @param rank r >= 1, the adapters' inner dimension
   * @param alpha the scale's numerator: the update is {@code (alpha / r) B A}; above 0
   * @param targets the linear layers that get adapters, at least one
   * @param seed draws {@code A}'s initial values
   */
  public record LoRA(int rank, double alpha, Set<Linear> targets, long seed) {
    public LoRA {
      if (rank < 1) {
        throw new IllegalArgumentException("LoRA rank " + rank + ": give at least 1");
      }
      if (!(alpha > 0) || Double.isInfinite(alpha)) {
        throw new IllegalArgumentException("LoRA alpha " + alpha + ": give a number above 0");
      }
      if (targets == null || targets.isEmpty()) {
        throw new IllegalArgumentException("LoRA needs at least one target linear layer");
      }
      targets = Collections.unmodifiableSet(EnumSet.copyOf(targets));
    }

    /** Rank {@code rank} on all seven linear layers with {@code alpha = 2 rank}. */
    public static LoRA of(int rank, long seed) {
      return new LoRA(rank, 2.0 * rank, EnumSet.allOf(Linear.class), seed);
    }

    /** The update's scale {@code alpha / r}. */
    public double scale() {
      return alpha / rank;
    }

    /** The adapter names of a linear layer: {@code <module>.lora_A} or {@code .lora_B}. */
    public static String aName(Linear l, int layer) {
      return l.moduleName(layer) + ".lora_A";
    }

    public static String bName(Linear l, int layer) {
      return l.moduleName(layer) + ".lora_B";
    }

    /** Parameters of the adapters on a model: {@code r (in + out)} per targeted linear layer. */
    public long parameters(LlamaFamily f) {
      long perLayer = 0;
      for (Linear l : targets) {
        perLayer += (long) rank * (l.inFeatures(f) + l.outFeatures(f));
      }
      return perLayer * f.layers();
    }
  }

  /** One linear layer's adapter: {@code A [r, in]}, {@code B [out, r]}, trainable. */
  private record Adapter(NDArray a, NDArray b) {}

  /** A targeted linear layer's frozen weight and its adapter, for {@link #current()}. */
  private record Merged(NDArray weight, Adapter adapter) {}

  /** The parameters of one decoder layer as arrays. */
  private record Layer(
      Map<Linear, NDArray> weight, // [out, in]
      Map<Linear, Adapter> adapters, // LoRA's targets only
      Map<Linear, NDArray> bias, // [out], only those present (Qwen2 q/k/v)
      NDArray inputNorm, // [H]
      NDArray postAttentionNorm, // [H]
      NDArray qNorm, // [d], Qwen3 only, else null
      NDArray kNorm) {} // [d], Qwen3 only, else null

  private final LlamaFamily f;
  private final Weights weights;
  private final Set<Trainable> trainable;
  private final LoRA lora; // null: none
  private final float scale; // alpha / r
  private final boolean tied;
  private final Layer[] layers;
  private final NDArray finalNorm; // [H]
  private final NDArray lmHead; // [V, H] (the embedding when tied)
  private final NDArray embedding; // [V, H] when it trains, else null: rows read from weights
  private final Map<String, NDArray> parameters = new LinkedHashMap<>(); // HF name -> trainable
  private final Map<String, Merged> merged = new LinkedHashMap<>(); // weight name -> with adapter

  /**
   * The model of {@code weights} with the linear weights trainable ({@link Trainable#LINEAR}), its
   * parameters in {@code manager}.
   */
  public DifferentiableLlama(LlamaFamily f, Weights weights, NDManager manager) {
    this(f, weights, manager, EnumSet.of(Trainable.LINEAR));
  }

  /**
   * The model of {@code weights}, its parameters in {@code manager}; those of the groups in {@code
   * trainable} require gradients (none for an empty set: a model that is only run, e.g. a teacher).
   *
   * @throws BadInputException when a tensor the family implies is missing or has another shape
   */
  public DifferentiableLlama(
      LlamaFamily f, Weights weights, NDManager manager, Set<Trainable> trainable) {
    this(f, weights, manager, trainable, null);
  }

  /**
   * The model of {@code weights} with LoRA adapters {@code lora} as its only trainable parameters,
   * everything else frozen.
   */
  public DifferentiableLlama(LlamaFamily f, Weights weights, NDManager manager, LoRA lora) {
    this(f, weights, manager, EnumSet.noneOf(Trainable.class), lora);
  }

  /**
   * The model of {@code weights}, its parameters in {@code manager}; those of the groups in {@code
   * trainable} require gradients, and with {@code lora} (or null) its adapters too. LoRA replaces
   * training the linear weights: {@link Trainable#LINEAR} cannot be combined with it.
   *
   * @throws BadInputException when a tensor the family implies is missing or has another shape
   * @throws IllegalArgumentException for {@link Trainable#LINEAR} with {@code lora}
   */
  public DifferentiableLlama(
      LlamaFamily f, Weights weights, NDManager manager, Set<Trainable> trainable, LoRA lora) {
    if (lora != null && trainable.contains(Trainable.LINEAR)) {
      throw new IllegalArgumentException(
          "LoRA trains adapters instead of the linear weights: leave Trainable.LINEAR out");
    }
    this.f = f;
    this.weights = weights;
    this.lora = lora;
    this.scale = lora == null ? 0f : (float) lora.scale();
    this.trainable =
        Collections.unmodifiableSet(
            trainable.isEmpty() ? EnumSet.noneOf(Trainable.class) : EnumSet.copyOf(trainable));
    boolean tied = f.tiedEmbeddings() || !weights.contains(TensorNames.LM_HEAD);
    this.tied = tied;
    // One stream per (layer, linear layer) in a fixed order, used only where targeted.
    SplittableRandom random = lora == null ? null : new SplittableRandom(lora.seed());
    boolean trainEmbedding =
        trainable.contains(Trainable.EMBEDDING) || (tied && trainable.contains(Trainable.LM_HEAD));
    NDArray embed = null;
    if (tied || trainEmbedding) {
      embed =
          Tensors.create(
              manager,
              LayerWeights.read(weights, TensorNames.EMBED, f.vocab(), f.hidden()),
              new Shape(f.vocab(), f.hidden()));
      parameter(trainEmbedding, TensorNames.EMBED, embed);
    }
    this.embedding = trainEmbedding ? embed : null;
    this.layers = new Layer[f.layers()];
    boolean trainNorms = trainable.contains(Trainable.NORMS);
    for (int i = 0; i < f.layers(); i++) {
      LayerWeights w = LayerWeights.load(weights, f, i);
      Map<Linear, NDArray> weight = new EnumMap<>(Linear.class);
      Map<Linear, NDArray> bias = new EnumMap<>(Linear.class);
      Map<Linear, Adapter> adapters = new EnumMap<>(Linear.class);
      for (Linear l : Linear.values()) {
        NDArray array =
            Tensors.create(
                manager, w.weight().get(l), new Shape(l.outFeatures(f), l.inFeatures(f)));
        weight.put(l, parameter(trainable.contains(Trainable.LINEAR), l.weightName(i), array));
        SplittableRandom stream = random == null ? null : random.split();
        if (lora != null && lora.targets().contains(l)) {
          Adapter adapter = adapter(manager, l, lora.rank(), stream);
          parameter(true, LoRA.aName(l, i), adapter.a());
          parameter(true, LoRA.bName(l, i), adapter.b());
          adapters.put(l, adapter);
          merged.put(l.weightName(i), new Merged(array, adapter));
        }
        if (w.bias().containsKey(l)) {
          NDArray b = Tensors.create(manager, w.bias().get(l), new Shape(l.outFeatures(f)));
          bias.put(l, parameter(trainable.contains(Trainable.BIASES), l.biasName(i), b));
        }
      }
      NDArray qNorm =
          w.qNorm() == null
              ? null
              : parameter(trainNorms, TensorNames.qNorm(i), vector(manager, w.qNorm()));
      NDArray kNorm =
          w.kNorm() == null
              ? null
              : parameter(trainNorms, TensorNames.kNorm(i), vector(manager, w.kNorm()));
      NDArray inputNorm =
          parameter(trainNorms, TensorNames.inputNorm(i), vector(manager, w.inputNorm()));
      NDArray postAttentionNorm =
          parameter(
              trainNorms, TensorNames.postAttentionNorm(i), vector(manager, w.postAttentionNorm()));
      layers[i] = new Layer(weight, adapters, bias, inputNorm, postAttentionNorm, qNorm, kNorm);
    }
    finalNorm =
        parameter(
            trainNorms,
            TensorNames.FINAL_NORM,
            vector(manager, LayerWeights.read(weights, TensorNames.FINAL_NORM, f.hidden())));
    lmHead =
        tied
            ? embed
            : parameter(
                trainable.contains(Trainable.LM_HEAD),
                TensorNames.LM_HEAD,
                Tensors.create(
                    manager,
                    LayerWeights.read(weights, TensorNames.LM_HEAD, f.vocab(), f.hidden()),
                    new Shape(f.vocab(), f.hidden())));
  }

  /**
   * A fresh adapter for {@code l}: {@code A [r, in]} Kaiming-uniform with {@code a = sqrt(5)}
   * (uniform in {@code +-1/sqrt(in)}, as PEFT and {@code torch.nn.Linear}) from {@code random},
   * {@code B [out, r]} zeros.
   */
  private Adapter adapter(NDManager manager, Linear l, int rank, SplittableRandom random) {
    int in = l.inFeatures(f);
    double bound = 1 / Math.sqrt(in);
    float[] a = new float[rank * in];
    for (int j = 0; j < a.length; j++) {
      a[j] = (float) ((2 * random.nextDouble() - 1) * bound);
    }
    return new Adapter(
        Tensors.create(manager, a, new Shape(rank, in)),
        Tensors.create(
            manager, new float[l.outFeatures(f) * rank], new Shape(l.outFeatures(f), rank)));
  }

  /** {@code array}, made trainable under {@code name} when {@code train}. */
  private NDArray parameter(boolean train, String name, NDArray array) {
    if (train) {
      array.setRequiresGradient(true);
      parameters.put(name, array);
    }
    return array;
  }

  /** The architecture and hyperparameters the model was built for. */
  public LlamaFamily family() {
    return f;
  }

  /** The groups of parameters that require gradients (besides LoRA's adapters). */
  public Set<Trainable> trainable() {
    return trainable;
  }

  /** The adapters trained, or null when none. */
  public LoRA lora() {
    return lora;
  }

  /**
   * Parameters of the model itself, as training every group of {@link Trainable} would train: the
   * embedding (once when the lm_head is tied to it), the linear weights and biases, the norms and
   * the lm_head; adapters not counted.
   */
  public long modelParameters() {
    long count = (long) f.vocab() * f.hidden() + finalNorm.size();
    if (!tied) {
      count += lmHead.size();
    }
    for (Layer layer : layers) {
      for (NDArray a : layer.weight.values()) {
        count += a.size();
      }
      for (NDArray a : layer.bias.values()) {
        count += a.size();
      }
      count += layer.inputNorm.size() + layer.postAttentionNorm.size();
      count += layer.qNorm == null ? 0 : layer.qNorm.size() + layer.kNorm.size();
    }
    return count;
  }

  /**
   * The trainable parameters by Hugging Face name, each its float32 array (shaped as stored, e.g.
   * {@code [out, in]}), not a copy: the embedding, then layer by layer the linear weights in {@link
   * Linear} order with their biases, and the layer's q, k, input and post-attention norms, then the
   * final norm and the lm_head, each where trainable. With the default, the linear weights, layer
   * by layer in {@link Linear} order. With LoRA, each targeted linear layer's {@code lora_A [r,
   * in]} and {@code lora_B [out, r]} where its weight would be.
   */
  public Map<String, NDArray> parameters() {
    return Collections.unmodifiableMap(parameters);
  }

  /**
   * The current values of a trainable parameter by Hugging Face name, row-major like {@link
   * Weights#floats}: a copy.
   *
   * @throws IllegalArgumentException when {@code hfName} is not a trainable parameter
   */
  public float[] floats(String hfName) {
    NDArray p = parameters.get(hfName);
    if (p == null) {
      throw new IllegalArgumentException(
          "'"
              + hfName
              + "' is not a trainable parameter of this model (trainable: "
              + trainable
              + "); current() reads every tensor");
    }
    float[] out = new float[Math.toIntExact(p.size())];
    Tensors.read(p, out);
    return out;
  }

  /**
   * The model as it is now, as {@link Weights}: the trainable parameters read from their arrays
   * when asked for (so after training, the trained values), with LoRA each targeted linear weight
   * merged, {@code W + (alpha / r) B A} (computed in float32 when read), and no adapter tensors;
   * every other tensor from the weights given to the constructor. Valid while the parameters'
   * manager is open.
   */
  public Weights current() {
    return new Weights() {
      @Override
      public boolean contains(String name) {
        return own(name) || weights.contains(name);
      }

      @Override
      public long[] shape(String name) {
        return own(name) ? parameters.get(name).getShape().getShape() : weights.shape(name);
      }

      @Override
      public float[] floats(String name) {
        Merged m = merged.get(name);
        if (m != null) {
          return merge(m);
        }
        return own(name) ? DifferentiableLlama.this.floats(name) : weights.floats(name);
      }

      @Override
      public float[] rows(String name, long fromRow, int rows) {
        return own(name) || merged.containsKey(name)
            ? Weights.super.rows(name, fromRow, rows)
            : weights.rows(name, fromRow, rows);
      }
    };
  }

  /** A trainable tensor of the model itself (not an adapter). */
  private boolean own(String name) {
    return parameters.containsKey(name) && !name.endsWith(".lora_A") && !name.endsWith(".lora_B");
  }

  /** {@code W + scale B A}, row-major {@code [out][in]}. */
  private float[] merge(Merged m) {
    float[] out = new float[Math.toIntExact(m.weight.size())];
    try (NDArray update = m.adapter.b().matMul(m.adapter.a())) {
      update.muli(scale).addi(m.weight);
      Tensors.read(update, out);
    }
    return out;
  }

  /** {@link #forward(NDManager, int[][], boolean)} without the layers' outputs. */
  public Forward forward(NDManager scope, int[][] tokens) {
    return forward(scope, tokens, false);
  }

  /**
   * The forward of windows {@code tokens [B][T]}, each from an empty cache: the logits {@code [B,
   * T, V]} and, when {@code hidden}, every decoder layer's output {@code [B, T, H]}, float32 arrays
   * in {@code scope}, differentiable w.r.t. the trainable parameters.
   *
   * @param tokens B >= 1 windows of the same length T >= 1
   * @throws BadInputException when a token id is outside the vocabulary
   */
  public Forward forward(NDManager scope, int[][] tokens, boolean hidden) {
    checkWindows(tokens);
    int batch = tokens.length;
    int count = tokens[0].length;
    int d = f.headDim();
    NDArray x = embed(scope, tokens); // [B, T, H]
    float[][] cosSin = Rope.tables(f.rope(), d, 0, count);
    NDArray cos =
        Tensors.create(
            scope, cosSin[0], new Shape(count, d)); // [T, d], broadcast over [B, n, T, d]
    NDArray sin = Tensors.create(scope, cosSin[1], new Shape(count, d));
    NDArray mask = Tensors.create(scope, causalMask(count), new Shape(count, count)); // [T, T]
    List<NDArray> outputs = new ArrayList<>();
    for (Layer layer : layers) {
      // Each layer's temporaries live in their own manager, closed once the layer's output is
      // out: closing a handle frees what autograd did not save (all of it for a teacher, which
      // records nothing), so a forward holds one layer's intermediates, not the whole model's.
      // Operations put their result in the manager of the array they are called on, hence x
      // moves in; a layer output kept for the caller comes back to scope when the layer closes.
      try (NDManager layerScope = scope.newSubManager()) {
        if (hidden && !outputs.isEmpty()) {
          x.tempAttach(layerScope);
        } else {
          x.attach(layerScope);
        }
        NDArray y = decoderLayer(layerScope, layer, x, cos, sin, mask);
        y.attach(scope);
        x = y;
      }
      if (hidden) {
        outputs.add(x);
      }
    }
    NDArray logits = rmsNorm(x, finalNorm).matMul(transposed(scope, lmHead)); // [B, T, V]
    return new Forward(logits, List.copyOf(outputs));
  }

  /**
   * The summed next-token negative log-likelihood of windows {@code tokens [B][T]}, each from an
   * empty cache: {@code -sum_{b, t < T-1} log p(tokens[b][t+1] | tokens[b][..t])}, a float32 scalar
   * in {@code scope}, differentiable w.r.t. the trainable parameters. Built on {@link #forward}.
   *
   * @param tokens B >= 1 windows of the same length T >= 2
   * @throws BadInputException when a token id is outside the vocabulary
   */
  public NDArray nllSum(NDManager scope, int[][] tokens) {
    checkWindows(tokens);
    int batch = tokens.length;
    int count = tokens[0].length;
    if (count < 2) {
      throw new IllegalArgumentException("windows of " + count + " token score nothing");
    }
    NDArray logits = forward(scope, tokens).logits(); // [B, T, V]
    // The last position predicts nothing that is scored.
    NDArray scored = logits.split(new long[] {count - 1}, 1).get(0); // [B, T-1, V]
    NDArray logProbs = scored.logSoftmax(-1); // [B, T-1, V]
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
            .mul(Tensors.scalar(scope, (float) (1.0 / Math.sqrt(d)))); // [B, nkv, g, T, d]
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

  /**
   * {@code x [B, T, in] -> x W^T (+ b) [B, T, out]}, with an adapter {@code x W^T + scale (x A^T)
   * B^T (+ b)}.
   */
  private NDArray project(NDManager scope, Layer layer, Linear l, NDArray x) {
    NDArray y = x.matMul(transposed(scope, layer.weight.get(l)));
    Adapter adapter = layer.adapters.get(l);
    if (adapter != null) {
      NDArray low = x.matMul(transposed(scope, adapter.a())); // [B, T, r]
      y = y.add(low.matMul(transposed(scope, adapter.b())).mul(Tensors.scalar(scope, scale)));
    }
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

  /** At least one window, all of the same length of at least one token, every id a token's. */
  private void checkWindows(int[][] tokens) {
    if (tokens.length == 0 || tokens[0].length == 0) {
      throw new IllegalArgumentException("no tokens to run");
    }
    for (int[] window : tokens) {
      if (window.length != tokens[0].length) {
        throw new IllegalArgumentException(
            "windows of a batch must have the same length; got "
                + window.length
                + " and "
                + tokens[0].length);
      }
      for (int id : window) {
        if (id < 0 || id >= f.vocab()) {
          throw new BadInputException(
              "token id " + id + " is outside the vocabulary [0, " + f.vocab() + ")");
        }
      }
    }
  }

  /**
   * Token ids {@code [B][T]} to embeddings {@code [B, T, H]} in {@code scope}: rows read from the
   * weights, or, when the embedding trains, looked up in its array (differentiably).
   */
  private NDArray embed(NDManager scope, int[][] tokens) {
    int batch = tokens.length;
    int count = tokens[0].length;
    if (embedding == null) {
      return Tensors.create(scope, embedRows(tokens), new Shape(batch, count, f.hidden()));
    }
    long[] ids = new long[batch * count];
    for (int b = 0; b < batch; b++) {
      for (int t = 0; t < count; t++) {
        ids[b * count + t] = tokens[b][t];
      }
    }
    // gather, not an index: the backward of PyTorch's CPU index (index_put_ with accumulate) adds
    // the rows of repeated tokens with atomic float adds across threads, in no fixed order, so two
    // runs with more than one thread differ; gather's backward (scatter_add) adds in a fixed order.
    NDArray index =
        scope.create(ids, new Shape(ids.length, 1)).broadcast(ids.length, f.hidden()); // [B*T, H]
    NDArray rows = embedding.gather(index, 0); // [B*T, H]
    rows.attach(scope);
    return rows.reshape(batch, count, f.hidden());
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
