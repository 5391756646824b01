package llmc.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import llmc.formats.Json;
import llmc.pipeline.RecipeRun;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code llmc quantize} (GPTQ, 128 calibration windows) and {@code llmc prune} (SparseGPT) killed
 * with SIGKILL after their second layer, and once after their last (while the output is written),
 * then run again with {@code --resume}: the output is the bytes of an uninterrupted run, and no
 * partial output is ever at {@code --out}.
 */
class LayerResumeTest {
  @TempDir Path dir;

  private static List<String> llmc(String... args) {
    List<String> all = new ArrayList<>(Cli.child());
    all.addAll(List.of(args));
    all.addAll(List.of("--threads", "1"));
    return all;
  }

  /**
   * {@code llmc COMMAND SAMPLE --out DIR} with the command's own options, then {@code more}; every
   * run calibrates on valid.jsonl with windows of 128 tokens.
   */
  private List<String> command(String command, String out, List<String> options, String... more) {
    List<String> args =
        new ArrayList<>(List.of(command, Cli.stories(), "--out", dir.resolve(out).toString()));
    args.addAll(options);
    args.addAll(List.of("--calib", Cli.valid(), "--seq-len", "128"));
    args.addAll(List.of(more));
    return llmc(args.toArray(String[]::new));
  }

  private List<String> quantize(String out, String... more) {
    return command(
        "quantize",
        out,
        List.of(
            "--bits",
            "4",
            "--group-size",
            "32",
            "--format",
            "compressed-tensors",
            "--nsamples",
            "128",
            "--eval",
            Cli.valid(),
            "--eval-max-windows",
            "16"),
        more);
  }

  private List<String> prune(String out, String... more) {
    return command(
        "prune",
        out,
        List.of("--method", "sparsegpt", "--pattern", "2:4", "--nsamples", "128"),
        more);
  }

  private List<String> taylorChannels(String out, String... more) {
    return command(
        "prune",
        out,
        List.of(
            "--method",
            "taylor",
            "--structure",
            "channels",
            "--sparsity",
            "0.25",
            "--nsamples",
            "64",
            "--eval",
            Cli.valid(),
            "--eval-max-windows",
            "16"),
        more);
  }

  /** Runs to the end; returns what it printed (progress as plain lines). */
  private String run(List<String> args, String log) throws Exception {
    ProcessBuilder b =
        new ProcessBuilder(args)
            .redirectErrorStream(true)
            .redirectOutput(dir.resolve(log).toFile());
    b.environment().put("CI", "true");
    Process p = b.start();
    assertEquals(0, p.waitFor(), Files.readString(dir.resolve(log)));
    return Files.readString(dir.resolve(log));
  }

  /** Starts a run and kills it (SIGKILL) once its journal holds {@code layers} layers. */
  private void killAfter(List<String> args, Path out, int layers) throws Exception {
    Path journal = out.resolveSibling(out.getFileName() + ".work").resolve("journal.json");
    killWhen(args, out, "layer " + layers, () -> layersDone(journal) >= layers);
  }

  /** Starts a run and kills it (SIGKILL) as soon as {@code ready} holds. */
  private void killWhen(
      List<String> args, Path out, String what, java.util.function.BooleanSupplier ready)
      throws Exception {
    Process p =
        new ProcessBuilder(args)
            .redirectErrorStream(true)
            .redirectOutput(dir.resolve(out.getFileName() + ".killed.log").toFile())
            .start();
    long deadline = System.nanoTime() + TimeUnit.MINUTES.toNanos(5);
    while (p.isAlive() && System.nanoTime() < deadline && !ready.getAsBoolean()) {
      Thread.sleep(2);
    }
    assertTrue(p.isAlive(), "the run ended before it could be killed after " + what);
    p.destroyForcibly();
    p.waitFor();
    assertFalse(Files.exists(out), "a killed run leaves nothing at --out");
    assertTrue(ready.getAsBoolean(), what);
  }

  private static int layersDone(Path journal) {
    try {
      return Json.mapper().readTree(Files.readString(journal)).path("layers_done").asInt();
    } catch (IOException e) {
      return -1; // not there yet
    }
  }

  /** A run, uninterrupted: the bytes the resumed ones must write. */
  private Path whole(String name, Command command) throws Exception {
    run(command.args(name + "-whole"), name + "-whole.log");
    return dir.resolve(name + "-whole");
  }

