package llmc.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import llmc.formats.Json;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A distillation killed with SIGKILL after a checkpoint and resumed ends with exactly the weights
 * of an uninterrupted run. Every run is a child JVM with one compute thread, a teacher term (alpha
 * 0.5) and a small young generation, so that garbage collections fall between forward and backward
 * passes all the time: a gradient that depended on them (docs/distill.md, "Reproducibility") would
 * part the two runs.
 */
class DistillResumeTest {
  private static final int STEPS = 120;

  @TempDir Path dir;

  private List<String> distill(Path out, Path work, String... more) {
    // A small young generation: collections during every step; a gradient may not depend on them.
    List<String> args = new ArrayList<>(Cli.child("-Xmn16m"));
    args.addAll(
        List.of(
            "distill",
            "--teacher",
            Cli.stories(),
            "--keep-layers",
            "0,2,4",
            "--data",
            Cli.valid(),
            "--out",
            out.toString(),
            "--work-dir",
            work.toString(),
            "--steps",
            String.valueOf(STEPS),
            "--batch-size",
            "2",
            "--seq-len",
            "64",
            "--checkpoint-every",
            "10",
            "--seed",
            "5",
            "--threads",
            "1",
            "--alpha",
            "0.5",
            "--json"));
    args.addAll(List.of(more));
    return args;
  }

  private Process start(List<String> args, String log) throws IOException {
    return new ProcessBuilder(args)
        .redirectErrorStream(true)
        .redirectOutput(dir.resolve(log).toFile())
        .start();
  }

  private byte[] run(String name, String... more) throws Exception {
    Path work = dir.resolve(name + ".work");
    Process p = start(distill(dir.resolve(name), work, more), name + ".log");
    assertEquals(0, p.waitFor(), Files.readString(dir.resolve(name + ".log")));
    return Files.readAllBytes(dir.resolve(name + "/model.safetensors"));
  }

  @Test
  void aRunKilledAfterACheckpointAndResumedEndsWithTheUninterruptedWeights() throws Exception {
    byte[] whole = run("whole");

    Path work = dir.resolve("killed.work");
    Path state = work.resolve("checkpoint/distill-state.json");
    Process killed = start(distill(dir.resolve("killed"), work), "killed.log");
    long deadline = System.nanoTime() + TimeUnit.MINUTES.toNanos(5);
    while (!Files.exists(state) && killed.isAlive() && System.nanoTime() < deadline) {
      Thread.sleep(5);
    }
    assertTrue(killed.isAlive(), "the run ended before its first checkpoint could be killed");
    killed.destroyForcibly(); // SIGKILL
    killed.waitFor();
    assertTrue(!Files.exists(dir.resolve("killed")), "a killed run leaves no output folder");
    int checkpointStep = Json.mapper().readTree(state.toFile()).at("/state/step").asInt();
    assertTrue(checkpointStep >= 10 && checkpointStep < STEPS, "checkpoint at " + checkpointStep);

    byte[] resumed = run("killed", "--resume");
    JsonNode report = Json.mapper().readTree(dir.resolve("killed/llmc-report.json").toFile());
    assertEquals(checkpointStep, report.get("resumed_from").asInt());
    assertEquals(STEPS, report.get("steps").size()); // the log before the kill came back too
    assertArrayEquals(whole, resumed, "resumed weights differ from the uninterrupted run's");
    JsonNode wholeReport = Json.mapper().readTree(dir.resolve("whole/llmc-report.json").toFile());
    assertEquals(wholeReport.get("steps"), report.get("steps"));
  }
}
