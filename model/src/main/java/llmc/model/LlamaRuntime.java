package llmc.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Activation;
import java.util.List;
import llmc.formats.BadInputException;

/**
 * The Llama-family forward on DJL/PyTorch, one decoder layer at a time:
 * {@code embed -> runLayer(0..L-1) -> logits}. Layers are loaded from {@link Weights} when first
 * used; with {@code keepLayers} they stay (evaluation), without it the caller closes them
 * (layer-sequential compression, where memory is one layer at a time).
 *
 * <p>Shapes: B windows (batch), T tokens, H hidden, nh/nkv heads, d head_dim, V vocabulary.
 */
public final class LlamaRuntime implements AutoCloseable {
  private final LlamaFamily family;
  private final Weights weights;
  private final NDManager manager;
  private final boolean keepLayers;
  private final DecoderLayer[] layers;
  private NDArray finalNorm;   // [H]
  private NDArray lmHeadT;     // [H, V]
  private final String embedName;

  public LlamaRuntime(LlamaFamily family, Weights weights, boolean keepLayers) {
    this.family = family;
    this.weights = weights;
    this.keepLayers = keepLayers;
    this.manager = Engines.newManager();
    this.layers = new DecoderLayer[family.layers()];
    this.embedName = TensorNames.EMBED;
    LayerWeights.read(weights, embedName, family.vocab(), family.hidden());
  }

  public LlamaFamily family() {
    return family;
  }

  /** Where the parameters come from (a compression pipeline reads the original matrices here). */
  public Weights weights() {
    return weights;
  }

  public NDManager manager() {
    return manager;
  }

  /** Token ids {@code [B][T]} to hidden states {@code [B, T, H]}, read row by row from the weights. */
  public NDArray embed(NDManager target, int[][] tokens) {
    int batch = tokens.length;
    int count = tokens[0].length;
    int hidden = family.hidden();
    float[] x = new float[batch * count * hidden];
    for (int b = 0; b < batch; b++) {
      for (int t = 0; t < count; t++) {
        int id = tokens[b][t];
        if (id < 0 || id >= family.vocab()) {
          throw new BadInputException("token id " + id + " is outside the vocabulary [0, " + family.vocab() + ")");
        }
        float[] row = weights.rows(embedName, id, 1);
        System.arraycopy(row, 0, x, (b * count + t) * hidden, hidden);
      }
    }
    return target.create(x, new Shape(batch, count, hidden));
  }

  /** Layer i, loaded on first use. Without keepLayers the caller owns (and closes) it. */
  public DecoderLayer layer(int i) {
    if (layers[i] != null) {
      return layers[i];
    }
    DecoderLayer layer = new DecoderLayer(manager, family, LayerWeights.load(weights, family, i));
    if (keepLayers) {
      layers[i] = layer;
    }
    return layer;
  }

  /**
   * Runs one decoder layer: {@code x [B, T, H] -> [B, T, H]} for the T tokens at positions
   * {@code [start, start + T)}. With a cache, keys and values of earlier positions come from it
   * and this call's are appended. The result lives in {@code x}'s manager.
   */
  public NDArray runLayer(DecoderLayer layer, NDArray x, int start, KvCache cache, CaptureHook hook) {
    NDManager owner = x.getManager();
    try (NDManager scope = owner.newSubManager()) {
      x.tempAttach(scope);
      // Attention block: x + o(attention(rope(q), rope(k), v)) on RMSNorm(x).
      NDArray h = rmsNorm(x, layer.inputNorm);
      hook.beforeLinear(layer, Linear.Input.ATTN_IN, h);
      NDArray merged = attend(scope, layer, h, start, cache);
      hook.beforeLinear(layer, Linear.Input.ATTN_OUT, merged);
      NDArray residual = x.add(layer.apply(Linear.O, merged));
      // MLP block: residual + down(silu(gate(h2)) * up(h2)) on RMSNorm(residual).
      NDArray h2 = rmsNorm(residual, layer.postAttentionNorm);
      hook.beforeLinear(layer, Linear.Input.MLP_IN, h2);
      NDArray act = swiGlu(layer, h2);
      hook.beforeLinear(layer, Linear.Input.MLP_OUT, act);
      NDArray out = residual.addi(layer.apply(Linear.DOWN, act));
      out.attach(owner);
      return out;
    }
  }

