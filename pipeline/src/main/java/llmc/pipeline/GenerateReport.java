package llmc.pipeline;

import java.util.List;

/**
 * A greedy continuation.
 *
 * @param text the prompt and the continuation, decoded together
 * @param continuation the text after the decoded prompt (the whole text when it does not start with
 *     it)
 * @param tokens the generated token ids
 * @param maxTokensCut when the prompt and {@code maxTokens} did not fit in the context length: how
 *     the limit was cut, else null
 * @param speculative with a draft model: how well it guessed, else null
 */
public record GenerateReport(
    String model,
    String prompt,
    String text,
    String continuation,
    int promptTokens,
    int generatedTokens,
    List<Integer> tokens,
    double seconds,
    double tokensPerSecond,
    MaxTokensCut maxTokensCut,
    Speculative speculative) {

  /** {@code maxTokens} cut from {@code requested} to {@code to} to stay within the context. */
  public record MaxTokensCut(int requested, int to, int contextLength) {}

  /**
   * Speculative decoding with a draft model.
   *
   * @param draft the draft model as given
   * @param draftTokens tokens the draft proposed per step (at most)
   * @param proposed draft tokens proposed in all
   * @param accepted proposed tokens the model agreed with
   * @param acceptanceRate accepted / proposed (0 when none was proposed)
   * @param verificationSteps forward passes of the model (the first one also runs the prompt)
   * @param tokensPerVerificationStep generated tokens / verification steps (1 without a draft)
   */
  public record Speculative(
      String draft,
      int draftTokens,
      int proposed,
      int accepted,
      double acceptanceRate,
      int verificationSteps,
      double tokensPerVerificationStep) {}
}
