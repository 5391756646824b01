package llmc.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code llmc distill} on stories260K with its layers 0, 2, 4 as the student: on a short run the
 * distilled student beats the one trained on hard labels, which beats the untrained cut; the output
 * is a model llmc runs; bad settings are refused naming their flag.
 */
class DistillTest {
  @TempDir Path dir;

  private static String train() {
    return Cli.root().resolve("samples/data/tinystories/train.jsonl").toString();
  }

  private Cli distill(String out, String... more) {
    return distill(out, 80, 24, more);
  }

  private Cli distill(String out, int steps, int evalWindows, String... more) {
    List<String> args =
        new ArrayList<>(
            List.of(
                "distill",
                "--teacher",
                Cli.stories(),
                "--keep-layers",
                "0,2,4",
                "--data",
                train(),
                "--eval",
                Cli.valid(),
                "--eval-max-windows",
                Integer.toString(evalWindows),
                "--steps",
                Integer.toString(steps),
                "--out",
                dir.resolve(out).toString(),
                "--json"));
    // An option given in more replaces the default above (picocli refuses an option twice).
    for (String option : more) {
      int at = args.indexOf(option);
      if (option.startsWith("--") && at >= 0 && !option.equals("--json")) {
        args.subList(at, at + 2).clear();
      }
    }
    args.addAll(List.of(more));
    return Cli.run(args.toArray(String[]::new));
  }

  @Test
  void distilledBeatsHardLabelsBeatsTheUntrainedCutOnAShortRun() throws Exception {
    Cli hard = distill("hard", "--alpha", "0");
    assertEquals(0, hard.exitCode(), hard.err());
    Cli kd = distill("kd", "--alpha", "0.5", "--temperature", "2");
    assertEquals(0, kd.exitCode(), kd.err());
    JsonNode h = hard.json();
    JsonNode k = kd.json();
    double untrained = h.at("/student_before/perplexity").asDouble();
    double hardLabels = h.at("/student_after/perplexity").asDouble();
    double distilled = k.at("/student_after/perplexity").asDouble();
    double teacher = h.at("/teacher_eval/perplexity").asDouble();
    System.out.printf(
        "80 steps, 24 windows: untrained %.3f, hard labels %.3f, distilled %.3f, teacher %.3f%n",
        untrained, hardLabels, distilled, teacher);
    assertTrue(distilled < hardLabels, distilled + " < " + hardLabels);
    assertTrue(hardLabels < untrained, hardLabels + " < " + untrained);
    assertTrue(teacher < distilled);
    assertEquals(k.at("/student_before/perplexity").asDouble(), untrained, 0.0);

    // The report: 80 steps logged with decreasing rates after warm-up, parameters of the cut.
    assertEquals(80, k.get("steps").size());
    assertEquals(8, k.at("/training/warmup").asInt());
    assertEquals(3e-3, k.at("/steps/7/learning_rate").asDouble(), 1e-12);
    assertEquals(3e-4, k.at("/steps/79/learning_rate").asDouble(), 1e-5);
    assertEquals(169_152, k.get("trainable_parameters").asLong());
    assertEquals(80L * 8, k.at("/data/windows_drawn").asLong());

    // The output: a model folder llmc evaluates to the same perplexity, and the plot beside it.
    Path out = dir.resolve("kd");
    assertTrue(Files.size(out.resolve("training-curves.png")) > 1000);
    byte[] png = Files.readAllBytes(out.resolve("training-curves.png"));
    assertArrayEquals(new byte[] {(byte) 0x89, 'P', 'N', 'G'}, java.util.Arrays.copyOf(png, 4));
    Cli eval =
        Cli.run("eval", out.toString(), "--data", Cli.valid(), "--max-windows", "24", "--json");
    assertEquals(0, eval.exitCode(), eval.err());
    assertEquals(distilled, eval.json().get("perplexity").asDouble(), 1e-6 * distilled);
    assertFalse(Files.exists(dir.resolve("kd.work")), "a finished run leaves no work folder");
  }

  @Test
  void twoRunsWithTheSameSettingsWriteTheSameBytes() throws Exception {
    assertEquals(0, distill("one", 6, 2).exitCode());
    assertEquals(0, distill("two", 6, 2).exitCode());
    for (String file : List.of("model.safetensors", "llmc-report.json", "config.json")) {
      assertArrayEquals(
          Files.readAllBytes(dir.resolve("one").resolve(file)),
          Files.readAllBytes(dir.resolve("two").resolve(file)),
          file);
    }
    JsonNode config = llmc.formats.Json.mapper().readTree(dir.resolve("one/config.json").toFile());
    assertEquals(3, config.get("num_hidden_layers").asInt());
  }

  @Test
  void badSettingsAreRefusedNamingTheirFlag() {
    Cli noStudent =
        Cli.run(
            "distill",
            "--teacher",
            Cli.stories(),
            "--data",
            train(),
            "--out",
            dir.resolve("x").toString());
    assertEquals(2, noStudent.exitCode());
    assertEquals(
        "llmc: error: give one of --student (a model folder), --keep-layers or --drop-layers (the"
            + " teacher's layers the student keeps or leaves out)",
        noStudent.err().strip());
    Cli betaWithoutPairs = distill("x", "--beta", "1");
    assertEquals(2, betaWithoutPairs.exitCode());
    assertEquals(
        "llmc: error: --beta 1.0 weighs the hidden-state MSE: give --hidden-pairs, e.g."
            + " 0:0,1:2,2:4",
        betaWithoutPairs.err().strip());
    Cli badPair = distill("x", "--beta", "1", "--hidden-pairs", "0:0,3:4");
    assertEquals(2, badPair.exitCode());
    assertTrue(
        badPair.err().contains("--hidden-pairs 3:4: the student has layers 0..2"), badPair.err());
    Cli keepAll =
        Cli.run(
            "distill",
            "--teacher",
            Cli.stories(),
            "--data",
            train(),
            "--out",
            dir.resolve("x").toString(),
            "--keep-layers",
            "0,1,2,3,4");
    assertEquals(2, keepAll.exitCode());
    assertEquals(
        "llmc: error: --keep-layers keeps 5 of the teacher's 5 layers: keep at least one and drop"
            + " at least one",
        keepAll.err().strip());
    assertFalse(Files.exists(dir.resolve("x")));
  }
}
