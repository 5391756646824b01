package llmc.pipeline;

/**
 * One threshold an evaluation against a base model must meet, and what was measured.
 *
 * @param name what is measured: {@link #PERPLEXITY_INCREASE} ({@code (ppl - base_ppl) / base_ppl}),
 *     {@link #MEAN_KL} ({@code KL(p_base || p)} per scored token, nats) or {@link #TOP1_AGREEMENT}
 *     (fraction of scored tokens whose argmax agrees with the base's)
 * @param bound {@code max} (the measurement may not exceed the threshold) or {@code min} (it may
 *     not fall below it)
 * @param margin how far inside the threshold the measurement is: {@code threshold - measured} for a
 *     {@code max}, {@code measured - threshold} for a {@code min}; negative when the gate failed
 */
public record QualityGate(
    String name, String bound, double threshold, double measured, boolean passed, double margin) {

  public static final String PERPLEXITY_INCREASE = "perplexity_increase";
  public static final String MEAN_KL = "mean_kl";
  public static final String TOP1_AGREEMENT = "top1_agreement";

  /** A gate that fails when {@code measured} exceeds {@code threshold} (or is NaN). */
  static QualityGate atMost(String name, double threshold, double measured) {
    return new QualityGate(
        name, "max", threshold, measured, measured <= threshold, threshold - measured);
  }

  /** A gate that fails when {@code measured} falls below {@code threshold} (or is NaN). */
  static QualityGate atLeast(String name, double threshold, double measured) {
    return new QualityGate(
        name, "min", threshold, measured, measured >= threshold, measured - threshold);
  }

  /** The {@link EvalSettings} component that set this gate's threshold. */
  public String setting() {
    return switch (name) {
      case PERPLEXITY_INCREASE -> "maxPerplexityIncrease";
      case MEAN_KL -> "maxMeanKl";
      case TOP1_AGREEMENT -> "minTop1Agreement";
      default -> throw new IllegalStateException("unknown gate " + name);
    };
  }
}
