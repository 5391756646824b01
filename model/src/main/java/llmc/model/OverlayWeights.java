package llmc.model;

import java.util.HashMap;
import java.util.Map;

/**
 * A model's current weights: the tensors a compression pass has replaced, over the weights it
 * started from (a mapped checkpoint, or a model held in memory). Every method of a pass reads
 * through it, so two methods run one after the other on a layer (prune, then quantize) and each
 * sees what the one before it wrote. Replaced tensors are forgotten once their layer is written, so
 * memory stays one layer's worth.
 */
public final class OverlayWeights implements Weights {
  private final Weights base;
  private final Map<String, float[]> replaced = new HashMap<>();

  public OverlayWeights(Weights base) {
    this.base = base;
  }

  /** Replaces a tensor ({@code values} row-major, in the tensor's stored shape). */
  public synchronized void put(String name, float[] values) {
    if (!base.contains(name)) {
      throw new IllegalArgumentException(name + ": not a tensor of the model");
    }
    replaced.put(name, values);
  }

  /** Forgets the replaced tensors of decoder layer {@code layer} (written, no longer needed). */
  public synchronized void forgetLayer(int layer) {
    String prefix = TensorNames.layer(layer);
    replaced.keySet().removeIf(name -> name.startsWith(prefix));
  }

  @Override
  public boolean contains(String name) {
    return base.contains(name);
  }

  @Override
  public long[] shape(String name) {
    return base.shape(name);
  }

  @Override
  public synchronized float[] floats(String name) {
    float[] values = replaced.get(name);
    return values != null ? values.clone() : base.floats(name);
  }

  @Override
  public synchronized float[] rows(String name, long fromRow, int rows) {
    return replaced.containsKey(name)
        ? Weights.super.rows(name, fromRow, rows)
        : base.rows(name, fromRow, rows);
  }
}
