package llmc.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code llmc compare}: each row is what inspect and eval say of that model; the chart is drawn.
 */
class CompareTest {
  @TempDir Path dir;

  @Test
  void rowsEqualEvalAndInspectOfEachModelAndTheChartIsAPng() throws IOException {
    Path rtn8 = dir.resolve("rtn8");
    Path q4 = dir.resolve("q4_0.gguf");
    Cli a =
        Cli.run(
            "quantize",
            Cli.stories(),
            "--method",
            "rtn",
            "--bits",
            "8",
            "--format",
            "compressed-tensors",
            "--out",
            rtn8.toString());
    assertEquals(0, a.exitCode(), a.err());
    Cli b = Cli.run("export", Cli.stories(), "--type", "q4_0", "--out", q4.toString());
    assertEquals(0, b.exitCode(), b.err());
    Path chart = dir.resolve("charts/compare.png");
    Cli c =
        Cli.run(
            "compare",
            rtn8.toString(),
            q4.toString(),
            "--base",
            Cli.stories(),
            "--data",
            Cli.valid(),
            "--max-windows",
            "4",
            "--chart",
            chart.toString(),
            "--json");
    assertEquals(0, c.exitCode(), c.err());
    JsonNode r = c.json();
    assertEquals(4, r.get("windows").asInt());
    JsonNode base = r.get("base");
    assertNull(base.get("mean_kl"));
    JsonNode[] rows = {r.get("models").get(0), r.get("models").get(1)};
    String[] formats = {"safetensors", "gguf"};
    Path[] models = {rtn8, q4};
    for (int i = 0; i < 2; i++) {
      Cli e =
          Cli.run(
              "eval",
              models[i].toString(),
              "--base",
              Cli.stories(),
              "--data",
              Cli.valid(),
              "--max-windows",
              "4",
              "--json");
      assertEquals(0, e.exitCode(), e.err());
      JsonNode eval = e.json();
      assertEquals(eval.get("perplexity").asDouble(), rows[i].get("perplexity").asDouble());
      assertEquals(eval.get("mean_kl").asDouble(), rows[i].get("mean_kl").asDouble());
      assertEquals(eval.get("top1_agreement").asDouble(), rows[i].get("top1_agreement").asDouble());
      assertEquals(eval.get("base_perplexity").asDouble(), base.get("perplexity").asDouble());
      assertEquals(
          eval.get("perplexity").asDouble() / eval.get("base_perplexity").asDouble() - 1,
          rows[i].get("perplexity_increase").asDouble(),
          1e-12);
      Cli in = Cli.run("inspect", models[i].toString(), "--json");
      assertEquals(
          in.json().get("size_on_disk_bytes").asLong(), rows[i].get("size_bytes").asLong());
      assertEquals(formats[i], rows[i].get("format").asText());
    }
    // 8-bit RTN is closer to the original than Q4_0, and larger.
    assertTrue(rows[0].get("perplexity").asDouble() < rows[1].get("perplexity").asDouble());
    assertTrue(rows[0].get("size_bytes").asLong() > rows[1].get("size_bytes").asLong());
    byte[] png = Files.readAllBytes(chart);
    assertArrayEquals(new byte[] {(byte) 0x89, 'P', 'N', 'G'}, Arrays.copyOf(png, 4), "a PNG file");
    assertEquals(chart.toString(), r.get("chart").asText());
  }
}
