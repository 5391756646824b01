package llmc.cli;

import java.nio.file.Path;
import llmc.calibration.CalibrationWindows;
import llmc.formats.BadInputException;
import llmc.pipeline.CalibrationSettings;
import picocli.CommandLine.Option;

/**
 * The calibration options of every calibration-driven command (protocol C1), under GPTQ's names.
 */
final class CalibrationOptions {
  @Option(names = "--calib", paramLabel = "FILE", description = "Calibration text, .jsonl or .txt.")
  Path calib;

  @Option(
      names = "--field",
      defaultValue = "text",
      description = "JSON field of the text (default: ${DEFAULT-VALUE}).")
  String field;

  @Option(
      names = "--nsamples",
      defaultValue = "128",
      description = "Calibration windows (default: ${DEFAULT-VALUE}).")
  int nsamples;

  @Option(
      names = "--seq-len",
      paramLabel = "L",
      description = "Calibration window length (default: min(context, 2048)).")
  Integer seqLen;

  @Option(
      names = "--calib-sampling",
      defaultValue = "first",
      paramLabel = "first|random",
      description = "The first windows, or windows at random offsets (default: ${DEFAULT-VALUE}).")
  String sampling;

  @Option(
      names = "--seed",
      defaultValue = "0",
      description = "Seed of --calib-sampling random (default: ${DEFAULT-VALUE}).")
  long seed;

  /** The settings, or null without --calib (the stage decides whether it needs them). */
  CalibrationSettings toSettings() {
    CalibrationWindows.Sampling s =
        switch (sampling.toLowerCase()) {
          case "first" -> CalibrationWindows.Sampling.FIRST;
          case "random" -> CalibrationWindows.Sampling.RANDOM;
          default ->
              throw new BadInputException(
                  "--calib-sampling '" + sampling + "': use first or random");
        };
    if (calib == null) {
      return null;
    }
    return new CalibrationSettings(calib, field, seqLen, nsamples, s, seed);
  }
}