  // The same layer in stages, for layer-sequential compression: each stage's result is the
  // activation one group of linear layers reads, so a pipeline can compress that group before
  // the next stage uses it. Results live in the first argument's manager.

  /** {@code x [B, T, H] -> RMSNorm(x)}: what q, k and v read. */
  public NDArray attentionInput(DecoderLayer layer, NDArray x) {
    return staged(scope -> rmsNorm(x, layer.inputNorm), x);
  }

  /** {@code x [B, T, H] -> [B, T, nh * d]}: the attention heads merged, what o reads (positions from 0). */
  public NDArray attentionOutput(DecoderLayer layer, NDArray x) {
    return staged(scope -> attend(scope, layer, rmsNorm(x, layer.inputNorm), 0, null), x);
  }

  /** {@code x + o(merged)}: the residual stream after attention. */
  public NDArray afterAttention(DecoderLayer layer, NDArray x, NDArray merged) {
    return staged(scope -> x.add(layer.apply(Linear.O, merged)), x, merged);
  }

  /** {@code residual -> RMSNorm(residual)}: what gate and up read. */
  public NDArray mlpInput(DecoderLayer layer, NDArray residual) {
    return staged(scope -> rmsNorm(residual, layer.postAttentionNorm), residual);
  }

  /** {@code residual -> silu(gate(h2)) * up(h2)} with h2 = RMSNorm(residual): what down reads, {@code [B, T, I]}. */
  public NDArray mlpActivation(DecoderLayer layer, NDArray residual) {
    return staged(scope -> swiGlu(layer, rmsNorm(residual, layer.postAttentionNorm)), residual);
  }

  /** {@code residual + down(act)}: the layer's output. */
  public NDArray afterMlp(DecoderLayer layer, NDArray residual, NDArray act) {
    return staged(scope -> residual.add(layer.apply(Linear.DOWN, act)), residual, act);
  }

  private static NDArray staged(java.util.function.Function<NDManager, NDArray> body, NDArray... inputs) {
    NDManager owner = inputs[0].getManager();
    try (NDManager scope = owner.newSubManager()) {
      for (NDArray input : inputs) {
        input.tempAttach(scope);
      }
      NDArray out = body.apply(scope);
      out.attach(owner);
      return out;
    }
  }

  /** {@code h [B, T, H]} (normed) to the merged attention heads {@code [B, T, nh * d]}. */
  private NDArray attend(NDManager scope, DecoderLayer layer, NDArray h, int start, KvCache cache) {
    Shape shape = h.getShape();
    long batch = shape.get(0);
    long count = shape.get(1);
    int d = family.headDim();
    NDArray q = layer.apply(Linear.Q, h).reshape(batch, count, family.heads(), d);     // [B,T,nh,d]
    NDArray k = layer.apply(Linear.K, h).reshape(batch, count, family.kvHeads(), d);   // [B,T,nkv,d]
    NDArray v = layer.apply(Linear.V, h).reshape(batch, count, family.kvHeads(), d);
    if (layer.qNorm != null) {
      q = rmsNorm(q, layer.qNorm);
      k = rmsNorm(k, layer.kNorm);
    }
    q = q.transpose(0, 2, 1, 3);   // [B,nh,T,d]
    k = k.transpose(0, 2, 1, 3);   // [B,nkv,T,d]
    v = v.transpose(0, 2, 1, 3);
    NDArray[] cosSin = ropeTables(scope, start, (int) count);
    q = rope(q, cosSin);
    k = rope(k, cosSin);
    if (cache != null) {
      NDArray[] kv = cache.append(layer.index, k, v);
      kv[0].tempAttach(scope);  // so that views of the cache made here die with the scope
      kv[1].tempAttach(scope);
      k = kv[0];
      v = kv[1];
    }
    NDArray attended = attention(scope, q, k, v, start);                          // [B,nh,T,d]
    return attended.transpose(0, 2, 1, 3).reshape(batch, count, family.qWidth());
  }

