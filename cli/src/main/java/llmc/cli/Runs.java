package llmc.cli;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import llmc.calibration.CalibrationWindows;
import llmc.formats.BadInputException;
import llmc.formats.Json;
import llmc.formats.ModelFolder;
import llmc.model.Evaluator;
import llmc.model.LlamaFamily;
import llmc.model.LoadedModel;
import llmc.model.TextDataset;
import llmc.model.TokenWindows;
import llmc.model.Tokenizer;

/**
 * What every compression run does around its method: calibration windows, evaluation, report
 * hygiene.
 */
final class Runs {
  private Runs() {}

  /** The calibration options of a run (protocol C1). */
  record Calibration(
      Path file, String field, Integer seqLen, int nsamples, boolean random, long seed) {}

  /** C1 windows of the calibration file, described in {@code report.calibration}. */
  static List<int[]> calibrationWindows(
      ModelFolder input,
      LlamaFamily family,
      Calibration o,
      ObjectNode report,
      List<String> warnings) {
    try (Tokenizer tokenizer = Tokenizer.open(input)) {
      int seqLen = o.seqLen() != null ? o.seqLen() : family.defaultSeqLen();
      int[] stream = TokenWindows.stream(tokenizer, TextDataset.read(o.file(), o.field()));
      CalibrationWindows.Result calibration =
          CalibrationWindows.cut(
              stream,
              seqLen,
              o.nsamples(),
              o.random() ? CalibrationWindows.Sampling.RANDOM : CalibrationWindows.Sampling.FIRST,
              o.seed());
      ObjectNode c = report.putObject("calibration");
      c.put("protocol", "C1");
      c.put("file", o.file().toString());
      c.put("field", o.field());
      c.put("sampling", calibration.sampling().name().toLowerCase());
      c.put("seed", o.seed());
      c.put("seq_len", seqLen);
      c.put("requested_windows", o.nsamples());
      c.put("windows", calibration.windows().size());
      c.put("stream_tokens", calibration.streamTokens());
      if (calibration.shortOfRequested()) {
        warnings.add(
            "calibration data holds only "
                + calibration.windows().size()
                + " windows of "
                + seqLen
                + " tokens, fewer than --nsamples "
                + o.nsamples()
                + "; all of them were used");
      }
      return calibration.windows();
    }
  }

  /**
   * P1 before (the input) and after (the written output, read back) on the same windows, with KL.
   */
  static ObjectNode evaluate(Path before, Path after, Path data, int maxWindows) {
    try (LoadedModel base = LoadedModel.open(before);
        LoadedModel compressed = LoadedModel.open(after)) {
      int seqLen = base.family.defaultSeqLen();
      int[] stream = TokenWindows.stream(base.tokenizer(), TextDataset.read(data, "text"));
      List<int[]> windows = TokenWindows.first(stream, seqLen, maxWindows);
      if (windows.isEmpty()) {
        throw new BadInputException(data + ": fewer than one window of " + seqLen + " tokens");
      }
      // KL needs the same vocabulary, which structured pruning keeps.
      Evaluator.Result r =
          Evaluator.evaluate(
              compressed.runtime,
              base.runtime,
              windows,
              1,
              done -> CommonOptions.progress("eval: window " + done + "/" + windows.size()));
      CommonOptions.endProgress();
      ObjectNode e = Json.mapper().createObjectNode();
      e.put("protocol", "P1");
      e.put("data", data.toString());
      e.put("seq_len", seqLen);
      e.put("windows", r.windows());
      e.put("scored_tokens", r.scoredTokens());
      e.put("perplexity_before", r.basePerplexity());
      e.put("perplexity_after", r.perplexity());
      e.put("mean_nll_before", r.baseMeanNll());
      e.put("mean_nll_after", r.meanNll());
      e.put("mean_kl", r.meanKl());
      e.put("top1_agreement", r.top1Agreement());
      return e;
    }
  }

  /** The report's closing lines: the quality measured with --eval, then every warning. */
  static void printQualityAndWarnings(java.io.PrintWriter out, ObjectNode r) {
    if (r.has("eval")) {
      com.fasterxml.jackson.databind.JsonNode e = r.get("eval");
      out.printf(
          "quality   perplexity %.4f -> %.4f (P1, %d windows of %d), mean KL %.5f, top-1 agreement %.2f%%%n",
          e.get("perplexity_before").asDouble(),
          e.get("perplexity_after").asDouble(),
          e.get("windows").asInt(),
          e.get("seq_len").asInt(),
          e.get("mean_kl").asDouble(),
          100 * e.get("top1_agreement").asDouble());
    }
    for (com.fasterxml.jackson.databind.JsonNode w : r.get("warnings")) {
      out.println("warning   " + w.asText());
    }
  }

  /**
   * Puts the warnings into the report and stores it as {@code llmc-report.json} in the output
   * folder, without wall times and without its own path: the same run gives the same bytes.
   */
  static void storeReport(ObjectNode report, List<String> warnings, Path dir) {
    ArrayNode w = report.putArray("warnings");
    warnings.forEach(w::add);
    ObjectNode stored = withoutTimes(report.deepCopy());
    stored.remove("out");
    Json.writePretty(dir.resolve("llmc-report.json"), stored);
  }

  /**
   * The report without wall times anywhere: what the output folder stores, identical for identical
   * runs.
   */
  static ObjectNode withoutTimes(ObjectNode node) {
    node.remove("seconds");
    node.forEach(
        child -> {
          if (child instanceof ObjectNode object) {
            withoutTimes(object);
          } else if (child instanceof ArrayNode array) {
            array.forEach(
                item -> {
                  if (item instanceof ObjectNode object) {
                    withoutTimes(object);
                  }
                });
          }
        });
    return node;
  }

  /** Bytes of the safetensors files in a folder. */
  static long folderBytes(Path dir) {
    try (var files = Files.list(dir)) {
      return files
          .filter(p -> p.getFileName().toString().endsWith(".safetensors"))
          .mapToLong(p -> p.toFile().length())
          .sum();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }
}
