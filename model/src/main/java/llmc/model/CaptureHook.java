package llmc.model;

import ai.djl.ndarray.NDArray;

/**
 * Called by {@link LlamaRuntime#runLayer} with the activation each group of linear layers reads,
 * just before they read it. The array is valid only during the call. The hook may replace the
 * weights of the linear layers that read this input ({@link DecoderLayer#replace}); the layer then
 * continues with the new weights, which is how compression runs "true sequential".
 */
@FunctionalInterface
public interface CaptureHook {
  CaptureHook NONE = (layer, input, x) -> { };

  /**
   * @param layer the decoder layer
   * @param input which activation
   * @param x     {@code [batch, tokens, input.width]}
   */
  void beforeLinear(DecoderLayer layer, Linear.Input input, NDArray x);
}
