package llmc.cli;

import java.util.Map;
import picocli.CommandLine.Model.CommandSpec;

/**
 * The command line's names of the library's settings, so that an error about {@code groupSize}
 * reads {@code --group-size} here: a setting is the option of the same name in kebab case, the last
 * part of a nested name ({@code calibration.nsamples} is {@code --nsamples}), or one of the few
 * named otherwise below.
 */
final class SettingFlags {
  private static final Map<String, String> OTHER_NAMES =
      Map.ofEntries(
          Map.entry("model", "MODEL"),
          Map.entry("work", "--work-dir"),
          Map.entry("calibration.file", "--calib"),
          Map.entry("calibration.sampling", "--calib-sampling"),
          Map.entry("symmetric", "--sym/--asym"),
          Map.entry("maxShardBytes", "--max-shard-size"),
          Map.entry("maxMemoryBytes", "--max-memory"),
          Map.entry("eval.data", "--eval"),
          Map.entry("eval.maxWindows", "--eval-max-windows"),
          Map.entry("ggufType", "--gguf-type"),
          Map.entry("smoothQuant", "--smoothquant"),
          Map.entry("maxPerplexityIncrease", "--max-ppl-increase"),
          Map.entry("maxMeanKl", "--max-kl"),
          Map.entry("minTop1Agreement", "--min-top1"));

  private SettingFlags() {}

  static String flag(CommandSpec command, String setting) {
    String other = OTHER_NAMES.get(setting);
    if (other != null) {
      return other;
    }
    String last = setting.substring(setting.lastIndexOf('.') + 1);
    String option = "--" + last.replaceAll("([a-z0-9])([A-Z])", "$1-$2").toLowerCase();
    return command.findOption(option) != null ? option : setting;
  }
}
