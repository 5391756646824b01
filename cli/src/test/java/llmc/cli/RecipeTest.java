package llmc.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import llmc.formats.Json;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code llmc run}: the sample recipes on the sample model, byte-identical reruns, resume, and one
 * clear line with exit 2 for each kind of bad recipe.
 */
class RecipeTest {
  @TempDir Path dir;

  private static Path recipe(String name) {
    return Cli.root().resolve("samples/recipes/" + name + ".yaml");
  }

  private static Cli run(Path recipe, Path out, String... more) {
    List<String> args = new ArrayList<>(List.of("run", recipe.toString(), "--out", out.toString()));
    args.addAll(List.of(more));
    if (!args.contains("--threads")) {
      args.addAll(List.of("--threads", "2"));
    }
    args.add("--json");
    return Cli.run(args.toArray(String[]::new));
  }

  private static JsonNode report(Path out) throws IOException {
    return Json.mapper().readTree(out.resolve("llmc-report.json").toFile());
  }

  /** The last (eval) stage's report, checked to hold the quality figures against the base. */
  private static JsonNode evaluation(JsonNode report) {
    JsonNode stages = report.get("stages");
    JsonNode eval = stages.get(stages.size() - 1);
    assertTrue(eval.get("stage").asText().endsWith("-eval"), eval.toString());
    JsonNode r = eval.get("report");
    assertTrue(r.get("perplexity").asDouble() > 1, r.toString());
    assertTrue(r.get("base_perplexity").asDouble() > 1, r.toString());
    assertTrue(r.get("mean_kl").asDouble() > 0, r.toString());
    double top1 = r.get("top1_agreement").asDouble();
    assertTrue(top1 > 0 && top1 < 1, r.toString());
    return r;
  }

  @Test
  void gptq4BitRecipeWritesTheQuantizedModelAndAReportOfEveryStage() throws IOException {
    Path out = dir.resolve("gptq");
    Cli c = run(recipe("gptq-4bit"), out);
    assertEquals(0, c.exitCode(), c.err());
    JsonNode report = report(out);
    assertEquals("run", report.get("command").asText());
    assertEquals(2, report.get("stages").size());
    JsonNode quantize = report.get("stages").get(0);
    assertEquals("1-quantize", quantize.get("stage").asText());
    assertEquals(4, quantize.get("report").get("scheme").get("bits").asInt(), quantize.toString());
    // The hashes of the final stage's output and of the OUT folder (that model and the run's card).
    assertEquals(
        llmc.pipeline.RecipeRun.sha256(out.resolveSibling("gptq.work/1-quantize")),
        report.get("final_model_sha256").asText());
    assertEquals(llmc.pipeline.RecipeRun.sha256(out), report.get("out_sha256").asText());
    assertTrue(Files.exists(out.resolve("model.safetensors")));
    assertTrue(Files.readString(out.resolve("config.json")).contains("compressed-tensors"));
    JsonNode eval = evaluation(report);
    // GPTQ 4-bit g32 costs a few percent of perplexity on 16 windows, not a broken model.
    double ratio = eval.get("perplexity").asDouble() / eval.get("base_perplexity").asDouble();
    assertTrue(ratio > 1.0 && ratio < 1.15, "perplexity ratio " + ratio);
    // The recipe's quality gates passed, and say by how much.
    assertTrue(eval.get("passed").asBoolean(), eval.toString());
    assertEquals(3, eval.get("gates").size());
    // Every input is named with its SHA-256.
    assertEquals(64, report.get("model_sha256").asText().length());
    quantize.get("inputs").forEach(h -> assertEquals(64, h.asText().length()));
  }

