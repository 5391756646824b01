package llmc.pipeline;

import java.nio.file.Path;
import llmc.formats.InvalidSettingException;

/**
 * Greedy decoding with a KV cache, optionally speculative: a draft model proposes {@code
 * draftTokens} tokens at a time and the model verifies them in one forward pass, with the same
 * output as without it.
 *
 * @param model a Hugging Face folder or a {@code .gguf} file
 * @param prompt the text to continue ({@code ""} starts from BOS alone)
 * @param maxTokens new tokens at most (cut to what the context length leaves)
 * @param tokenizer a Hugging Face folder whose tokenizer to use (a GGUF model needs one), or null
 * @param draft a smaller model with the same vocabulary (a folder or a {@code .gguf} file), or null
 *     for plain greedy decoding
 * @param draftTokens tokens the draft proposes per step, 1 to {@value #MAX_DRAFT_TOKENS}
 */
public record GenerateSettings(
    Path model, String prompt, int maxTokens, Path tokenizer, Path draft, int draftTokens) {
  public static final int DEFAULT_DRAFT_TOKENS = 4;
  public static final int MAX_DRAFT_TOKENS = 64;

  public GenerateSettings {
    if (model == null) {
      throw new InvalidSettingException("{model} is required");
    }
    if (prompt == null) {
      throw new InvalidSettingException("{prompt} is required (\"\" starts from BOS alone)");
    }
    if (maxTokens < 0) {
      throw new InvalidSettingException("{maxTokens} %s must not be negative", maxTokens);
    }
    if (draftTokens < 1 || draftTokens > MAX_DRAFT_TOKENS) {
      throw new InvalidSettingException(
          "{draftTokens} %s: give 1 to %s tokens per step", draftTokens, MAX_DRAFT_TOKENS);
    }
  }

  /** Plain greedy decoding with the model's own tokenizer. */
  public static GenerateSettings of(Path model, String prompt, int maxTokens) {
    return new GenerateSettings(model, prompt, maxTokens, null, null, DEFAULT_DRAFT_TOKENS);
  }

  /** The same settings, decoding speculatively with {@code draft} proposing {@code draftTokens}. */
  public GenerateSettings withDraft(Path draft, int draftTokens) {
    return new GenerateSettings(model, prompt, maxTokens, tokenizer, draft, draftTokens);
  }
}
