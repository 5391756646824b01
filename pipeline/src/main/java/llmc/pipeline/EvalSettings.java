package llmc.pipeline;

import java.nio.file.Path;
import java.util.Objects;
import llmc.formats.InvalidSettingException;

/**
 * A perplexity measurement by protocol P1 (non-overlapping windows of {@code seqLen} tokens, each
 * scored from an empty cache), with a base model also the KL divergence and top-1 agreement on the
 * same windows, and against the base optionally quality gates: thresholds the measurement must meet
 * ({@link EvalReport#passed()}).
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
 * @param maxPerplexityIncrease the largest relative perplexity increase over the base's, {@code
 *     (ppl - base_ppl) / base_ppl} (0.05 for 5%), or null for no such gate
 * @param maxMeanKl the largest mean {@code KL(p_base || p)} per scored token, in nats, or null
 * @param minTop1Agreement the smallest fraction of scored tokens whose argmax agrees with the
 *     base's, in [0, 1], or null
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
    Path tokenizer,
    Double maxPerplexityIncrease,
    Double maxMeanKl,
    Double minTop1Agreement) {

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
    requireThreshold("maxPerplexityIncrease", maxPerplexityIncrease, base);
    requireThreshold("maxMeanKl", maxMeanKl, base);
    requireThreshold("minTop1Agreement", minTop1Agreement, base);
    if (minTop1Agreement != null && minTop1Agreement > 1) {
      throw new InvalidSettingException(
          "{minTop1Agreement} %s: give a fraction between 0 and 1", minTop1Agreement);
    }
  }

  /** Without quality gates. */
  public EvalSettings(
      Path model,
      Path data,
      String field,
      Integer seqLen,
      int maxWindows,
      int batch,
      int warmup,
      Path base,
      Path tokenizer) {
    this(model, data, field, seqLen, maxWindows, batch, warmup, base, tokenizer, null, null, null);
  }

  private static void requireThreshold(String setting, Double threshold, Path base) {
    if (threshold == null) {
      return;
    }
    if (!Double.isFinite(threshold) || threshold < 0) {
      throw new InvalidSettingException(
          "{" + setting + "} %s: give a finite number, 0 or more", threshold);
    }
    if (base == null) {
      throw new InvalidSettingException(
          "{" + setting + "} needs {base}: a quality gate measures against a base model");
    }
  }

  /** Every window of the default length, one at a time, no base. */
  public static EvalSettings of(Path model, Path data) {
    return new EvalSettings(model, data, "text", null, 0, 1, 0, null, null);
  }

  /** The same settings with only the first {@code maxWindows} windows. */
  public EvalSettings withMaxWindows(int maxWindows) {
    return new EvalSettings(
        model,
        data,
        field,
        seqLen,
        maxWindows,
        batch,
        warmup,
        base,
        tokenizer,
        maxPerplexityIncrease,
        maxMeanKl,
        minTop1Agreement);
  }

  /** The same settings measured against {@code base}. */
  public EvalSettings withBase(Path base) {
    return new EvalSettings(
        model,
        data,
        field,
        seqLen,
        maxWindows,
        batch,
        warmup,
        base,
        tokenizer,
        maxPerplexityIncrease,
        maxMeanKl,
        minTop1Agreement);
  }

  /** The same settings with these quality gates (each null for none; a base is needed). */
  public EvalSettings withGates(
      Double maxPerplexityIncrease, Double maxMeanKl, Double minTop1Agreement) {
    return new EvalSettings(
        model,
        data,
        field,
        seqLen,
        maxWindows,
        batch,
        warmup,
        base,
        tokenizer,
        maxPerplexityIncrease,
        maxMeanKl,
        minTop1Agreement);
  }

  /** Whether any quality gate is set. */
  public boolean hasGates() {
    return maxPerplexityIncrease != null || maxMeanKl != null || minTop1Agreement != null;
  }
}
