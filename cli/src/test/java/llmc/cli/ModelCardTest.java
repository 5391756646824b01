package llmc.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import llmc.formats.Json;
import llmc.pipeline.ModelCard;
import llmc.pipeline.Reports;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The README.md model card beside llmc-report.json: its figures are the report's, its front matter
 * is YAML, identical runs write identical cards, and it names the method and settings.
 */
class ModelCardTest {
  @TempDir Path dir;

  private static String card(Path out) throws IOException {
    return Files.readString(out.resolve(ModelCard.FILE), StandardCharsets.UTF_8);
  }

  private static JsonNode report(Path out) throws IOException {
    return Json.mapper().readTree(Files.readString(out.resolve(Reports.FILE)));
  }

  /** The YAML between the first two {@code ---} lines. */
  private static JsonNode frontMatter(String card) throws IOException {
    assertTrue(card.startsWith("---\n"), card);
    int end = card.indexOf("\n---\n", 4);
    assertTrue(end > 0, card);
    return new ObjectMapper(new YAMLFactory()).readTree(card.substring(4, end + 1));
  }

  private static List<String> tags(JsonNode front) {
    List<String> tags = new ArrayList<>();
    front.get("tags").forEach(t -> tags.add(t.asText()));
    return tags;
  }

  private static String f4(JsonNode n) {
    return String.format(Locale.ROOT, "%.4f", n.asDouble());
  }

  @Test
  void quantizeCardHoldsTheReportsFiguresAndIsByteIdenticalAcrossRuns() throws IOException {
    Path first = dir.resolve("first");
    Path second = dir.resolve("elsewhere").resolve("second");
    for (Path out : List.of(first, second)) {
      QuantizeTest.quantizeModel(
          Cli.stories(),
          out,
          "--method",
          "rtn",
          "--bits",
          "4",
          "--group-size",
          "32",
          "--asym",
          "--format",
          "compressed-tensors",
          "--eval",
          Cli.valid(),
          "--eval-max-windows",
          "4");
    }
    String card = card(first);
    assertArrayEquals(
        Files.readAllBytes(first.resolve(ModelCard.FILE)),
        Files.readAllBytes(second.resolve(ModelCard.FILE)));

    JsonNode front = frontMatter(card);
    assertEquals("transformers", front.get("library_name").asText());
    assertEquals("stories260K", front.get("base_model").asText());
    assertEquals("quantized", front.get("base_model_relation").asText());
    List<String> tags = tags(front);
    assertTrue(
        tags.containsAll(List.of("llmc", "rtn", "4-bit", "compressed-tensors")), tags.toString());

    JsonNode eval = report(first).get("eval");
    assertTrue(
        card.contains("| perplexity before | " + f4(eval.get("perplexity_before")) + " |\n"), card);
    assertTrue(
        card.contains("| perplexity after | " + f4(eval.get("perplexity_after")) + " ("), card);
    assertTrue(
        card.contains(
            String.format(
                Locale.ROOT,
                "| mean KL (before ‖ after) | %.6f nats |",
                eval.get("mean_kl").asDouble())),
        card);
    assertTrue(
        card.contains(
            String.format(
                Locale.ROOT,
                "| top-1 agreement | %.2f%% |",
                100 * eval.get("top1_agreement").asDouble())),
        card);
    JsonNode size = report(first).get("size");
    assertTrue(
        card.contains(
            String.format(
                Locale.ROOT, "| size before | %,d bytes |", size.get("input_bytes").asLong())),
        card);
    // the settings, and how to load it
    assertTrue(card.contains("| bits | 4 |"), card);
    assertTrue(card.contains("| group size | 32 |"), card);
    assertTrue(card.contains("| symmetric | no |"), card);
    assertTrue(card.contains("| format | compressed-tensors |"), card);
    assertTrue(card.contains("AutoModelForCausalLM.from_pretrained("), card);
    assertTrue(card.contains("`compressed-tensors` package"), card);
    assertTrue(card.contains("vllm serve "), card);
    assertTrue(card.contains("llmc export ") && card.contains("--format gguf"), card);
    assertFalse(card.contains("not measured"), card);
    // no path of this machine, no wall time
    assertFalse(card.contains(dir.toString()), card);
    assertFalse(card.contains(Cli.root().toString()), card);
    assertFalse(card.contains("second"), card);
    assertFalse(card.contains("seconds"), card);
  }

  @Test
  void pruneCardNamesMethodAndSettingsAndSaysWhatWasNotMeasured() throws IOException {
    Path out = dir.resolve("pruned");
    Cli r =
        Cli.run(
            "prune",
            Cli.stories(),
            "--out",
            out.toString(),
            "--method",
            "magnitude",
            "--pattern",
            "2:4",
            "--format",
            "sparse-24-bitmask");
    assertEquals(0, r.exitCode(), r.err());
    String card = card(out);
    JsonNode front = frontMatter(card);
    assertEquals("stories260K", front.get("base_model").asText());
    List<String> tags = tags(front);
    assertTrue(
        tags.containsAll(List.of("llmc", "pruned", "magnitude", "sparse-24-bitmask")),
        tags.toString());
    assertTrue(card.contains("by `llmc prune`: method magnitude, sparsity pattern 2:4"), card);
    assertTrue(card.contains("| method | magnitude |"), card);
    assertTrue(card.contains("| pattern | 2:4 |"), card);
    assertTrue(card.contains("| format | sparse-24-bitmask |"), card);
    double sparsity = report(out).at("/sparsity/linear").asDouble();
    assertTrue(
        card.contains(
            String.format(
                Locale.ROOT, "| sparsity of the linear layers | %.2f%% (", 100 * sparsity)),
        card);
    // without --eval: no quality rows, one line saying so
    assertFalse(card.contains("| perplexity before"), card);
    assertEquals(1, card.split("not measured: run with `--eval", -1).length - 1, card);
    assertTrue(card.contains("vllm serve "), card);
  }

  @Test
  void distillCardNamesTeacherStudentAndLossSettings() throws IOException {
    Path out = dir.resolve("student");
    Cli r =
        Cli.run(
            "distill",
            "--teacher",
            Cli.stories(),
            "--keep-layers",
            "0,2,4",
            "--data",
            Cli.root().resolve("samples/data/tinystories/train.jsonl").toString(),
            "--steps",
            "3",
            "--batch-size",
            "2",
            "--seq-len",
            "32",
            "--alpha",
            "0.7",
            "--temperature",
            "3",
            "--out",
            out.toString());
    assertEquals(0, r.exitCode(), r.err());
    String card = card(out);
    JsonNode front = frontMatter(card);
    assertEquals("stories260K", front.get("base_model").asText());
    assertTrue(tags(front).containsAll(List.of("llmc", "distilled")), card);
    assertTrue(card.contains("distilled from the teacher `stories260K` by `llmc distill`"), card);
    assertTrue(card.contains("teacher layers [0, 2, 4]") || card.contains("0,2,4"), card);
    assertTrue(card.contains("| steps | 3 |"), card);
    assertTrue(card.contains("| batch size | 2 |"), card);
    assertTrue(card.contains("| sequence length | 32 |"), card);
    assertTrue(card.contains("| alpha (soft vs hard labels) | 0.7 |"), card);
    assertTrue(card.contains("| temperature | 3 |"), card);
    assertTrue(card.contains("| training data | `train.jsonl` (field text) |"), card);
    assertTrue(card.contains("not measured: run with `--eval"), card);
    assertFalse(card.contains(Cli.root().toString()), card);
    assertFalse(card.contains("vllm serve"), card);
  }
}
