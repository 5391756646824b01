package llmc.pipeline;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import llmc.formats.gguf.GgmlType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The README's "Using llmc from Java", run as a test: GPTQ on stories260K, the result exported to
 * GGUF, the quality measured, with no command line in between.
 */
class JavaApiExampleTest {
  @TempDir Path work;

  @Test
  void gptq4OnStories260KThenGgufCostsUnderEightPercentPerplexity() throws Exception {
    Path root = Path.of(System.getProperty("llmc.root"));
    Path model = root.resolve("samples/models/stories260K");
    Path train = root.resolve("samples/data/tinystories/train.jsonl");
    Path valid = root.resolve("samples/data/tinystories/valid.jsonl");

    // GPTQ, 4 bits, groups of 32, asymmetric, written as compressed-tensors (vLLM's layout);
    // progress as "task done/total" (the command line draws it as bars).
    List<String> progress = new ArrayList<>();
    QuantizeReport quantized =
        new QuantizeStage()
            .run(
                QuantizeSettings.builder(model, work.resolve("stories260K-w4"))
                    .bits(4)
                    .groupSize(32)
                    .symmetric(false)
                    .format(QuantizeSettings.Format.COMPRESSED_TENSORS)
                    .calibration(CalibrationSettings.of(train).withNsamples(32))
                    .eval(new EvaluationSettings(valid, 16))
                    .build(),
                (task, done, total) -> progress.add(task + " " + done + "/" + total));

    // The quantized folder as one GGUF file (read dequantized, stored as float16).
    ExportReport exported =
        new ExportStage()
            .run(
                ExportSettings.of(
                    work.resolve("stories260K-w4"),
                    work.resolve("stories260K-w4.gguf"),
                    GgmlType.F16));

    Comparison eval = quantized.eval();
    System.out.printf(
        "perplexity %.6f -> %.6f, KL %.6f, %d matrices, %s -> %s bytes, gguf %d bytes%n",
        eval.perplexityBefore(),
        eval.perplexityAfter(),
        eval.meanKl(),
        quantized.matrices().size(),
        quantized.size().inputBytes(),
        quantized.size().outputBytes(),
        exported.size().outputBytes());
    // Every phase reports: tokenizing the calibration file, the layers, the evaluation windows.
    List<String> tasks =
        progress.stream().map(p -> p.substring(0, p.lastIndexOf(' '))).distinct().toList();
    assertEquals(
        List.of("calibration: document", "gptq: layer", "eval: window"),
        tasks,
        progress.toString());
    assertTrue(progress.contains("gptq: layer 5/5"), progress.toString());
    String lastDocument =
        progress.stream()
            .filter(p -> p.startsWith("calibration"))
            .reduce((a, b) -> b)
            .orElseThrow();
    String[] counts = lastDocument.substring(lastDocument.lastIndexOf(' ') + 1).split("/");
    assertEquals(counts[1], counts[0], "calibration progress reaches its total");
    assertEquals(35, quantized.matrices().size()); // 5 layers x 7 linear layers
    assertEquals(16, eval.windows());
    // Measured: 4.7158 -> 5.0052 (+6.1%; 32 calibration windows, 16 evaluation windows of 512).
    assertEquals(4.7158, eval.perplexityBefore(), 1e-3);
    assertEquals(5.0052, eval.perplexityAfter(), 0.005 * 5.0052);
    assertTrue(eval.perplexityAfter() < 1.08 * eval.perplexityBefore(), eval.toString());
    assertTrue(eval.perplexityAfter() > eval.perplexityBefore(), eval.toString());
    assertTrue(Files.isRegularFile(work.resolve("stories260K-w4/llmc-report.json")));
    assertEquals(Files.size(work.resolve("stories260K-w4.gguf")), exported.size().outputBytes());
  }
}