  @Test
  void sameRecipeTwiceWritesTheSameBytesAndResumeReusesUnchangedStages() throws IOException {
    Path out = dir.resolve("w24");
    Cli first = run(recipe("wanda-2of4-then-gptq"), out);
    assertEquals(0, first.exitCode(), first.err());
    byte[] firstReport = Files.readAllBytes(out.resolve("llmc-report.json"));
    byte[] firstModel = Files.readAllBytes(out.resolve("model.safetensors"));
    JsonNode r = report(out);
    evaluation(r);
    // The quantized model of a 2:4-pruned one keeps every zero (GPTQ holds a pruned weight at 0).
    JsonNode prune = r.get("stages").get(0).get("report");
    assertEquals(0.5, prune.get("sparsity").get("linear").asDouble(), 1e-9, prune.toString());
    JsonNode kept = r.get("stages").get(1).get("report").get("sparsity");
    assertEquals(prune.get("sparsity").get("zeros").asLong(), kept.get("zeros_kept").asLong());
    assertTrue(kept.get("survived").asBoolean(), kept.toString());

    // The run's model card: the recipe's model as the base, every stage, the eval's figures.
    String card = Files.readString(out.resolve("README.md"));
    assertTrue(card.contains("\nbase_model: stories260K\n"), card);
    for (String stage : List.of("1-prune", "2-quantize", "3-eval")) {
      assertTrue(card.contains("\n## Stage " + stage + "\n"), card);
    }
    assertTrue(
        card.contains(
            String.format(
                java.util.Locale.ROOT,
                "| perplexity after | %.4f",
                r.get("stages").get(2).get("report").get("perplexity").asDouble())),
        card);
    assertFalse(card.contains(dir.toString()), "the card names no folder of this machine");
    assertFalse(card.contains(Cli.root().toString()), "the card names no folder of this machine");

    Cli second = run(recipe("wanda-2of4-then-gptq"), out, "--overwrite");
    assertEquals(0, second.exitCode(), second.err());
    assertEquals(new String(firstReport), Files.readString(out.resolve("llmc-report.json")));
    assertEquals(card, Files.readString(out.resolve("README.md")));
    assertTrue(
        java.util.Arrays.equals(firstModel, Files.readAllBytes(out.resolve("model.safetensors"))));
    for (JsonNode s : second.json().get("stages")) {
      assertFalse(s.get("reused").asBoolean(), "without --resume every stage runs");
    }

    Cli resumed = run(recipe("wanda-2of4-then-gptq"), out, "--overwrite", "--resume");
    assertEquals(0, resumed.exitCode(), resumed.err());
    for (JsonNode s : resumed.json().get("stages")) {
      assertTrue(s.get("reused").asBoolean(), s.get("stage") + " ran again");
    }
    assertEquals(new String(firstReport), Files.readString(out.resolve("llmc-report.json")));

    // A changed option of stage 2 reruns stage 2 and everything after it, not stage 1.
    Cli changed =
        run(
            recipe("wanda-2of4-then-gptq"),
            out,
            "--overwrite",
            "--resume",
            "--set",
            "quantize.bits=3");
    assertEquals(0, changed.exitCode(), changed.err());
    JsonNode stages = changed.json().get("stages");
    assertTrue(stages.get(0).get("reused").asBoolean());
    assertFalse(stages.get(1).get("reused").asBoolean());
    assertFalse(stages.get(2).get("reused").asBoolean());
    assertEquals(3, stages.get(1).get("report").get("scheme").get("bits").asInt());

    // Another thread count may sum in another order: no stage is reused.
    Cli otherThreads =
        run(
            recipe("wanda-2of4-then-gptq"),
            out,
            "--overwrite",
            "--resume",
            "--set",
            "quantize.bits=3",
            "--threads",
            "1");
    assertEquals(0, otherThreads.exitCode(), otherThreads.err());
    for (JsonNode s : otherThreads.json().get("stages")) {
      assertFalse(s.get("reused").asBoolean(), s.get("stage") + " reused with other threads");
      assertEquals(1, s.get("threads").asInt(), s.toString());
    }
  }

  @Test
  void minitronAndGgufRecipesEndInAGgufFileEvaluatedAgainstTheOriginal() throws IOException {
    Path minitron = dir.resolve("minitron");
    Cli c = run(recipe("minitron"), minitron, "--set", "distill.steps=20");
    assertEquals(0, c.exitCode(), c.err());
    JsonNode r = report(minitron);
    assertEquals(4, r.get("stages").size());
    JsonNode distill = r.get("stages").get(1);
    assertTrue(
        distill.get("command_line").toString().contains("1-prune"),
        "the distill stage's student is the pruned model: " + distill);
    assertTrue(Files.size(minitron.resolve("model.gguf")) > 0);
    evaluation(r);
    // The same recipe with distillation, again into another folder: the same model bytes.
    Path again = dir.resolve("minitron-again");
    Cli c2 = run(recipe("minitron"), again, "--set", "distill.steps=20");
    assertEquals(0, c2.exitCode(), c2.err());
    JsonNode r2 = report(again);
    assertEquals(r.get("final_model_sha256"), r2.get("final_model_sha256"));
    for (int i = 0; i < 4; i++) {
      assertEquals(
          r.at("/stages/" + i + "/output_sha256"),
          r2.at("/stages/" + i + "/output_sha256"),
          "stage " + (i + 1) + " of two runs of minitron.yaml");
    }
    assertEquals(
        Files.readString(minitron.resolve("README.md")),
        Files.readString(again.resolve("README.md")));
    // A GGUF run's card: for llama.cpp, with the distill stage's own card a level down.
    String card = Files.readString(minitron.resolve("README.md"));
    assertTrue(card.startsWith("---\nlibrary_name: gguf\n"), card);
    assertTrue(card.contains("\n## Stage 2-distill\n"), card);
    assertTrue(card.contains("llama-cli -m"), card);

    Path gguf = dir.resolve("gguf");
    Cli g = run(recipe("gguf-q4"), gguf);
    assertEquals(0, g.exitCode(), g.err());
    byte[] magic = Files.readAllBytes(gguf.resolve("model.gguf"));
    assertEquals("GGUF", new String(magic, 0, 4));
    double ratio =
        evaluation(report(gguf)).get("perplexity").asDouble()
            / evaluation(report(gguf)).get("base_perplexity").asDouble();
    assertTrue(ratio > 1.0 && ratio < 1.15, "Q4_0 perplexity ratio " + ratio);
  }

