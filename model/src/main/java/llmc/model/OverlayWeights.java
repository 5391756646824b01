package llmc.model;

import java.util.HashMap;
import java.util.Map;
import llmc.model.kernels.WeightMatrix;

/**
 * A model's current weights: the tensors a compression pass has replaced, over the weights it
 * started from (a mapped checkpoint, or a model held in memory). Every method of a pass reads
 * through it, so two methods run one after the other on a layer (prune, then quantize) and each
 * sees what the one before it wrote. Replaced tensors are forgotten once their layer is written, so
 * memory stays one layer's worth.
 */
public final class OverlayWeights implements Weights {
  private final Weights base;
  private final Map<String, WeightMatrix> replaced = new HashMap<>();
  private final java.util.Set<String> setAside = new java.util.HashSet<>();

  public OverlayWeights(Weights base) {
    this.base = base;
  }

  /** Replaces a 2-D tensor ({@code values} row-major, in the tensor's stored shape). */
  public void put(String name, float[] values) {
    long[] shape = base.shape(name);
    put(name, new WeightMatrix.F32(values, (int) shape[0], (int) shape[1]));
  }

  /** Replaces a matrix by {@code w}, held as it is (its codes stay codes). */
  public synchronized void put(String name, WeightMatrix w) {
    if (!base.contains(name)) {
      throw new IllegalArgumentException(name + ": not a tensor of the model");
    }
    long[] shape = base.shape(name);
    if (shape.length != 2 || shape[0] != w.rows() || shape[1] != w.cols()) {
      throw new IllegalArgumentException(
          name
              + ": a "
              + w.rows()
              + "x"
              + w.cols()
              + " matrix for a tensor of shape "
              + java.util.Arrays.toString(shape));
    }
    replaced.put(name, w);
    setAside.remove(name);
  }

  /**
   * Lets go of a replaced matrix that waits elsewhere (on disk) until {@link #put} brings it back;
   * until then it cannot be read (the checkpoint's values would be the wrong ones).
   */
  public synchronized void setAside(String name) {
    if (replaced.remove(name) == null) {
      throw new IllegalArgumentException(name + ": not a replaced matrix");
    }
    setAside.add(name);
  }

  private void checkNotAside(String name) {
    if (setAside.contains(name)) {
      throw new IllegalStateException(name + ": set aside on disk until its layer is written");
    }
  }

  /** Forgets the replaced tensors of decoder layer {@code layer} (written, no longer needed). */
  public synchronized void forgetLayer(int layer) {
    String prefix = TensorNames.layer(layer);
    replaced.keySet().removeIf(name -> name.startsWith(prefix));
    setAside.removeIf(name -> name.startsWith(prefix));
  }

  @Override
  public boolean contains(String name) {
    return base.contains(name);
  }

  @Override
  public llmc.formats.quant.InputQuantization inputQuantization(String name) {
    return base.inputQuantization(name);
  }

  @Override
  public llmc.formats.quant.KvCacheQuantization kvCacheQuantization(int layer) {
    return base.kvCacheQuantization(layer);
  }

  @Override
  public long[] shape(String name) {
    return base.shape(name);
  }

  @Override
  public synchronized float[] floats(String name) {
    checkNotAside(name);
    WeightMatrix values = replaced.get(name);
    return values != null ? values.toFloats() : base.floats(name);
  }

  /** A replaced matrix as it is held (shared, not copied: the kernels only read it). */
  @Override
  public synchronized WeightMatrix matrix(String name) {
    checkNotAside(name);
    WeightMatrix values = replaced.get(name);
    return values != null ? values : base.matrix(name);
  }

  @Override
  public synchronized float[] rows(String name, long fromRow, int rows) {
    checkNotAside(name);
    return replaced.containsKey(name)
        ? Weights.super.rows(name, fromRow, rows)
        : base.rows(name, fromRow, rows);
  }
}
