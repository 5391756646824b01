package llmc.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The quantization issue's acceptance figures on stories260K: C1 with the first 128 windows of 512
 * tokens of train.jsonl, P1 on valid.jsonl, 4 bits, groups of 32, asymmetric, against the
 * independent PyTorch implementation (RTN 5.2444, GPTQ 5.1025).
 */
class QuantizationQualityTest {
  @TempDir Path dir;

  private double perplexityAfter(String... args) {
    Cli r =
        QuantizeTest.quantizeModel(
            Cli.stories(), dir.resolve(String.join("", args).replaceAll("\\W", "")), args);
    assertEquals(4.8413, r.json().at("/eval/perplexity_before").asDouble(), 5e-4);
    return r.json().at("/eval/perplexity_after").asDouble();
  }

  @Test
  void gptq4BitBeatsRtn4BitAndBothMatchTheReference() {
    String[] common = fourBitGroup32();
    double rtn = perplexityAfter(concat(common, "--method", "rtn"));
    double gptq =
        perplexityAfter(concat(common, "--method", "gptq", "--calib", QuantizeTest.train()));
    assertEquals(5.2444, rtn, 5.2444 * 0.005, "RTN within 0.5%");
    assertTrue(gptq <= 5.1025 * 1.01, "GPTQ within 1% or lower: " + gptq);
    assertTrue(gptq < rtn, "GPTQ " + gptq + " beats RTN " + rtn);
  }

  /**
   * AWQ (issue 15's rows: scales only 5.2109, with clipping 5.1786 in the independent PyTorch
   * implementation): within 1% of each, with clipping below RTN; every search's output error at
   * most plain RTN's; the scales folded into the norms, which now differ from the model's.
   */
  @Test
  void awqMatchesTheReferenceAndWithClippingBeatsRtn() throws Exception {
    String[] common = concat(fourBitGroup32(), "--calib", QuantizeTest.train());
    Path scalesOnly = dir.resolve("awq");
    Cli r =
        QuantizeTest.quantizeModel(Cli.stories(), scalesOnly, concat(common, "--method", "awq"));
    double awq = r.json().at("/eval/perplexity_after").asDouble();
    assertEquals(5.2109, awq, 5.2109 * 0.01, "AWQ within 1%");
    com.fasterxml.jackson.databind.JsonNode searches = r.json().get("awq");
    assertEquals(5 * 4, searches.size(), "one search per input of each layer");
    int scaled = 0;
    for (com.fasterxml.jackson.databind.JsonNode a : searches) {
      assertTrue(
          a.get("output_error").asDouble() <= a.get("rtn_output_error").asDouble(), a.toString());
      scaled += a.get("alpha").asDouble() > 0 ? 1 : 0;
    }
    assertTrue(scaled > 10, "most inputs scaled: " + searches);
    try (llmc.formats.ModelFolder in = llmc.formats.ModelFolder.open(Path.of(Cli.stories()));
        llmc.formats.ModelFolder out = llmc.formats.ModelFolder.open(scalesOnly)) {
      String norm = "model.layers.0.input_layernorm.weight";
      assertTrue(
          !java.util.Arrays.equals(in.checkpoint().floats(norm), out.checkpoint().floats(norm)),
          "the scales are folded into " + norm);
    }
    double clip = perplexityAfter(concat(common, "--method", "awq", "--clip", "mse"));
    assertEquals(5.1786, clip, 5.1786 * 0.01, "AWQ with clipping within 1%");
    assertTrue(
        clip < 5.2444 && clip < awq, "AWQ with clipping " + clip + " beats RTN and AWQ " + awq);
  }

  /** 4 bits, groups of 32, asymmetric, compressed-tensors, evaluated on valid.jsonl. */
  private static String[] fourBitGroup32() {
    return new String[] {
      "--bits",
      "4",
      "--group-size",
      "32",
      "--asym",
      "--format",
      "compressed-tensors",
      "--eval",
      Cli.valid()
    };
  }

  private static String[] concat(String[] a, String... b) {
    String[] out = java.util.Arrays.copyOf(a, a.length + b.length);
    System.arraycopy(b, 0, out, a.length, b.length);
    return out;
  }
}
