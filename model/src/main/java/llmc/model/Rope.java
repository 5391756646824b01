package llmc.model;

import llmc.formats.BadInputException;
import llmc.formats.ModelConfig;

/**
 * Rotary position embedding in the Hugging Face {@code rotate_half} convention: for a head vector x
 * of width d, {@code x' = x * cos + rotate_half(x) * sin} with {@code rotate_half(x) = [-x2, x1]}
 * and the angle of pair i at position p being {@code p * invFreq[i]}, duplicated over both halves.
 */
public final class Rope {

  /** rope_theta and rope_scaling (none, "linear" or Llama-3's "llama3"). */
  public record Spec(
      double theta,
      String scalingType,
      double factor,
      double lowFreqFactor,
      double highFreqFactor,
      int originalContext) {

    static Spec from(ModelConfig config, int headDim) {
      ModelConfig.RopeScaling s = config.ropeScaling();
      if (s == null || s.type() == null || s.type().equals("default")) {
        return new Spec(config.ropeTheta(), "none", 1, 0, 0, 0);
      }
      return switch (s.type()) {
        case "linear", "llama3" ->
            new Spec(
                config.ropeTheta(),
                s.type(),
                s.factor(),
                s.lowFreqFactor(),
                s.highFreqFactor(),
                s.originalMaxPositionEmbeddings());
        default ->
            throw new BadInputException(
                "config.json: rope_scaling type '"
                    + s.type()
                    + "' is not supported; llmc supports none, 'linear' and 'llama3'");
      };
    }
  }

  /** Inverse frequencies, one per rotated pair: {@code [headDim / 2]}. */
  public static double[] inverseFrequencies(Spec spec, int headDim) {
    int half = headDim / 2;
    double[] invFreq = new double[half];
    for (int i = 0; i < half; i++) {
      invFreq[i] = 1.0 / Math.pow(spec.theta(), (2.0 * i) / headDim);
    }
    switch (spec.scalingType()) {
      case "linear" -> {
        for (int i = 0; i < half; i++) {
          invFreq[i] /= spec.factor();
        }
      }
      case "llama3" -> {
        // Llama 3.1: long wavelengths slowed by `factor`, short ones kept, a smooth blend between.
        double lowFreqWavelen = spec.originalContext() / spec.lowFreqFactor();
        double highFreqWavelen = spec.originalContext() / spec.highFreqFactor();
        for (int i = 0; i < half; i++) {
          double wavelen = 2 * Math.PI / invFreq[i];
          if (wavelen > lowFreqWavelen) {
            invFreq[i] /= spec.factor();
          } else if (wavelen >= highFreqWavelen) {
            double smooth =
                (spec.originalContext() / wavelen - spec.lowFreqFactor())
                    / (spec.highFreqFactor() - spec.lowFreqFactor());
            invFreq[i] = (1 - smooth) * invFreq[i] / spec.factor() + smooth * invFreq[i];
          }
        }
      }
      default -> {}
    }
    return invFreq;
  }

  /**
   * cos and sin tables for positions {@code [from, from + count)}: each {@code [count, headDim]}
   * row-major, the angle of pair i repeated at columns i and i + headDim / 2.
   */
  public static float[][] tables(Spec spec, int headDim, int from, int count) {
    double[] invFreq = inverseFrequencies(spec, headDim);
    int half = headDim / 2;
    float[] cos = new float[count * headDim];
    float[] sin = new float[count * headDim];
    for (int p = 0; p < count; p++) {
      for (int i = 0; i < half; i++) {
        double angle = (double) (from + p) * invFreq[i];
        float c = (float) Math.cos(angle);
        float s = (float) Math.sin(angle);
        cos[p * headDim + i] = c;
        cos[p * headDim + i + half] = c;
        sin[p * headDim + i] = s;
        sin[p * headDim + i + half] = s;
      }
    }
    return new float[][] {cos, sin};
  }

  private Rope() {}
}
