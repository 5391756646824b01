package llmc.calibration;

import java.util.Map;
import llmc.model.Linear;

/** Where the walk hands each decoder layer once all of its matrices are compressed. */
public interface LayerSink {
  /**
   * @param compressed the layer's compressed matrices, in the order they were compressed; the
   *     linear layers not in it stay as they are
   */
  void writeLayer(int layer, Map<Linear, CompressedMatrix> compressed);

  /**
   * As {@link #writeLayer(int, Map)}, with the layer's 1-D tensors a method changed (the norm
   * weights AWQ's scales were folded into), by tensor name, written in place of the model's.
   */
  default void writeLayer(
      int layer, Map<Linear, CompressedMatrix> compressed, Map<String, float[]> vectors) {
    if (!vectors.isEmpty()) {
      throw new UnsupportedOperationException(
          getClass().getSimpleName() + " cannot write changed norm weights");
    }
    writeLayer(layer, compressed);
  }
}
