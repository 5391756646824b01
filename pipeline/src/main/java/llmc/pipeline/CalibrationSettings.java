package llmc.pipeline;

import java.nio.file.Path;
import java.util.Objects;
import llmc.calibration.CalibrationWindows;
import llmc.formats.InvalidSettingException;

/**
 * Calibration data, cut into windows by protocol C1 (PROTOCOLS.md).
 *
 * @param file text: {@code .jsonl} (one document per line, text in {@code field}) or {@code .txt}
 * @param seqLen tokens per window, or null for {@code min(context, 2048)}
 * @param nsamples windows wanted (all there are when the text holds fewer)
 * @param sampling the first windows, or windows at random offsets drawn from {@code seed}
 */
public record CalibrationSettings(
    Path file,
    String field,
    Integer seqLen,
    int nsamples,
    CalibrationWindows.Sampling sampling,
    long seed) {

  public CalibrationSettings {
    if (file == null) {
      throw new InvalidSettingException("{calibration.file} is missing: give a .jsonl or .txt");
    }
    field = Objects.requireNonNullElse(field, "text");
    sampling = Objects.requireNonNullElse(sampling, CalibrationWindows.Sampling.FIRST);
    if (nsamples < 1) {
      throw new InvalidSettingException("{calibration.nsamples} %s: give at least 1", nsamples);
    }
    if (seqLen != null && seqLen < 2) {
      throw new InvalidSettingException("{calibration.seqLen} %s: give at least 2", seqLen);
    }
  }

  /** The first 128 windows of the model's default length, text in "text". */
  public static CalibrationSettings of(Path file) {
    return new CalibrationSettings(file, "text", null, 128, CalibrationWindows.Sampling.FIRST, 0);
  }

  public CalibrationSettings withNsamples(int nsamples) {
    return new CalibrationSettings(file, field, seqLen, nsamples, sampling, seed);
  }

  public CalibrationSettings withSeqLen(Integer seqLen) {
    return new CalibrationSettings(file, field, seqLen, nsamples, sampling, seed);
  }
}
