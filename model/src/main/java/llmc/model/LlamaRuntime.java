package llmc.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import llmc.formats.BadInputException;
import llmc.model.kernels.Attention;
import llmc.model.kernels.Gemm;
import llmc.model.kernels.Ops;
import llmc.model.kernels.Tensors;
import llmc.model.kernels.WeightMatrix;

/**
 * The Llama-family forward, one decoder layer at a time, on Java kernels ({@code
 * llmc.model.kernels}: the products on a Vector-API GEMM, measured faster here than the engine's;
 * see docs/performance.md); activations cross the API as DJL arrays, and the head runs on DJL:
 * {@code embed -> runLayer(0..L-1) -> logits}. Layers are loaded from {@link Weights} when first
 * used; with {@code keepLayers} they stay (evaluation), without it the caller closes them
 * (layer-sequential compression, where memory is one layer at a time).
 *
 * <p>Shapes: B windows (batch), T tokens, H hidden, nh/nkv heads, d head_dim, V vocabulary.
 */
public final class LlamaRuntime implements AutoCloseable {
  private final LlamaFamily family;
  private final Weights weights;
  private NDManager manager; // DJL, started on first use (the layers themselves do not need it)
  private final boolean keepLayers;
  private final long keepBytes; // layers are kept while their weights take at most this much
  private long keptBytes;
  private final DecoderLayer[] layers;
  private float[] finalNorm; // [H]
  private NDArray lmHeadT; // [H, V]
  private WeightMatrix head; // [V][H], the same as stored (generation)
  private final String embedName;

  public LlamaRuntime(LlamaFamily family, Weights weights, boolean keepLayers) {
    this(family, weights, keepLayers, Long.MAX_VALUE);
  }

  /**
   * A runtime that keeps its layers while their weights (as held: BF16, codes or float32) take at
   * most {@code keepBytes}; the layers beyond are loaded for each use and let go (a model larger
   * than memory runs one layer at a time).
   */
  public LlamaRuntime(LlamaFamily family, Weights weights, boolean keepLayers, long keepBytes) {
    this.family = family;
    this.weights = weights;
    this.keepLayers = keepLayers;
    this.keepBytes = keepBytes;
    this.layers = new DecoderLayer[family.layers()];
    this.embedName = TensorNames.EMBED;
    LayerWeights.check(weights, embedName, family.vocab(), family.hidden());
  }

  public LlamaFamily family() {
    return family;
  }

  /** Where the parameters come from (a compression pipeline reads the original matrices here). */
  public Weights weights() {
    return weights;
  }

  public synchronized NDManager manager() {
    if (manager == null) {
      manager = Engines.newManager();
    }
    return manager;
  }

  /**
   * Token ids {@code [B][T]} to hidden states {@code [B, T, H]}, read row by row from the weights.
   */
  public NDArray embed(NDManager target, int[][] tokens) {
    return Tensors.create(
        target, embedRows(tokens), new Shape(tokens.length, tokens[0].length, family.hidden()));
  }

  /** Token ids {@code [B][T]} to hidden states {@code [B*T][H]}. */
  public float[] embedRows(int[][] tokens) {
    int batch = tokens.length;
    int count = tokens[0].length;
    int hidden = family.hidden();
    float[] x = new float[batch * count * hidden];
    for (int b = 0; b < batch; b++) {
      for (int t = 0; t < count; t++) {
        int id = tokens[b][t];
        if (id < 0 || id >= family.vocab()) {
          throw new BadInputException(
              "token id " + id + " is outside the vocabulary [0, " + family.vocab() + ")");
        }
        float[] row = weights.rows(embedName, id, 1);
        System.arraycopy(row, 0, x, (b * count + t) * hidden, hidden);
      }
    }
    return x;
  }

  /**
   * Layer i, loaded on first use. A layer the runtime does not keep ({@link #keeps}) belongs to the
   * caller, who closes it.
   */
  public DecoderLayer layer(int i) {
    if (layers[i] != null) {
      return layers[i];
    }
    DecoderLayer layer = new DecoderLayer(family, weights, i);
    if (keepLayers && keptBytes + layer.weightBytes() <= keepBytes) {
      layers[i] = layer;
      keptBytes += layer.weightBytes();
    }
    return layer;
  }

  /** Whether layer i stays loaded once {@link #layer} loaded it. */
  public boolean keeps(DecoderLayer layer) {
    return layers[layer.index] == layer;
  }

  /** Whether every layer is loaded and kept (after {@link #preload}). */
  public boolean keepsAllLayers() {
    for (DecoderLayer layer : layers) {
      if (layer == null) {
        return false;
      }
    }
    return true;
  }

