package llmc.calibration;

import llmc.model.Linear;

/**
 * The LLM.int8 observation (Dettmers et al. 2022) for one input of one layer: the largest {@code
 * |x|} over the calibration tokens, and how many input features reach beyond a threshold (6.0 in
 * the paper) in some token. A few such features in an input are what makes per-token 8-bit
 * activations lossy there, and what SmoothQuant moves into the weights.
 *
 * @param input attn_in (q, k, v), attn_out (o), mlp_in (gate, up) or mlp_out (down)
 * @param features the input's width
 * @param maxAbs {@code max_t,j |x_tj|}
 * @param featuresAbove the features {@code j} with {@code max_t |x_tj| > threshold}
 */
public record ActivationOutliers(
    int layer, String input, int features, double maxAbs, int featuresAbove) {

  /** From an input's {@code max_t |x_tj|} per feature ({@link InputStatistics#absMax}). */
  public static ActivationOutliers of(
      int layer, Linear.Input input, float[] absMax, double threshold) {
    double max = 0;
    int above = 0;
    for (float a : absMax) {
      max = Math.max(max, a);
      if (a > threshold) {
        above++;
      }
    }
    return new ActivationOutliers(
        layer, input.name().toLowerCase(java.util.Locale.ROOT), absMax.length, max, above);
  }
}
