package llmc.prune.grad;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import llmc.calibration.CalibrationWindows;
import llmc.formats.ModelFolder;
import llmc.model.Engines;
import llmc.model.Evaluator;
import llmc.model.LlamaFamily;
import llmc.model.LlamaRuntime;
import llmc.model.TextDataset;
import llmc.model.TokenWindows;
import llmc.model.Tokenizer;
import llmc.model.Weights;
import org.junit.jupiter.api.Test;

/**
 * Gradients on the bundled stories260K: the loss equals P1's mean NLL on the same windows, and
 * (with {@code -Dllmc.bench.gradients=true}, alone in its JVM so that the engine gets 2 threads)
 * the time and memory of 128 calibration windows of 512 tokens in batches of 8.
 */
class GradientsStories260KTest {
  private static Path root() {
    return Path.of(System.getProperty("llmc.root", "..")).toAbsolutePath().normalize();
  }

  /** The first {@code count} C1 windows of {@code length} tokens of the bundled train.jsonl. */
  private static List<int[]> calibration(ModelFolder folder, int count, int length) {
    try (Tokenizer tokenizer = Tokenizer.open(folder)) {
      int[] stream =
          TokenWindows.stream(
              tokenizer,
              TextDataset.read(root().resolve("samples/data/tinystories/train.jsonl"), "text"));
      return CalibrationWindows.cut(stream, length, count, CalibrationWindows.Sampling.FIRST, 0)
          .windows();
    }
  }

  @Test
  void lossOnStories260KEqualsTheP1MeanNllOfTheSameWindows() {
    try (ModelFolder folder = ModelFolder.open(root().resolve("samples/models/stories260K"))) {
      LlamaFamily f = LlamaFamily.from(folder.config());
      Weights weights = Weights.of(folder.checkpoint());
      List<int[]> windows = calibration(folder, 4, 512);
      Gradients g = Gradients.compute(f, weights, windows, 2, done -> {});
      double p1;
      try (LlamaRuntime runtime = new LlamaRuntime(f, weights, true)) {
        p1 = Evaluator.evaluate(runtime, null, windows, 4, done -> {}).meanNll();
      }
      System.out.printf(
          "stories260K, 4 windows of 512: autograd loss %.7f, P1 mean NLL %.7f%n", g.loss(), p1);
      assertEquals(p1, g.loss(), 1e-5 * p1);
      assertEquals(5 * 7, g.names().size());
      assertEquals(4L * 5 * (64 * 64 * 2 + 32 * 64 * 2 + 172 * 64 * 3), g.bytes());
    }
  }

  @Test
  void benchmark128WindowsOf512InBatchesOf8OnTwoThreads() throws IOException {
    assumeTrue(
        Boolean.getBoolean("llmc.bench.gradients"), "set -Dllmc.bench.gradients=true to run");
    Engines.configure(2);
    try (ModelFolder folder = ModelFolder.open(root().resolve("samples/models/stories260K"))) {
      LlamaFamily f = LlamaFamily.from(folder.config());
      Weights weights = Weights.of(folder.checkpoint());
      List<int[]> windows = calibration(folder, 128, 512);
      assertEquals(128, windows.size());
      System.gc();
      long heapBefore = Runtime.getRuntime().totalMemory() - Runtime.getRuntime().freeMemory();
      long rssBefore = procStatus("VmRSS:");
      resetPeakRss();
      long peakBefore = procStatus("VmHWM:");
      Gradients g =
          Gradients.compute(
              f,
              weights,
              windows,
              8,
              done -> System.err.print(done % 32 == 0 ? done + " windows\n" : ""));
      long peak = procStatus("VmHWM:");
      System.out.printf(
          "stories260K gradients: 128 windows x 512, batch 8, 2 threads: %.2f s (%.3f s per batch),"
              + " loss %.4f, gradients %d bytes (%d linear parameters)%n",
          g.seconds(), g.seconds() / 16, g.loss(), g.bytes(), g.bytes() / 4);
      System.out.printf(
          "process RSS before %d MiB, peak during %d MiB (peak before %d MiB), Java heap before %d MiB%n",
          rssBefore >> 20, peak >> 20, peakBefore >> 20, heapBefore >> 20);
      assertTrue(g.loss() > 0);
    }
  }

  /** A {@code /proc/self/status} field in bytes (Linux), or -1. */
  private static long procStatus(String field) throws IOException {
    Path status = Path.of("/proc/self/status");
    if (!Files.exists(status)) {
      return -1;
    }
    for (String line : Files.readAllLines(status)) {
      if (line.startsWith(field)) {
        return Long.parseLong(line.substring(field.length()).trim().split("\\s+")[0]) * 1024;
      }
    }
    return -1;
  }

  /** Resets VmHWM to the current RSS (Linux 4.0+), so that the next peak is this run's. */
  private static void resetPeakRss() {
    try {
      Files.writeString(Path.of("/proc/self/clear_refs"), "5");
    } catch (IOException | RuntimeException e) {
      // Not Linux, or not allowed: the peak then includes what came before.
    }
  }
}
