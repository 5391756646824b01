package llmc.cli;

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
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Weights are mapped, not copied onto the heap: inspect and eval of a random model of the
 * SmolLM2-135M shape (134.5M parameters) run in a JVM limited to a 1 GB heap.
 */
class MemoryBoundTest {
  @TempDir static Path dir;
  static Path model;

  @BeforeAll
  static void smolLm2ShapedRandomModel() {
    model = dir.resolve("smollm2-135m-random");
    Cli r =
        Cli.run(
            "random-model",
            "--config",
            Cli.shared().resolve("models/smollm2-135m-shape").toString(),
            "--out",
            model.toString(),
            "--dtype",
            "bf16",
            "--seed",
            "1");
    assertEquals(0, r.exitCode(), r.err());
  }

  @Test
  void inspectRunsWithOneGigabyteHeap() throws Exception {
    JsonNode j = runWithSmallHeap("inspect", model.toString(), "--json");
    assertEquals(134_515_008L, j.get("parameters").asLong());
  }

  @Test
  void evalOfTwoWindowsRunsWithOneGigabyteHeap() throws Exception {
    JsonNode j =
        runWithSmallHeap(
            "eval",
            model.toString(),
            "--data",
            Cli.valid(),
            "--seq-len",
            "512",
            "--max-windows",
            "2",
            "--json");
    assertEquals(2 * 511, j.get("scored_tokens").asLong());
    // Random weights predict roughly uniformly over 49,152 tokens: ln(49152) = 10.80.
    assertEquals(Math.log(49152), j.get("mean_nll").asDouble(), 0.5);
  }

  private static JsonNode runWithSmallHeap(String... args)
      throws IOException, InterruptedException {
    List<String> command = new ArrayList<>(Cli.child("-Xmx1g"));
    command.addAll(List.of(args));
    Path out = Files.createTempFile(dir, "stdout", ".json");
    Path err = Files.createTempFile(dir, "stderr", ".txt");
    Process p =
        new ProcessBuilder(command)
            .redirectOutput(out.toFile())
            .redirectError(err.toFile())
            .start();
    assertTrue(p.waitFor(10, TimeUnit.MINUTES), "finished");
    assertEquals(0, p.exitValue(), Files.readString(err));
    return Json.mapper().readTree(Files.readString(out));
  }
}
