package llmc.model;

import java.util.EnumMap;
import java.util.Map;
import llmc.model.kernels.Gemm;
import llmc.model.kernels.Ops;

/**
 * One decoder layer's parameters as Java arrays: the linear layers transposed for {@link Gemm} (on
 * these CPUs faster than the engine's matrix product: see docs/performance.md), the norms as they
 * are.
 */
public final class DecoderLayer implements AutoCloseable {
  public final int index;
  private final LlamaFamily family;

  /** Per linear layer, the weight transposed to {@code [in, out]} so that {@code y = x W^T}. */
  private final Map<Linear, float[]> weightT = new EnumMap<>(Linear.class);

  /** Per linear layer with a bias, {@code [out]}. */
  private final Map<Linear, float[]> bias = new EnumMap<>(Linear.class);

  final float[] inputNorm; // [hidden]
  final float[] postAttentionNorm; // [hidden]
  final float[] qNorm; // [headDim] or null
  final float[] kNorm; // [headDim] or null

  DecoderLayer(LlamaFamily family, LayerWeights w) {
    this.index = w.index();
    this.family = family;
    for (Linear linear : Linear.values()) {
      replace(linear, w.weight().get(linear));
      float[] b = w.bias().get(linear);
      if (b != null) {
        bias.put(linear, b);
      }
    }
    inputNorm = w.inputNorm();
    postAttentionNorm = w.postAttentionNorm();
    qNorm = w.qNorm();
    kNorm = w.kNorm();
  }

  /**
   * Forgets the weight of one linear layer until {@link #replace} gives it a new one: a compressing
   * walk drops a matrix's old values (its largest arrays: 0.94 GB for {@code down_proj} of a
   * 70B-class model) while the matrix is being compressed, when nothing runs the layer.
   */
  public void release(Linear linear) {
    weightT.remove(linear);
  }

  /** Replaces the weight of one linear layer; {@code weight} is {@code [out, in]} row-major. */
  public void replace(Linear linear, float[] weight) {
    int out = linear.outFeatures(family);
    int in = linear.inFeatures(family);
    if (weight.length != (long) out * in) {
      throw new IllegalArgumentException(
          linear + ": expected " + out + "x" + in + " values, got " + weight.length);
    }
    weightT.put(linear, transpose(weight, out, in));
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
    Gemm.parallelMultiplyAdd(
        1f, x, 0, in, 1, weightT.get(linear), 0, out, y, 0, out, rows, out, in);
    return y;
  }

  static float[] transpose(float[] a, int rows, int cols) {
    float[] t = new float[a.length];
    final int tile = 64;
    for (int r0 = 0; r0 < rows; r0 += tile) {
      for (int c0 = 0; c0 < cols; c0 += tile) {
        int r1 = Math.min(rows, r0 + tile);
        int c1 = Math.min(cols, c0 + tile);
        for (int r = r0; r < r1; r++) {
          for (int c = c0; c < c1; c++) {
            t[c * rows + r] = a[r * cols + c];
          }
        }
      }
    }
    return t;
  }

  /** Drops the weights (a pipeline closes each layer when done with it). */
  @Override
  public void close() {
    weightT.clear();
    bias.clear();
  }
}
