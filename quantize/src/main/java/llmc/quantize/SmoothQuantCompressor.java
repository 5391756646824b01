package llmc.quantize;

import java.util.List;
import java.util.function.BiPredicate;
import java.util.function.Function;
import llmc.calibration.CompressedMatrix;
import llmc.calibration.InputStatistics;
import llmc.calibration.MatrixCompressor;
import llmc.calibration.ScaleFold;
import llmc.model.Linear;
import llmc.model.LlamaFamily;

/**
 * SmoothQuant (Xiao et al. 2023) before {@code inner}: the activation outliers that make 8-bit
 * activations lossy are moved into the weights, per input feature {@code j}: {@code s_j = max(max
 * |X_j|^alpha / max |W_j|^(1 - alpha), 1e-5)}, {@code max |W_j|} over every matrix reading the
 * input (itself at least 1e-5), as the paper's code computes them. The walk hands {@code inner}
 * {@code W diag(s)} and folds {@code 1/s} into the operation before, for all four inputs as AWQ's
 * scales ({@link ScaleFold}): the norms for (q, k, v) and (gate, up), {@code v_proj}'s rows for o
 * (the scale of a feature is the largest over the query heads sharing its key/value head) and
 * {@code up_proj}'s rows for down. The paper's code and llm-compressor's default mappings for Llama
 * smooth only the two inputs after a norm; on stories260K the four give the reference's trend
 * (better with a larger alpha) where the two do not (docs/w8a8.md).
 */
public final class SmoothQuantCompressor implements MatrixCompressor {
  private final MatrixCompressor inner;
  private final double alpha;
  private final LlamaFamily family;
  private final BiPredicate<Integer, Linear> hasBias;

  /**
   * @param hasBias whether a matrix of a layer has a bias ({@code v_proj}'s would need dividing
   *     too: o's input is then left unscaled)
   */
  public SmoothQuantCompressor(
      MatrixCompressor inner,
      double alpha,
      LlamaFamily family,
      BiPredicate<Integer, Linear> hasBias) {
    this.inner = inner;
    this.alpha = alpha;
    this.family = family;
    this.hasBias = hasBias;
  }

  @Override
  public boolean compresses(int layer, Linear linear) {
    return inner.compresses(layer, linear);
  }

  @Override
  public boolean needsStatistics() {
    return true;
  }

  @Override
  public float[] inputScales(
      int layer,
      Linear.Input input,
      List<Linear> linears,
      Function<Linear, float[]> weights,
      InputStatistics stats) {
    if (!ScaleFold.canFold(layer, input, this::compresses, hasBias)) {
      return null;
    }
    float[] s = scales(stats.absMax(), linears.stream().map(weights).toList(), alpha);
    if (input == Linear.Input.ATTN_OUT) { // one v_proj row makes a feature of every query head
      ScaleFold.forEachTiedGroup(
          family,
          group -> {
            float largest = 0;
            for (int i : group) {
              largest = Math.max(largest, s[i]);
            }
            for (int i : group) {
              s[i] = largest;
            }
          });
    }
    return s;
  }

  /**
   * {@code s_j = max(xMax_j^alpha / wMax_j^(1 - alpha), 1e-5)} with {@code wMax_j = max(max_i
   * |W_ij|, 1e-5)} over every matrix of {@code weights} ({@code [rows][in]} each).
   */
  static float[] scales(float[] xMax, List<float[]> weights, double alpha) {
    int in = xMax.length;
    float[] wMax = new float[in];
    for (float[] w : weights) {
      for (int i = 0; i < w.length; i++) {
        int j = i % in;
        wMax[j] = Math.max(wMax[j], Math.abs(w[i]));
      }
    }
    float[] s = new float[in];
    for (int j = 0; j < in; j++) {
      double w = Math.max(wMax[j], 1e-5);
      s[j] = (float) Math.max(Math.pow(xMax[j], alpha) / Math.pow(w, 1 - alpha), 1e-5);
    }
    return s;
  }

  @Override
  public CompressedMatrix compress(
      int layer, Linear linear, float[] weight, int rows, int cols, InputStatistics stats) {
    return inner.compress(
        layer, linear, weight, rows, cols, inner.needsStatistics() ? stats : null);
  }
}