  /**
   * Runs one decoder layer: {@code x [B, T, H] -> [B, T, H]} for the T tokens at positions {@code
   * [start, start + T)}. With a cache, keys and values of earlier positions come from it and this
   * call's are appended. The result lives in {@code x}'s manager.
   */
  public NDArray runLayer(
      DecoderLayer layer, NDArray x, int start, KvCache cache, CaptureHook hook) {
    Shape shape = x.getShape();
    int batch = (int) shape.get(0);
    int count = (int) shape.get(1);
    float[] out = runLayer(layer, read(x), batch, count, start, cache, hook);
    return Tensors.create(x.getManager(), out, shape);
  }

  /**
   * {@link #runLayer(DecoderLayer, NDArray, int, KvCache, CaptureHook)} on Java arrays: {@code x
   * [B*T][H]} to a new {@code [B*T][H]}.
   */
  public float[] runLayer(
      DecoderLayer layer,
      float[] x,
      int batch,
      int count,
      int start,
      KvCache cache,
      CaptureHook hook) {
    int rows = batch * count;
    // Attention block: x + o(attention(rope(q), rope(k), v)) on RMSNorm(x).
    float[] h = rmsNorm(x, layer.inputNorm, rows);
    hook.beforeLinear(layer, Linear.Input.ATTN_IN, h, rows);
    float[] merged = attend(layer, h, batch, count, start, cache, null);
    hook.beforeLinear(layer, Linear.Input.ATTN_OUT, merged, rows);
    float[] residual = layer.project(Linear.O, merged, rows);
    Ops.addInPlace(residual, x, rows * family.hidden());
    // MLP block: residual + down(silu(gate(h2)) * up(h2)) on RMSNorm(residual).
    float[] h2 = rmsNorm(residual, layer.postAttentionNorm, rows);
    hook.beforeLinear(layer, Linear.Input.MLP_IN, h2, rows);
    float[] act = swiGlu(layer, h2, rows, null);
    hook.beforeLinear(layer, Linear.Input.MLP_OUT, act, rows);
    float[] out = layer.project(Linear.DOWN, act, rows);
    Ops.addInPlace(out, residual, rows * family.hidden());
    return out;
  }

  // The same layer in stages, for layer-sequential compression: each stage's result is the
  // activation one group of linear layers reads, so a pipeline can compress that group before the
  // next stage uses it. Activations are row-major {@code [rows][width]} with rows = B * T (here
  // one window at a time, positions from 0); every stage returns a new array.

  /** {@code x [rows][H] -> RMSNorm(x)}: what q, k and v read. */
  public float[] attentionInput(DecoderLayer layer, float[] x, int rows) {
    return rmsNorm(x, layer.inputNorm, rows);
  }

  /**
   * {@code x [B*T][H] -> [B*T][nh * d]}: the attention heads merged, what o reads; written into
   * {@code into} (or a new array when null).
   */
  public float[] attentionOutput(
      DecoderLayer layer, float[] x, int batch, int count, float[] into) {
    return attend(layer, rmsNorm(x, layer.inputNorm, batch * count), batch, count, 0, null, into);
  }

  /**
   * {@code x += o(merged)}, in place: x becomes the residual stream after attention, {@code
   * [rows][H]}.
   */
  public float[] afterAttention(DecoderLayer layer, float[] x, float[] merged, int rows) {
    return layer.projectAdd(Linear.O, merged, rows, x);
  }

  /** {@code residual -> RMSNorm(residual)}: what gate and up read. */
  public float[] mlpInput(DecoderLayer layer, float[] residual, int rows) {
    return rmsNorm(residual, layer.postAttentionNorm, rows);
  }

  /**
   * {@code residual -> silu(gate(h2)) * up(h2)} with h2 = RMSNorm(residual): what down reads,
   * {@code [rows][I]}, written into {@code into} (or a new array when null).
   */
  public float[] mlpActivation(DecoderLayer layer, float[] residual, int rows, float[] into) {
    return swiGlu(layer, rmsNorm(residual, layer.postAttentionNorm, rows), rows, into);
  }

  /**
   * {@code residual += down(act)}, in place: the residual becomes the layer's output, {@code
   * [rows][H]}.
   */
  public float[] afterMlp(DecoderLayer layer, float[] residual, float[] act, int rows) {
    return layer.projectAdd(Linear.DOWN, act, rows, residual);
  }

  private static float[] read(NDArray x) {
    float[] values = new float[Math.toIntExact(x.size())];
    Tensors.read(x, values);
    return values;
  }

  /** Rows of an activation {@code [B, T, width]}: {@code B * T}. */
  private static int rows(NDArray x) {
    return (int) (x.getShape().get(0) * x.getShape().get(1));
  }

  /** {@code values} as an array {@code [B, T, width]} with {@code x}'s B and T, in x's manager. */
  private static NDArray like(NDArray x, float[] values, int width) {
    return Tensors.create(
        x.getManager(), values, new Shape(x.getShape().get(0), x.getShape().get(1), width));
  }

