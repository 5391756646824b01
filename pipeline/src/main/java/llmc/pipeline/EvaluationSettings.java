package llmc.pipeline;

import java.nio.file.Path;
import llmc.formats.InvalidSettingException;

/**
 * The quality measured after a compression: P1 perplexity of the input and of the output on the
 * same windows of {@code data}, with KL divergence and top-1 agreement.
 *
 * @param maxWindows only the first windows, or 0 for all
 */
public record EvaluationSettings(Path data, int maxWindows) {
  public EvaluationSettings {
    if (data == null) {
      throw new InvalidSettingException("{eval.data} is missing: give a .jsonl or .txt");
    }
    if (maxWindows < 0) {
      throw new InvalidSettingException("{eval.maxWindows} %s: give 0 (all) or more", maxWindows);
    }
  }

  public static EvaluationSettings of(Path data) {
    return new EvaluationSettings(data, 0);
  }
}
