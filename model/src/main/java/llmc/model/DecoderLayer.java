package llmc.model;

import java.util.EnumMap;
import java.util.Map;
import llmc.model.kernels.Gemm;
import llmc.model.kernels.Ops;
import llmc.model.kernels.WeightMatrix;

/**
 * One decoder layer's parameters as Java arrays: each linear layer's weight {@code [out][in]} in
 * the form it is kept ({@link WeightMatrix}: the checkpoint's BF16 values, or the float32 values a
 * compression method wrote), multiplied by {@link Gemm} without a transposed copy; the norms as
 * they are.
 */
public final class DecoderLayer implements AutoCloseable {
  public final int index;
  private final LlamaFamily family;

  /** Per linear layer, the weight {@code [out][in]}, so that {@code y = x W^T}. */
  private final Map<Linear, WeightMatrix> weight = new EnumMap<>(Linear.class);

  /** Per linear layer whose input the runtime quantizes (W8A8, FP8 dynamic). */
  private final Map<Linear, llmc.formats.quant.InputQuantization> inputQuantization =
      new EnumMap<>(Linear.class);

  /** Per linear layer with a bias, {@code [out]}. */
  private final Map<Linear, float[]> bias = new EnumMap<>(Linear.class);

  /** How the layer's key/value cache rounds its entries, or null. */
  final llmc.formats.quant.KvCacheQuantization kvCache;

  final float[] inputNorm; // [hidden]
  final float[] postAttentionNorm; // [hidden]
  final float[] qNorm; // [headDim] or null
  final float[] kNorm; // [headDim] or null

  /**
   * Layer {@code i} of {@code weights}, each tensor checked against the shape the config implies.
   */
  DecoderLayer(LlamaFamily f, Weights weights, int i) {
    this.index = i;
    this.family = f;
    for (Linear linear : Linear.values()) {
      String name = linear.weightName(i);
      LayerWeights.check(weights, name, linear.outFeatures(f), linear.inFeatures(f));
      replace(linear, weights.matrix(name));
      var iq = weights.inputQuantization(name);
      if (iq != null) {
        inputQuantization.put(linear, iq);
      }
      if (weights.contains(linear.biasName(i))) {
        bias.put(linear, LayerWeights.read(weights, linear.biasName(i), linear.outFeatures(f)));
      }
    }
    if (f.variant().hasQkNorm()) {
      qNorm = LayerWeights.read(weights, TensorNames.qNorm(i), f.headDim());
      kNorm = LayerWeights.read(weights, TensorNames.kNorm(i), f.headDim());
    } else {
      qNorm = null;
      kNorm = null;
    }
    kvCache = weights.kvCacheQuantization(i);
    inputNorm = LayerWeights.read(weights, TensorNames.inputNorm(i), f.hidden());
    postAttentionNorm = LayerWeights.read(weights, TensorNames.postAttentionNorm(i), f.hidden());
  }

  /**
   * Forgets the weight of one linear layer until {@link #replace} gives it a new one: a compressing
   * walk drops a matrix's old values (its largest arrays: 0.47 GB of BF16 for {@code down_proj} of
   * a 70B-class model) while the matrix is being compressed, when nothing runs the layer.
   */
  public void release(Linear linear) {
    weight.remove(linear);
  }

  /**
   * Replaces the weight of one linear layer; {@code values} is {@code [out, in]} row-major, held
   * (not copied): the caller does not change it afterwards.
   */
  public void replace(Linear linear, float[] values) {
    replace(
        linear,
        new WeightMatrix.F32(values, linear.outFeatures(family), linear.inFeatures(family)));
  }

  /** Replaces the weight of one linear layer by {@code w [out, in]}. */
  public void replace(Linear linear, WeightMatrix w) {
    int out = linear.outFeatures(family);
    int in = linear.inFeatures(family);
    if (w.rows() != out || w.cols() != in) {
      throw new IllegalArgumentException(
          linear + ": expected " + out + "x" + in + ", got " + w.rows() + "x" + w.cols());
    }
    weight.put(linear, w);
  }

  /** Bytes the layer's weights hold. */
  public long weightBytes() {
    return weight.values().stream().mapToLong(WeightMatrix::bytes).sum();
  }

  /** {@code x [rows][in] -> x W^T + b}, a new {@code [rows][out]}. */
  float[] project(Linear linear, float[] x, int rows) {
    return projectInto(
        linear, x, rows, new float[Math.multiplyExact(rows, linear.outFeatures(family))]);
  }

  /** {@code y = x W^T + b} into {@code y [rows][out]}; returns y. */
  float[] projectInto(Linear linear, float[] x, int rows, float[] y) {
    java.util.Arrays.fill(y, 0, rows * linear.outFeatures(family), 0f);
    return projectAdd(linear, x, rows, y);
  }

  /** {@code y += x W^T + b} for {@code y [rows][out]} (a residual added in place); returns y. */
  float[] projectAdd(Linear linear, float[] x, int rows, float[] y) {
    int in = linear.inFeatures(family);
    int out = linear.outFeatures(family);
    float[] b = bias.get(linear);
    if (b != null) {
      for (int r = 0; r < rows; r++) {
        Ops.addInPlace(y, r * out, b, 0, out);
      }
    }
    var iq = inputQuantization.get(linear);
    if (iq != null) { // the 8-bit input the runtime multiplies, one scale per token
      x = java.util.Arrays.copyOf(x, rows * in);
      iq.apply(x, rows, in);
    }
    Gemm.parallelMultiplyAdd(1f, x, 0, in, 1, weight.get(linear), y, 0, out, rows);
    return y;
  }

  /** Drops the weights (a pipeline closes each layer when done with it). */
  @Override
  public void close() {
    weight.clear();
    bias.clear();
  }
}
