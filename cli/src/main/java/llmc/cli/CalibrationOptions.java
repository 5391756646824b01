package llmc.cli;

import java.nio.file.Path;
import llmc.formats.BadInputException;
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

  /** Checked; {@code calib} may be null (the command decides whether it needs one). */
  Runs.Calibration toCalibration() {
    boolean random =
        switch (sampling.toLowerCase()) {
          case "first" -> false;
          case "random" -> true;
          default ->
              throw new BadInputException(
                  "--calib-sampling '" + sampling + "': use first or random");
        };
    if (nsamples < 1) {
      throw new BadInputException("--nsamples must be positive");
    }
    if (seqLen != null && seqLen < 2) {
      throw new BadInputException("--seq-len must be at least 2");
    }
    return new Runs.Calibration(calib, field, seqLen, nsamples, random, seed);
  }
}
