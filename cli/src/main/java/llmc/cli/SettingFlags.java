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
      Map.of(
          "model", "MODEL",
          "calibration.file", "--calib",
          "calibration.sampling", "--calib-sampling",
          "symmetric", "--sym/--asym",
          "maxShardBytes", "--max-shard-size",
          "eval.data", "--eval",
          "eval.maxWindows", "--eval-max-windows",
          "ggufType", "--gguf-type");

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
