package llmc.model;

/**
 * Called by {@link LlamaRuntime#runLayer} with the activation each group of linear layers reads,
 * just before they read it. The array must not be kept or changed. The hook may replace the weights
 * of the linear layers that read this input ({@link DecoderLayer#replace}); the layer then
 * continues with the new weights, which is how compression runs "true sequential".
 */
@FunctionalInterface
public interface CaptureHook {
  CaptureHook NONE = (layer, input, x, rows) -> {};

  /**
   * @param layer the decoder layer
   * @param input which activation
   * @param x {@code [rows][input.width]} row-major (batch and tokens flattened)
   * @param rows number of rows
   */
  void beforeLinear(DecoderLayer layer, Linear.Input input, float[] x, int rows);
}
