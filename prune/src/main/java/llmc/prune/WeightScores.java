package llmc.prune;

import llmc.model.Linear;
import llmc.model.Weights;
import llmc.prune.grad.Gradients;
import llmc.prune.structured.Structured;

/**
 * Per-weight scores from the weights (and gradients): magnitude {@code |w|}, Lp {@code |w|^p},
 * sensitivity {@code |g|} (normalised by the matrix's {@code sum |g|}), Taylor {@code |g w|}
 * (signed {@code g w} when groups are scored by {@code |sum g w|}).
 */
public final class WeightScores implements Structured.ElementScores {
  private final PruneMethod method;
  private final double p;
  private final boolean signedTaylor;
  private final Weights weights;
  private final Gradients gradients;

  /**
   * @param gradients dL/dW of every linear weight, for sensitivity and Taylor (else null)
   * @param signedTaylor Taylor scores as signed {@code g w} (the "vector" group reduction)
   */
  public WeightScores(
      PruneMethod method, double p, boolean signedTaylor, Weights weights, Gradients gradients) {
    if (method.needsGradients() && gradients == null) {
      throw new IllegalArgumentException(method + " scores need gradients");
    }
    this.method = method;
    this.p = p;
    this.signedTaylor = signedTaylor;
    this.weights = weights;
    this.gradients = gradients;
  }

  @Override
  public float[] of(int layer, Linear linear) {
    return of(linear.weightName(layer), weights.floats(linear.weightName(layer)));
  }

  /** The scores of {@code w}, the current values of the weight named {@code name}. */
  public float[] of(String name, float[] w) {
    float[] s = new float[w.length];
    switch (method) {
      case MAGNITUDE -> {
        return Scores.magnitude(w);
      }
      case LP -> {
        for (int i = 0; i < w.length; i++) {
          s[i] = (float) Math.pow(Math.abs(w[i]), p);
        }
      }
      case SENSITIVITY -> {
        float[] g = gradients.of(name);
        double total = 0;
        for (float x : g) {
          total += Math.abs(x);
        }
        for (int i = 0; i < w.length; i++) {
          s[i] = total == 0 ? 0f : (float) (Math.abs(g[i]) / total);
        }
      }
      case TAYLOR -> {
        float[] g = gradients.of(name);
        for (int i = 0; i < w.length; i++) {
          float gw = g[i] * w[i];
          s[i] = signedTaylor ? gw : Math.abs(gw);
        }
      }
      default -> throw new IllegalStateException(method + " has no element scores");
    }
    return s;
  }
}
