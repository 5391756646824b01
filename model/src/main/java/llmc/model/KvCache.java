package llmc.model;

import llmc.model.kernels.Attention;

/**
 * Keys and values of the positions decoded so far, per layer: {@code [B][capacity][nkv * d]}, the
 * first {@code length} positions valid; capacity doubles as positions are appended.
 */
public final class KvCache {
  private final float[][] keys;
  private final float[][] values;
  private final int[] capacity;
  private final int[] length;

  public KvCache(int layers) {
    this.keys = new float[layers][];
    this.values = new float[layers][];
    this.capacity = new int[layers];
    this.length = new int[layers];
  }

  /** Appends this step's k and v ({@code [B][T][width]}) and returns all keys and values so far. */
  Attention.KeyValues append(int layer, float[] k, float[] v, int batch, int count, int width) {
    int old = length[layer];
    int needed = old + count;
    if (keys[layer] == null || capacity[layer] < needed) {
      int grown = Math.max(needed, Math.max(64, 2 * capacity[layer]));
      float[] newKeys = new float[batch * grown * width];
      float[] newValues = new float[batch * grown * width];
      for (int b = 0; b < batch && old > 0; b++) {
        System.arraycopy(
            keys[layer], b * capacity[layer] * width, newKeys, b * grown * width, old * width);
        System.arraycopy(
            values[layer], b * capacity[layer] * width, newValues, b * grown * width, old * width);
      }
      keys[layer] = newKeys;
      values[layer] = newValues;
      capacity[layer] = grown;
    }
    int stride = capacity[layer] * width;
    for (int b = 0; b < batch; b++) {
      System.arraycopy(k, b * count * width, keys[layer], b * stride + old * width, count * width);
      System.arraycopy(
          v, b * count * width, values[layer], b * stride + old * width, count * width);
    }
    length[layer] = needed;
    return new Attention.KeyValues(keys[layer], values[layer], stride, needed);
  }

  /**
   * Forgets every position from {@code length} on, in every layer (speculative decoding rolls back
   * the tokens it did not accept); the next append writes at {@code length}. The storage stays.
   *
   * @throws IllegalArgumentException when {@code length} is negative or more than a layer holds
   */
  public void truncate(int length) {
    for (int layer = 0; layer < this.length.length; layer++) {
      if (length < 0 || length > this.length[layer]) {
        throw new IllegalArgumentException(
            "cannot truncate layer "
                + layer
                + " of a KV cache holding "
                + this.length[layer]
                + " positions to "
                + length);
      }
    }
    java.util.Arrays.fill(this.length, length);
  }

  /** Positions cached (in the first layer). */
  public long length() {
    return length[0];
  }
}
