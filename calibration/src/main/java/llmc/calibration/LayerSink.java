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
}