  /** Told the keys (after RoPE) and values of every attention step, before any rounding. */
  public interface KeyValueObserver {
    /** {@code k} and {@code v} are {@code [rows][kvHeads * headDim]}; read them, keep nothing. */
    void observe(int layer, float[] k, float[] v, int rows);
  }

  private KeyValueObserver keysValues;

  /** Sets (or, with null, removes) the observer of every layer's keys and values. */
  public void observeKeysValues(KeyValueObserver observer) {
    this.keysValues = observer;
  }

  /** {@code h [B*T][H]} (normed) to the merged attention heads {@code [B*T][nh * d]}. */
  private float[] attend(
      DecoderLayer layer, float[] h, int batch, int count, int start, KvCache cache, float[] into) {
    int rows = batch * count;
    int d = family.headDim();
    float eps = (float) family.rmsNormEps();
    float[] q = layer.project(Linear.Q, h, rows); // [B*T][nh*d]
    float[] k = layer.project(Linear.K, h, rows); // [B*T][nkv*d]
    float[] v = layer.project(Linear.V, h, rows);
    if (layer.qNorm != null) {
      Ops.rmsNorm(q, layer.qNorm, eps, q, rows * family.heads(), d);
      Ops.rmsNorm(k, layer.kNorm, eps, k, rows * family.kvHeads(), d);
    }
    float[][] cosSin = ropeCache.get(start, count);
    Ops.rope(q, batch, count, family.heads(), d, cosSin[0], cosSin[1]);
    Ops.rope(k, batch, count, family.kvHeads(), d, cosSin[0], cosSin[1]);
    if (keysValues != null) {
      keysValues.observe(layer.index, k, v, rows);
    }
    if (layer.kvCache != null) { // what the cache holds: 8-bit keys (after RoPE) and values
      layer.kvCache.apply(k, v, rows, family.kvHeads(), d);
    }
    Attention.KeyValues kv =
        cache == null
            ? new Attention.KeyValues(k, v, count * family.kvWidth(), count)
            : cache.append(layer.index, k, v, batch, count, family.kvWidth());
    return Attention.causal(
        q,
        kv,
        batch,
        count,
        start,
        family.heads(),
        family.kvHeads(),
        d,
        family.slidingWindow(),
        into);
  }

  /**
   * SwiGLU: {@code silu(gate(h)) * up(h)}, {@code [B*T][I]}, into {@code into} (or a new array when
   * null).
   */
  private float[] swiGlu(DecoderLayer layer, float[] h, int rows, float[] into) {
    float[] gate =
        into == null
            ? layer.project(Linear.GATE, h, rows)
            : layer.projectInto(Linear.GATE, h, rows, into);
    float[] up = layer.project(Linear.UP, h, rows);
    Ops.siluMul(gate, up, rows * family.intermediate());
    return gate;
  }

  /** RMSNorm of each row of {@code x [rows][H]}: a new array. */
  private float[] rmsNorm(float[] x, float[] w, int rows) {
    float[] out = new float[x.length];
    Ops.rmsNorm(x, w, (float) family.rmsNormEps(), out, rows, family.hidden());
    return out;
  }

  /** Loads every layer and the head now (evaluation and generation keep them all). */
  public void preload() {
    if (!keepLayers) {
      throw new IllegalStateException("preload() needs a runtime that keeps its layers");
    }
    for (int i = 0; i < family.layers(); i++) {
      DecoderLayer layer = layer(i);
      if (!keeps(layer)) {
        layer.close(); // beyond what the runtime keeps: loaded again for each use
        break;
      }
    }
    if (javaHead()) {
      loadFinalNorm();
      headMatrix();
    } else {
      loadHead();
    }
  }

  private void loadHead() {
    if (lmHeadT == null) {
      loadFinalNorm();
      // [V][H] as held (BF16, codes or float32) to float32 [H][V]: one float32 copy at a time
      int hidden = family.hidden();
      int vocab = family.vocab();
      float[] t = new float[Math.multiplyExact(hidden, vocab)];
      float[] tile = new float[64 * 64];
      WeightMatrix head = headMatrix();
      for (int j0 = 0; j0 < vocab; j0 += 64) {
        for (int p0 = 0; p0 < hidden; p0 += 64) {
          int width = Math.min(64, vocab - j0);
          int kc = Math.min(64, hidden - p0);
          head.packTransposed(p0, kc, j0, width, tile);
          for (int p = 0; p < kc; p++) {
            System.arraycopy(tile, p * width, t, (p0 + p) * vocab + j0, width);
          }
        }
      }
      lmHeadT = manager().create(t, new Shape(family.hidden(), family.vocab()));
    }
  }

  private void loadFinalNorm() {
    if (finalNorm == null) {
      finalNorm = LayerWeights.read(weights, TensorNames.FINAL_NORM, family.hidden());
    }
  }

