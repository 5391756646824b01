package llmc.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;

/** Keys and values of the positions decoded so far, per layer: each {@code [B, nkv, S, d]}. */
public final class KvCache implements AutoCloseable {
  private final NDManager manager;
  private final NDArray[] keys;
  private final NDArray[] values;

  public KvCache(NDManager parent, int layers) {
    this.manager = parent.newSubManager();
    this.keys = new NDArray[layers];
    this.values = new NDArray[layers];
  }

  /** Appends this step's k and v ({@code [B, nkv, T, d]}) and returns all keys and values so far. */
  NDArray[] append(int layer, NDArray k, NDArray v) {
    NDArray allK = keys[layer] == null ? k.duplicate() : NDArrays.concat(new NDList(keys[layer], k), 2);
    NDArray allV = values[layer] == null ? v.duplicate() : NDArrays.concat(new NDList(values[layer], v), 2);
    allK.attach(manager);
    allV.attach(manager);
    if (keys[layer] != null) {
      keys[layer].close();
      values[layer].close();
    }
    keys[layer] = allK;
    values[layer] = allV;
    return new NDArray[] {allK, allV};
  }

  public long length() {
    return keys[0] == null ? 0 : keys[0].getShape().get(2);
  }

  @Override
  public void close() {
    manager.close();
  }
}