  /** SwiGLU: {@code silu(gate(h)) * up(h)}, {@code [B, T, I]}. */
  private static NDArray swiGlu(DecoderLayer layer, NDArray h) {
    NDArray gate = layer.apply(Linear.GATE, h);
    return Activation.sigmoid(gate).muli(gate).muli(layer.apply(Linear.UP, h));
  }

  /** Loads every layer and the head now (evaluation and generation keep them all). */
  public void preload() {
    if (!keepLayers) {
      throw new IllegalStateException("preload() needs a runtime that keeps its layers");
    }
    for (int i = 0; i < family.layers(); i++) {
      layer(i);
    }
    loadHead();
  }

  private void loadHead() {
    if (lmHeadT == null) {
      finalNorm = manager.create(LayerWeights.read(weights, TensorNames.FINAL_NORM, family.hidden()));
      boolean tied = family.tiedEmbeddings() || !weights.contains(TensorNames.LM_HEAD);
      String head = tied ? embedName : TensorNames.LM_HEAD;
      float[] w = LayerWeights.read(weights, head, family.vocab(), family.hidden());
      lmHeadT = manager.create(DecoderLayer.transpose(w, family.vocab(), family.hidden()),
          new Shape(family.hidden(), family.vocab()));
    }
  }

  /** Final RMSNorm and lm_head: {@code [B, T, H] -> [B, T, V]}, in x's manager. */
  public NDArray logits(NDArray x) {
    loadHead();
    NDManager owner = x.getManager();
    try (NDManager scope = owner.newSubManager()) {
      x.tempAttach(scope);
      NDArray out = rmsNorm(x, finalNorm).matMul(lmHeadT);
      out.attach(owner);
      return out;
    }
  }

  /** The whole forward from empty cache: tokens {@code [B][T]} to logits {@code [B, T, V]} in target. */
  public NDArray forward(NDManager target, int[][] tokens) {
    NDArray x = hiddenStates(target, tokens);
    NDArray logits = logits(x);
    x.close();
    return logits;
  }

  /** Tokens {@code [B][T]} to the last layer's output {@code [B, T, H]} (before the final norm), in target. */
  public NDArray hiddenStates(NDManager target, int[][] tokens) {
    NDArray x = embed(target, tokens);
    for (int i = 0; i < family.layers(); i++) {
      DecoderLayer layer = layer(i);
      NDArray next = runLayer(layer, x, 0, null, CaptureHook.NONE);
      x.close();
      x = next;
      if (!keepLayers) {
        layer.close();
      }
    }
    return x;
  }

  /** RMSNorm over the last axis: {@code x / sqrt(mean(x^2) + eps) * w}. */
  private NDArray rmsNorm(NDArray x, NDArray w) {
    NDArray rms = x.square().mean(new int[] {-1}, true).addi(family.rmsNormEps()).sqrt();
    return x.div(rms).muli(w);
  }

  /** cos and sin for positions {@code [start, start + count)}: each {@code [count, d]}. */
  private NDArray[] ropeTables(NDManager scope, int start, int count) {
    float[][] t = ropeCache.get(start, count);
    Shape shape = new Shape(count, family.headDim());
    return new NDArray[] {scope.create(t[0], shape), scope.create(t[1], shape)};
  }

  /** The last rope tables and mask asked for: every layer of a forward asks for the same ones. */
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