  private void killAndResume(Path whole, String name, Command command, int killAfter)
      throws Exception {
    String killed = name + "-killed-" + killAfter;
    Path out = dir.resolve(killed);
    killAfter(command.args(killed), out, killAfter);
    assertEquals(1, temporarySiblings(out).size(), "the killed run's temporary output folder");
    String log = run(command.args(killed, "--resume"), killed + ".log");
    assertEquals(List.of(), temporarySiblings(out), "removed by the next run");
    // The layers the killed run finished were replayed, not computed again.
    java.util.regex.Matcher resumed =
        java.util.regex.Pattern.compile("llmc: resumed: layer (\\d+)/5").matcher(log);
    assertTrue(resumed.find(), log);
    assertTrue(Integer.parseInt(resumed.group(1)) >= killAfter, log);
    assertEquals(RecipeRun.sha256(whole), RecipeRun.sha256(out), killed + ": output differs");
    assertEquals(
        Files.readString(whole.resolve("llmc-report.json")).replace(whole.toString(), "OUT"),
        Files.readString(out.resolve("llmc-report.json")).replace(out.toString(), "OUT"));
    assertFalse(
        Files.exists(out.resolveSibling(killed + ".work")),
        "the work folder of a finished run is removed");
  }

  /** {@code .NAME.tmp-*} beside {@code out}: what a killed run leaves until the next run. */
  private static List<Path> temporarySiblings(Path out) throws IOException {
    try (java.util.stream.Stream<Path> list = Files.list(out.getParent())) {
      return list.filter(
              p -> p.getFileName().toString().startsWith("." + out.getFileName() + ".tmp-"))
          .toList();
    }
  }

  /** A command line for an output folder name. */
  private interface Command {
    List<String> args(String out, String... more);
  }

  @Test
  void gptqKilledAfterItsSecondLayerAndWhileWritingResumesToTheSameBytes() throws Exception {
    Path whole = whole("gptq", this::quantize);
    killAndResume(whole, "gptq", this::quantize, 2);
    // After the last layer, during the evaluation that precedes moving the output into place.
    killAndResume(whole, "gptq", this::quantize, 5);
  }

  /** AWQ folds its scales into norms and rows: those and its searches survive the journal. */
  @Test
  void awqKilledAfterItsSecondLayerResumesToTheSameBytes() throws Exception {
    Command awq = (out, more) -> quantize(out, concat(more, "--method", "awq", "--clip", "mse"));
    Path whole = whole("awq", awq);
    killAndResume(whole, "awq", awq, 2);
  }

  /**
   * W8A8 with SmoothQuant: the folded scales and the activation outliers of the report survive the
   * journal.
   */
  @Test
  void w8a8WithSmoothQuantKilledAfterItsSecondLayerResumesToTheSameBytes() throws Exception {
    Command w8a8 =
        (out, more) ->
            command(
                "quantize",
                out,
                List.of(
                    "--method",
                    "rtn",
                    "--scheme",
                    "w8a8",
                    "--smoothquant",
                    "0.5",
                    "--format",
                    "compressed-tensors",
                    "--nsamples",
                    "128"),
                more);
    Path whole = whole("w8a8", w8a8);
    assertTrue(Files.readString(whole.resolve("llmc-report.json")).contains("activation_outliers"));
    killAndResume(whole, "w8a8", w8a8, 2);
  }

  private static String[] concat(String[] a, String... b) {
    String[] out = java.util.Arrays.copyOf(a, a.length + b.length);
    System.arraycopy(b, 0, out, a.length, b.length);
    return out;
  }

  @Test
  void sparseGptKilledAfterItsSecondLayerResumesToTheSameBytes() throws Exception {
    Path whole = whole("sparsegpt", this::prune);
    killAndResume(whole, "sparsegpt", this::prune, 2);
  }

  @Test
  void taylorChannelsKilledAfterItsGradientsResumesFromThemToTheSameBytes() throws Exception {
    Path whole = whole("taylor", this::taylorChannels);
    Path out = dir.resolve("taylor-killed");
    Path gradients = dir.resolve("taylor-killed.work/gradients/model.safetensors");
    killWhen(taylorChannels("taylor-killed"), out, "the gradients", () -> Files.exists(gradients));
    String log = run(taylorChannels("taylor-killed", "--resume"), "taylor-killed.log");
    assertTrue(log.contains("llmc: resumed: gradients"), log);
    assertFalse(log.contains("llmc: gradients: window"), "computed again: " + log);
    assertEquals(RecipeRun.sha256(whole), RecipeRun.sha256(out), "output differs");
    assertEquals(
        Files.readString(whole.resolve("llmc-report.json")).replace(whole.toString(), "OUT"),
        Files.readString(out.resolve("llmc-report.json")).replace(out.toString(), "OUT"));
    assertFalse(Files.exists(dir.resolve("taylor-killed.work")), "removed once the run is done");
    assertFalse(Files.exists(dir.resolve("taylor-whole.work")), "removed once the run is done");
  }

  @Test
  void aResumeWithOtherSettingsIsRefused() throws Exception {
    Path out = dir.resolve("other");
    killAfter(quantize("other"), out, 1);
    Process p =
        new ProcessBuilder(quantize("other", "--resume", "--damp-percent", "0.02"))
            .redirectErrorStream(true)
            .start();
    String log = new String(p.getInputStream().readAllBytes());
    assertEquals(2, p.waitFor(), log);
    assertTrue(log.contains("--work-dir") && log.contains("other inputs or settings"), log);
    assertFalse(Files.exists(out));
  }
}
