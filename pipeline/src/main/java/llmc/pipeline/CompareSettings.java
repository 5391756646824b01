package llmc.pipeline;

import java.nio.file.Path;
import java.util.List;
import java.util.Objects;
import llmc.formats.InvalidSettingException;

/**
 * Several compressed variants of one model side by side.
 *
 * @param models the variants (folders or GGUF files)
 * @param base the original they are compared with (KL, top-1, perplexity increase; the tokenizer of
 *     GGUF variants), or null for perplexity and size alone
 * @param data the evaluation text (P1)
 * @param field the text field of a .jsonl file
 * @param maxWindows evaluation windows per model (0: all)
 * @param chart where to draw size against perplexity (PNG), or null
 */
public record CompareSettings(
    List<Path> models, Path base, Path data, String field, int maxWindows, Path chart) {

  public CompareSettings {
    if (models == null || models.isEmpty()) {
      throw new InvalidSettingException("{models}: give at least one model to compare");
    }
    models = List.copyOf(models);
    if (data == null) {
      throw new InvalidSettingException("{data} is required");
    }
    field = Objects.requireNonNullElse(field, "text");
    if (maxWindows < 0) {
      throw new InvalidSettingException("{maxWindows} %s: give 0 (all) or more", maxWindows);
    }
    if (chart != null && !chart.toString().endsWith(".png")) {
      throw new InvalidSettingException("{chart} %s: the chart is a .png file", chart);
    }
  }
}