  /** {@code x [B, n, T, d] -> x * cos + rotate_half(x) * sin} with {@code rotate_half(x) = [-x2, x1]}. */
  private NDArray rope(NDArray x, NDArray[] cosSin) {
    int half = family.headDim() / 2;
    NDArray x1 = x.get("..., :" + half);
    NDArray x2 = x.get("..., " + half + ":");
    NDArray rotated = NDArrays.concat(new NDList(x2.neg(), x1), -1);
    return x.mul(cosSin[0]).addi(rotated.muli(cosSin[1]));
  }

  /** Queries per block in causal attention: blocks skip the keys they cannot see. */
  private static final int QUERY_BLOCK = 128;

  /**
   * Causal scaled dot-product attention with GQA: query head h reads key/value head h / groupSize.
   * q {@code [B, nh, T, d]}, k and v {@code [B, nkv, S, d]} with S = start + T keys. Query heads are
   * viewed as {@code [B, nkv, group, T, d]} so that the key/value heads broadcast without copies.
   * Queries go in blocks of {@link #QUERY_BLOCK}; block c reads only the keys up to its last
   * position, which skips almost half of the work of a full window.
   */
  private NDArray attention(NDManager scope, NDArray q, NDArray k, NDArray v, int start) {
    long batch = q.getShape().get(0);
    int count = (int) q.getShape().get(2);
    int keys = (int) k.getShape().get(2);
    int d = family.headDim();
    NDArray q5 = q.mul(1.0 / Math.sqrt(d)).reshape(batch, family.kvHeads(), family.groupSize(), count, d);
    NDArray k5 = k.reshape(batch, family.kvHeads(), 1, keys, d);
    NDArray v5 = v.reshape(batch, family.kvHeads(), 1, keys, d);
    NDArray mask = causalMask(scope, count, keys, start);   // [T, S] or null
    NDList blocks = new NDList();
    for (int from = 0; from < count; from += QUERY_BLOCK) {
      int to = Math.min(count, from + QUERY_BLOCK);
      int visible = Math.min(keys, start + to);              // keys at positions < start + to
      boolean whole = from == 0 && to == count;
      NDArray qBlock = whole ? q5 : q5.get(":, :, :, " + from + ":" + to + ", :");
      NDArray kBlock = visible == keys ? k5 : k5.get(":, :, :, :" + visible + ", :");
      NDArray vBlock = visible == keys ? v5 : v5.get(":, :, :, :" + visible + ", :");
      NDArray scores = qBlock.matMul(kBlock.transpose(0, 1, 2, 4, 3));       // [B,nkv,g,Tb,Sb]
      if (mask != null) {
        scores = scores.addi(whole && visible == keys ? mask : mask.get(from + ":" + to + ", :" + visible));
      }
      blocks.add(scores.softmax(-1).matMul(vBlock));                          // [B,nkv,g,Tb,d]
    }
    NDArray attended = blocks.size() == 1 ? blocks.get(0) : NDArrays.concat(blocks, 3);
    return attended.reshape(batch, family.heads(), count, d);
  }

  /** Additive mask {@code [T, S]}: 0 where query i (position start + i) may see key j, else -inf. */
  private NDArray causalMask(NDManager scope, int count, int keys, int start) {
    int window = family.slidingWindow();
    boolean needed = count > 1 || (window > 0 && keys > window);
    if (!needed) {
      return null;
    }
    List<Integer> key = List.of(start, count, keys);
    if (!key.equals(maskKey)) {
      float[] values = new float[count * keys];
      for (int i = 0; i < count; i++) {
        int position = start + i;
        for (int j = 0; j < keys; j++) {
          boolean visible = j <= position && (window <= 0 || position - j < window);
          values[i * keys + j] = visible ? 0f : Float.NEGATIVE_INFINITY;
        }
      }
      if (mask != null) {
        mask.close();
      }
      mask = manager.create(values, new Shape(count, keys));
      maskKey = key;
    }
    mask.tempAttach(scope);   // views of it made now die with the scope; it returns to the runtime
    return mask;
  }

  private NDArray mask;           // the last causal mask, [T, S]
  private List<Integer> maskKey;  // its (start, T, S)

  @Override
  public void close() {
    manager.close();
  }
}
