package llmc.pipeline;

import java.nio.file.Path;
import java.util.Objects;
import llmc.formats.InvalidSettingException;

/**
 * A perplexity measurement by protocol P1 (non-overlapping windows of {@code seqLen} tokens, each
 * scored from an empty cache), with a base model also the KL divergence and top-1 agreement on the
 * same windows.
 *
 * @param model a Hugging Face folder or a {@code .gguf} file
 * @param data evaluation text: {@code .jsonl} (one document per line) or {@code .txt}
 * @param field the JSON field holding the text (null: {@code text})
 * @param seqLen the window length, or null for min(context length, 2048)
 * @param maxWindows only the first windows, or 0 for all
 * @param batch windows per forward pass
 * @param warmup windows run once untimed before measuring
 * @param base the model to compare with (same tokenizer), or null
 * @param tokenizer a Hugging Face folder whose tokenizer reads {@code data} (a GGUF model needs
 *     one), or null: the model's own, or for a GGUF model the base's when that is a folder
 */
public record EvalSettings(
    Path model,
    Path data,
    String field,
    Integer seqLen,
    int maxWindows,
    int batch,
    int warmup,
    Path base,
    Path tokenizer) {

  public EvalSettings {
    if (model == null || data == null) {
      throw new InvalidSettingException("{model} and {data} are required");
    }
    field = Objects.requireNonNullElse(field, "text");
    if (seqLen != null && seqLen < 2) {
      throw new InvalidSettingException("{seqLen} %s: a window needs at least 2 tokens", seqLen);
    }
    if (maxWindows < 0) {
      throw new InvalidSettingException("{maxWindows} %s: give 0 (all) or more", maxWindows);
    }
    if (batch < 1) {
      throw new InvalidSettingException("{batch} %s: give at least 1", batch);
    }
    if (warmup < 0) {
      throw new InvalidSettingException("{warmup} %s: give 0 (none) or more", warmup);
    }
  }

  /** Every window of the default length, one at a time, no base. */
  public static EvalSettings of(Path model, Path data) {
    return new EvalSettings(model, data, "text", null, 0, 1, 0, null, null);
  }

  /** The same settings with only the first {@code maxWindows} windows. */
  public EvalSettings withMaxWindows(int maxWindows) {
    return new EvalSettings(model, data, field, seqLen, maxWindows, batch, warmup, base, tokenizer);
  }
}