  /** lm_head {@code [V][H]} (the embedding when tied), as held. */
  private synchronized WeightMatrix headMatrix() {
    if (head == null) {
      LayerWeights.check(weights, headName(), family.vocab(), family.hidden());
      head = weights.matrix(headName());
    }
    return head;
  }

  private String headName() {
    boolean tied = family.tiedEmbeddings() || !weights.contains(TensorNames.LM_HEAD);
    return tied ? embedName : TensorNames.LM_HEAD;
  }

  /**
   * Runs {@code tokens} (one sequence) at positions {@code [start, start + T)} through every layer,
   * reading and extending {@code cache}: the last layer's output {@code [T][H]} (before the final
   * norm). Every row is computed as it would be alone: the kernels sum each element in the same
   * order whatever the number of rows, so a row's bits do not depend on how many tokens ran with it
   * (speculative decoding relies on this).
   */
  public float[] decode(int[] tokens, int start, KvCache cache) {
    float[] x = embedRows(new int[][] {tokens});
    for (int i = 0; i < family.layers(); i++) {
      DecoderLayer layer = layer(i);
      x = runLayer(layer, x, 1, tokens.length, start, cache, CaptureHook.NONE);
      if (!keeps(layer)) {
        layer.close();
      }
    }
    return x;
  }

  /**
   * Final RMSNorm and lm_head on Java arrays: rows {@code [from, from + rows)} of {@code x [*][H]}
   * to logits {@code [rows][V]}; like {@link #decode}, each row's bits are those it gets alone.
   */
  public float[] logitsRows(float[] x, int from, int rows) {
    loadFinalNorm();
    synchronized (this) {
      headMatrix();
    }
    int hidden = family.hidden();
    float[] normed = new float[rows * hidden];
    Ops.rmsNorm(
        java.util.Arrays.copyOfRange(x, from * hidden, (from + rows) * hidden),
        finalNorm,
        (float) family.rmsNormEps(),
        normed,
        rows,
        hidden);
    float[] logits = new float[Math.multiplyExact(rows, family.vocab())];
    Gemm.parallelMultiplyAdd(1f, normed, 0, hidden, 1, head, logits, 0, family.vocab(), rows);
    return logits;
  }

  /**
   * Whether a float32 copy of lm_head would not fit beside what the runtime keeps: then the head is
   * multiplied as it is held (BF16 or codes) on the Java kernels, not by the engine.
   */
  private boolean javaHead() {
    return 4L * family.hidden() * family.vocab() > keepBytes;
  }

  /** Final RMSNorm and lm_head: {@code [B, T, H] -> [B, T, V]}, in x's manager. */
  public NDArray logits(NDArray x) {
    if (javaHead()) {
      Shape shape = x.getShape();
      float[] logits = logitsRows(read(x), 0, rows(x));
      return x.getManager().create(logits, new Shape(shape.get(0), shape.get(1), family.vocab()));
    }
    loadHead();
    NDManager owner = x.getManager();
    try (NDManager scope = owner.newSubManager()) {
      NDArray normed = like(x, rmsNorm(read(x), finalNorm, rows(x)), family.hidden());
      normed.attach(scope);
      NDArray out = normed.matMul(lmHeadT);
      out.attach(owner);
      return out;
    }
  }

  /**
   * The whole forward from empty cache: tokens {@code [B][T]} to logits {@code [B, T, V]} in
   * target.
   */
  public NDArray forward(NDManager target, int[][] tokens) {
    NDArray x = hiddenStates(target, tokens);
    NDArray logits = logits(x);
    x.close();
    return logits;
  }

  /**
   * Tokens {@code [B][T]} to the last layer's output {@code [B, T, H]} (before the final norm), in
   * target.
   */
  public NDArray hiddenStates(NDManager target, int[][] tokens) {
    float[] x = embedRows(tokens);
    for (int i = 0; i < family.layers(); i++) {
      DecoderLayer layer = layer(i);
      x = runLayer(layer, x, tokens.length, tokens[0].length, 0, null, CaptureHook.NONE);
      if (!keeps(layer)) {
        layer.close();
      }
    }
    return Tensors.create(target, x, new Shape(tokens.length, tokens[0].length, family.hidden()));
  }

  /** The last rope tables asked for: every layer of a forward asks for the same ones. */
  private final class TableCache {
    private int start = -1;
    private int count = -1;
    private float[][] tables;

    float[][] get(int start, int count) {
      if (tables == null || start != this.start || count != this.count) {
        tables = Rope.tables(family.rope(), family.headDim(), start, count);
        this.start = start;
        this.count = count;
      }
      return tables;
    }
  }

  private final TableCache ropeCache = new TableCache();

  @Override
  public synchronized void close() {
    if (manager != null) {
      manager.close();
    }
  }
}
