package llmc.pipeline;

import java.nio.file.Path;
import llmc.formats.InvalidSettingException;

/**
 * Greedy decoding with a KV cache.
 *
 * @param model a Hugging Face folder or a {@code .gguf} file
 * @param prompt the text to continue ({@code ""} starts from BOS alone)
 * @param maxTokens new tokens at most (cut to what the context length leaves)
 * @param tokenizer a Hugging Face folder whose tokenizer to use (a GGUF model needs one), or null
 */
public record GenerateSettings(Path model, String prompt, int maxTokens, Path tokenizer) {
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
  }

  public static GenerateSettings of(Path model, String prompt, int maxTokens) {
    return new GenerateSettings(model, prompt, maxTokens, null);
  }
}
