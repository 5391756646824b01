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
import java.util.concurrent.TimeUnit;
import llmc.formats.Json;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Weights are mapped, not copied onto the heap: inspect and eval of a random model of the
 * SmolLM2-135M shape (134.5M parameters) run in a JVM limited to a 1 GB heap; a quantized model is
 * evaluated from its codes, one layer at a time when its layers do not fit, with the same result;
 * the layer-by-layer methods plan their memory before they start.
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

  /**
   * GPTQ over 16 windows of 512 tokens with a limit below its plan: refused before any work, in one
   * line that names the moment of the peak and the least limit that would do; nothing written.
   */
  @Test
  void aLimitBelowThePlanIsRefusedBeforeAnyWork() {
    Path out = dir.resolve("refused");
    Cli r =
        Cli.run(
            "quantize",
            model.toString(),
            "--out",
            out.toString(),
            "--calib",
            Cli.valid(),
            "--nsamples",
            "16",
            "--seq-len",
            "512",
            "--max-memory",
            "250MB");
    assertEquals(2, r.exitCode(), r.err());
    assertEquals(1, r.err().lines().count(), r.err());
    assertTrue(r.err().contains("--max-memory 250 MB is less than this run needs"), r.err());
    assertTrue(r.err().matches("(?s).*give --max-memory \\d+\\.\\dGB or more.*"), r.err());
    assertFalse(Files.exists(out));
  }

  /** --dry-run prints the plan (its parts sum to its peak) and writes nothing. */
  @Test
  void dryRunPrintsThePlanAndWritesNothing() {
    Path out = dir.resolve("dry");
    Cli r =
        Cli.run(
            "quantize",
            model.toString(),
            "--out",
            out.toString(),
            "--calib",
            Cli.valid(),
            "--nsamples",
            "16",
            "--seq-len",
            "512",
            "--max-memory",
            "4GB",
            "--dry-run",
            "--json");
    assertEquals(0, r.exitCode(), r.err());
    JsonNode plan = r.json();
    assertEquals(4_000_000_000L, plan.get("limit").asLong());
    long sum = 0;
    for (JsonNode part : plan.get("parts")) {
      sum += part.get("bytes").asLong();
    }
    assertEquals(plan.get("peak").asLong(), sum);
    assertTrue(plan.get("peak_at").asText().startsWith("layer "), plan.toString());
    assertFalse(Files.exists(out));
  }

  /**
   * A quantized model's layers are read as their codes; in a heap whose quarter holds few of them
   * the model runs layer-major (each layer loaded once for all windows) and multiplies lm_head as
   * stored on the Java kernels, and the result is that of every layer kept (the head's sums run in
   * another order: equal to 1e-5).
   */
  @Test
  void aQuantizedModelEvaluatesTheSameKeptOrOneLayerAtATime() throws Exception {
    Path quantized = dir.resolve("rtn4");
    Cli q =
        Cli.run(
            "quantize",
            model.toString(),
            "--out",
            quantized.toString(),
            "--method",
            "rtn",
            "--bits",
            "4",
            "--group-size",
            "64",
            "--format",
            "compressed-tensors");
    assertEquals(0, q.exitCode(), q.err());
    String[] eval = {
      "eval",
      quantized.toString(),
      "--data",
      Cli.valid(),
      "--seq-len",
      "128",
      "--max-windows",
      "3",
      "--batch",
      "1",
      "--json"
    };
    JsonNode kept = runWithHeap("-Xmx1g", eval);
    JsonNode layerMajor = runWithHeap("-Xmx200m", eval); // a quarter: 50 MB, 12 of 30 layers
    assertEquals(3 * 127, layerMajor.get("scored_tokens").asLong());
    double nll = kept.get("mean_nll").asDouble();
    assertEquals(nll, layerMajor.get("mean_nll").asDouble(), 1e-5 * nll);
  }

  private static JsonNode runWithSmallHeap(String... args)
      throws IOException, InterruptedException {
    return runWithHeap("-Xmx1g", args);
  }

  private static JsonNode runWithHeap(String heap, String... args)
      throws IOException, InterruptedException {
    List<String> command = new ArrayList<>(Cli.child(heap));
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
