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
    MaxTokensCut maxTokensCut) {

  /** {@code maxTokens} cut from {@code requested} to {@code to} to stay within the context. */
  public record MaxTokensCut(int requested, int to, int contextLength) {}
}