  @Test
  void aFailedQualityGateExitsThreeWritesNoOutputAndReportsTheGate() throws IOException {
    Path out = dir.resolve("gated");
    Cli c = run(recipe("gptq-4bit"), out, "--set", "eval.max-ppl-increase=0%");
    assertEquals(Llmc.QUALITY_GATE_FAILED, c.exitCode(), c.err());
    assertFalse(Files.exists(out), "a model that failed its gate is not published");
    JsonNode report = Json.mapper().readTree(dir.resolve("gated.work/llmc-report.json").toFile());
    assertEquals("2-eval", report.get("failed_stage").asText());
    assertEquals(3, report.get("exit_code").asInt());
    JsonNode eval = report.get("stages").get(1).get("report");
    assertFalse(eval.get("passed").asBoolean());
    JsonNode ppl = eval.get("gates").get(0);
    assertEquals("perplexity_increase", ppl.get("name").asText());
    assertFalse(ppl.get("passed").asBoolean());
    assertTrue(ppl.get("measured").asDouble() > 0, ppl.toString());
    assertEquals(c.json(), report, "--json prints the run's report");
  }

  @Test
  void dryRunPrintsThePlanAndRunsNothing() {
    Path out = dir.resolve("dry");
    Cli c = run(recipe("minitron"), out, "--dry-run");
    assertEquals(0, c.exitCode(), c.err());
    JsonNode plan = c.json();
    assertEquals(4, plan.get("stages").size());
    assertTrue(plan.get("stages").get(1).get("command_line").toString().contains("--student"));
    assertFalse(Files.exists(out));
    assertFalse(Files.exists(dir.resolve("dry.work")));
  }

  private Cli bad(String yaml, String... more) throws IOException {
    Path file = dir.resolve("bad.yaml");
    Files.writeString(file, "model: " + Cli.stories() + "\n" + yaml.replace("VALID", Cli.valid()));
    Cli c = run(file, dir.resolve("bad-out"), more);
    assertEquals(2, c.exitCode(), c.err());
    assertEquals(1, c.err().strip().lines().count(), "one line: " + c.err());
    return c;
  }

  @Test
  void badRecipesGiveOneLineNamingTheLineAndExit2() throws IOException {
    Cli unknown = bad("stages:\n  - quantize:\n      bits: 4\n      group_size: 32\n");
    assertTrue(unknown.err().contains("bad.yaml:5:"), unknown.err());
    assertTrue(unknown.err().contains("did you mean 'group-size'"), unknown.err());

    Cli type = bad("stages:\n  - quantize:\n      bits: four\n");
    assertTrue(type.err().contains("bad.yaml:4: quantize.bits:"), type.err());
    assertTrue(type.err().contains("'four' is not an int"), type.err());

    Cli missing = bad("stages:\n  - eval:\n      data: nowhere.jsonl\n");
    assertTrue(missing.err().contains("bad.yaml:4: eval.data:"), missing.err());
    assertTrue(missing.err().contains("does not exist"), missing.err());

    Cli stage = bad("stages:\n  - quantise:\n      bits: 4\n");
    assertTrue(stage.err().contains("did you mean 'quantize'"), stage.err());

    Cli student = bad("stages:\n  - distill:\n      data: VALID\n");
    assertTrue(student.err().contains("distill: no student"), student.err());

    Cli set = bad("stages:\n  - quantize:\n      bits: 4\n", "--set", "prune.sparsity=0.5");
    assertTrue(set.err().contains("no stage 'prune'"), set.err());

    Cli reserved = bad("stages:\n  - quantize:\n      out: /tmp/x\n");
    assertTrue(reserved.err().contains("set by llmc run itself"), reserved.err());
  }
}
