package llmc.pipeline;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import llmc.formats.InvalidSettingException;
import llmc.formats.Json;
import llmc.formats.OutputFolder;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@link RecipeRun} without the command line: stages that copy a file and append a line, to check
 * the records, resume, failures and what reaches {@code OUT}.
 */
class RecipeRunTest {
  @TempDir Path dir;
  private Path recipe;
  private Path model;
  private final List<String> ran = new ArrayList<>();

  @BeforeEach
  void files() throws IOException {
    recipe = Files.writeString(dir.resolve("recipe.yaml"), "stages: []\n");
    model = Files.createDirectories(dir.resolve("model"));
    Files.writeString(model.resolve("weights.txt"), "w\n");
    Files.writeString(model.resolve(OutputFolder.REPORT), "{}\n");
  }

  private RecipeRun.Settings settings(String option, boolean resume, boolean overwrite) {
    Path work = dir.resolve("out.work");
    RecipeRun.Stage first =
        new RecipeRun.Stage(
            "1-append", List.of("append", option), List.of(model), work.resolve("1-append"), 2);
    RecipeRun.Stage second =
        new RecipeRun.Stage(
            "2-append",
            List.of("append", "b"),
            List.of(first.output()),
            work.resolve("2-append"),
            2);
    return new RecipeRun.Settings(
        recipe,
        model,
        dir.resolve("out"),
        work,
        List.of(),
        List.of(first, second),
        resume,
        overwrite,
        "test");
  }

  /** Copies the input folder into the output and appends the option as a line; a report. */
  private RecipeRun.Outcome append(RecipeRun.Stage stage, boolean overwrite) {
    ran.add(stage.name());
    try {
      Path in = stage.inputs().get(0);
      Files.createDirectories(stage.output());
      String text = Files.readString(in.resolve("weights.txt")) + stage.commandLine().get(1) + "\n";
      Files.writeString(stage.output().resolve("weights.txt"), text);
      ObjectNode report = Json.mapper().createObjectNode().put("lines", text.split("\n").length);
      report.put("seconds", 1.5); // a wall time, which the stored report drops
      Files.writeString(stage.output().resolve(OutputFolder.REPORT), report.toString());
      return new RecipeRun.Outcome(0, report);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  @Test
  void stagesChainRecordAndPublishTheLastOutput() throws IOException {
    RecipeRun.Result r = RecipeRun.run(settings("a", false, false), this::append, (s, u, t) -> {});
    assertEquals(0, r.exitCode());
    assertEquals(List.of("1-append", "2-append"), ran);
    Path out = dir.resolve("out");
    assertEquals("w\na\nb\n", Files.readString(out.resolve("weights.txt")));
    ObjectNode report =
        (ObjectNode) Json.mapper().readTree(out.resolve(OutputFolder.REPORT).toFile());
    assertEquals("2-append", report.get("final_stage").asText());
    assertEquals(3, report.at("/stages/1/report/lines").asInt());
    assertTrue(report.at("/stages/1/report/seconds").isMissingNode(), "no wall times stored");
    assertEquals(
        RecipeRun.sha256(dir.resolve("out.work/2-append")),
        report.get("final_model_sha256").asText());
    assertEquals(RecipeRun.sha256(out), report.get("out_sha256").asText());
    assertTrue(Files.readString(out.resolve(ModelCard.FILE)).contains("base_model: model\n"));
  }

  @Test
  void resumeReusesStagesUntilTheFirstChangeAndRunsAllAfterIt() {
    RecipeRun.run(settings("a", false, false), this::append, (s, u, t) -> {});
    ran.clear();
    List<Boolean> reused = new ArrayList<>();
    RecipeRun.run(settings("a", true, true), this::append, (s, u, t) -> reused.add(u));
    assertEquals(List.of(), ran);
    assertEquals(List.of(true, true), reused);

    // A changed option of stage 1 reruns both stages; stage 2's unchanged command line does not
    // save it, since its input changed.
    ran.clear();
    RecipeRun.run(settings("c", true, true), this::append, (s, u, t) -> {});
    assertEquals(List.of("1-append", "2-append"), ran);
  }

  @Test
  void aTamperedOutputIsRunAgain() throws IOException {
    RecipeRun.run(settings("a", false, false), this::append, (s, u, t) -> {});
    Files.writeString(dir.resolve("out.work/2-append/weights.txt"), "changed\n");
    ran.clear();
    RecipeRun.run(settings("a", true, true), this::append, (s, u, t) -> {});
    assertEquals(List.of("2-append"), ran);
    assertEquals("w\na\nb\n", Files.readString(dir.resolve("out/weights.txt")));
  }

  @Test
  void aFailedStageStopsTheRunAndWritesNoOutput() {
    RecipeRun.Result r =
        RecipeRun.run(
            settings("a", false, false),
            (stage, overwrite) ->
                stage.name().startsWith("2")
                    ? new RecipeRun.Outcome(3, null)
                    : append(stage, overwrite),
            (s, u, t) -> {});
    assertEquals(3, r.exitCode());
    assertEquals("2-append", r.failed().name());
    assertFalse(Files.exists(dir.resolve("out")));
    assertEquals(dir.resolve("out.work").resolve(OutputFolder.REPORT), r.reportFile());
    assertTrue(Files.exists(r.reportFile()));
    assertEquals("2-append", r.report().get("failed_stage").asText());
  }

  @Test
  void aWorkFolderThatIsNotARunsOrHoldsAnInputIsRefused() throws IOException {
    Files.createDirectories(dir.resolve("out.work"));
    Files.writeString(dir.resolve("out.work/mine.txt"), "keep\n");
    InvalidSettingException e =
        assertThrows(
            InvalidSettingException.class,
            () -> RecipeRun.run(settings("a", false, false), this::append, (s, u, t) -> {}));
    assertTrue(e.getMessage().contains("llmc run did not make it"), e.getMessage());
    assertTrue(Files.exists(dir.resolve("out.work/mine.txt")));

    RecipeRun.Settings s = settings("a", false, false);
    assertThrows(
        InvalidSettingException.class,
        () ->
            new RecipeRun.Settings(
                recipe, model, dir.resolve("out"), dir, List.of(), s.stages(), false, false, "t"));
  }
}
