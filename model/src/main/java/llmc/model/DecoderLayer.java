package llmc.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import java.util.EnumMap;
import java.util.Map;

/** One decoder layer's parameters as DJL arrays, owned by a child manager of the runtime. */
public final class DecoderLayer implements AutoCloseable {
  public final int index;
  private final LlamaFamily family;
  private final NDManager manager;
  /** Per linear layer, the weight transposed to {@code [in, out]} so that {@code y = x W^T = x.matMul(wT)}. */
  private final Map<Linear, NDArray> weightT = new EnumMap<>(Linear.class);
  /** Per linear layer with a bias, {@code [out]}. */
  private final Map<Linear, NDArray> bias = new EnumMap<>(Linear.class);
  final NDArray inputNorm;          // [hidden]
  final NDArray postAttentionNorm;  // [hidden]
  final NDArray qNorm;              // [headDim] or null
  final NDArray kNorm;              // [headDim] or null

  DecoderLayer(NDManager parent, LlamaFamily family, LayerWeights w) {
    this.index = w.index();
    this.family = family;
    this.manager = parent.newSubManager();
    for (Linear linear : Linear.values()) {
      replace(linear, w.weight().get(linear));
      float[] b = w.bias().get(linear);
      if (b != null) {
        bias.put(linear, manager.create(b));
      }
    }
    inputNorm = manager.create(w.inputNorm());
    postAttentionNorm = manager.create(w.postAttentionNorm());
    qNorm = w.qNorm() == null ? null : manager.create(w.qNorm());
    kNorm = w.kNorm() == null ? null : manager.create(w.kNorm());
  }

  /** Replaces the weight of one linear layer; {@code weight} is {@code [out, in]} row-major. */
  public void replace(Linear linear, float[] weight) {
    int out = linear.outFeatures(family);
    int in = linear.inFeatures(family);
    if (weight.length != (long) out * in) {
      throw new IllegalArgumentException(linear + ": expected " + out + "x" + in + " values, got " + weight.length);
    }
    NDArray old = weightT.put(linear, manager.create(transpose(weight, out, in), new Shape(in, out)));
    if (old != null) {
      old.close();
    }
  }

  /** {@code x [.., in] -> [.., out]}. */
  NDArray apply(Linear linear, NDArray x) {
    NDArray y = x.matMul(weightT.get(linear));
    NDArray b = bias.get(linear);
    return b == null ? y : y.addi(b);
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

  @Override
  public void close() {
    manager.close();
  }
}
