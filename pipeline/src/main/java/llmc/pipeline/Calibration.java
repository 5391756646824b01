package llmc.pipeline;

import com.fasterxml.jackson.annotation.JsonAnyGetter;
import com.fasterxml.jackson.annotation.JsonIgnore;
import java.util.List;
import java.util.Map;
import llmc.calibration.CalibrationWindows;
import llmc.formats.BadInputException;
import llmc.formats.ModelFolder;
import llmc.model.LlamaFamily;
import llmc.model.TextDataset;
import llmc.model.TokenWindows;
import llmc.model.Tokenizer;

/** Calibration windows (protocol C1) and what the report says of them. */
record Calibration(List<int[]> windows, Report report, String warning) {

  /**
   * The calibration part of a report: the windows cut (C1), or the saved statistics used instead
   * with what was recorded about them when they were saved.
   */
  public record Report(
      String statistics,
      String protocol,
      String file,
      String field,
      String sampling,
      Long seed,
      Integer seqLen,
      Integer requestedWindows,
      Integer windows,
      Long streamTokens,
      @JsonIgnore Map<String, String> saved) {

    /** Saved statistics: their folder and the metadata stored with them. */
    static Report saved(String statistics, Map<String, String> metadata) {
      return new Report(
          statistics, null, null, null, null, null, null, null, null, null, Map.copyOf(metadata));
    }

    /** The saved statistics' metadata, after the fields above (sorted by key). */
    @JsonAnyGetter
    public Map<String, String> savedMetadata() {
      return saved == null ? Map.of() : new java.util.TreeMap<>(saved);
    }
  }

  /** C1 windows of the calibration file of {@code settings}, for the model in {@code input}. */
  static Calibration cut(ModelFolder input, LlamaFamily family, CalibrationSettings settings) {
    return cut(input, family, settings, Progress.NONE);
  }

  /** As above, telling {@code progress} how tokenizing the calibration file goes. */
  static Calibration cut(
      ModelFolder input, LlamaFamily family, CalibrationSettings settings, Progress progress) {
    try (Tokenizer tokenizer = Tokenizer.open(input)) {
      int seqLen = settings.seqLen() != null ? settings.seqLen() : family.defaultSeqLen();
      List<String> documents = TextDataset.read(settings.file(), settings.field());
      int[] stream =
          TokenWindows.stream(
              tokenizer,
              documents,
              done -> progress.update("calibration: document", done, documents.size()));
      progress.finished();
      CalibrationWindows.Result cut;
      try {
        cut =
            CalibrationWindows.cut(
                stream, seqLen, settings.nsamples(), settings.sampling(), settings.seed());
      } catch (BadInputException e) {
        throw new BadInputException(settings.file() + ": " + e.getMessage(), e);
      }
      Report report =
          new Report(
              null,
              "C1",
              settings.file().toString(),
              settings.field(),
              cut.sampling().name().toLowerCase(),
              settings.seed(),
              seqLen,
              settings.nsamples(),
              cut.windows().size(),
              cut.streamTokens(),
              null);
      String warning =
          cut.shortOfRequested()
              ? "calibration data holds only "
                  + cut.windows().size()
                  + " windows of "
                  + seqLen
                  + " tokens, fewer than the "
                  + settings.nsamples()
                  + " asked for; all of them were used"
              : null;
      return new Calibration(cut.windows(), report, warning);
    }
  }
}
