package llmc.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code llmc eval --base} with quality gates: the report as usual, exit 0 when every gate passes
 * and 3 when one fails, the measured values those of the report.
 */
class EvalGateTest {
  @TempDir static Path dir;

  /** stories260K quantized by RTN to 3 bits: visibly worse than the original. */
  static Path rtn3;

  @BeforeAll
  static void quantizeRtn3() {
    rtn3 = dir.resolve("rtn3");
    Cli q =
        Cli.run(
            "quantize",
            Cli.stories(),
            "--out",
            rtn3.toString(),
            "--method",
            "rtn",
            "--bits",
            "3",
            "--format",
            "dense");
    assertEquals(0, q.exitCode(), q.err());
  }

  static Cli eval(String... gates) {
    List<String> args =
        new ArrayList<>(
            List.of(
                "eval",
                rtn3.toString(),
                "--data",
                Cli.valid(),
                "--max-windows",
                "2",
                "--base",
                Cli.stories()));
    args.addAll(List.of(gates));
    return Cli.run(args.toArray(String[]::new));
  }

  private static double increase(JsonNode report) {
    double ppl = report.get("perplexity").asDouble();
    double base = report.get("base_perplexity").asDouble();
    return (ppl - base) / base;
  }

  @Test
  void generousGatesPassWithExitZeroAndTheReportsOwnNumbers() {
    Cli r = eval("--max-ppl-increase", "500%", "--max-kl", "5", "--min-top1", "0.01", "--json");
    assertEquals(0, r.exitCode(), r.err());
    assertEquals("", r.err());
    JsonNode j = r.json();
    assertTrue(j.get("passed").asBoolean(), j.toString());
    JsonNode gates = j.get("gates");
    assertEquals(3, gates.size());

    assertEquals("perplexity_increase", gates.at("/0/name").asText());
    assertEquals("max", gates.at("/0/bound").asText());
    assertEquals(5.0, gates.at("/0/threshold").asDouble());
    assertEquals(increase(j), gates.at("/0/measured").asDouble());
    assertTrue(increase(j) > 0.01, "RTN 3 bits costs perplexity: " + increase(j));
    assertEquals(5.0 - increase(j), gates.at("/0/margin").asDouble());

    assertEquals("mean_kl", gates.at("/1/name").asText());
    assertEquals(5.0, gates.at("/1/threshold").asDouble());
    assertEquals(j.get("mean_kl").asDouble(), gates.at("/1/measured").asDouble());
    assertEquals(5.0 - j.get("mean_kl").asDouble(), gates.at("/1/margin").asDouble());

    assertEquals("top1_agreement", gates.at("/2/name").asText());
    assertEquals("min", gates.at("/2/bound").asText());
    assertEquals(0.01, gates.at("/2/threshold").asDouble());
    assertEquals(j.get("top1_agreement").asDouble(), gates.at("/2/measured").asDouble());
    assertEquals(j.get("top1_agreement").asDouble() - 0.01, gates.at("/2/margin").asDouble());
    for (JsonNode gate : gates) {
      assertTrue(gate.get("passed").asBoolean(), gate.toString());
      assertTrue(gate.get("margin").asDouble() > 0, gate.toString());
    }
  }

  @Test
  void noPerplexityIncreaseAndFullAgreementFailWithExitThreeNamingTheGates() {
    Cli r = eval("--max-ppl-increase", "0%", "--max-kl", "5", "--min-top1", "1.0", "--json");
    assertEquals(Llmc.QUALITY_GATE_FAILED, r.exitCode(), r.err());
    assertEquals(3, r.exitCode());
    assertEquals("", r.err(), "nothing but the report");
    JsonNode j = r.json();
    assertEquals(false, j.get("passed").asBoolean(true));
    assertTrue(j.get("perplexity").asDouble() > j.get("base_perplexity").asDouble());

    JsonNode ppl = j.at("/gates/0");
    assertEquals("perplexity_increase", ppl.get("name").asText());
    assertEquals(false, ppl.get("passed").asBoolean(true));
    assertEquals(0.0, ppl.get("threshold").asDouble());
    assertEquals(increase(j), ppl.get("measured").asDouble());
    assertEquals(-increase(j), ppl.get("margin").asDouble());

    JsonNode kl = j.at("/gates/1");
    assertEquals("mean_kl", kl.get("name").asText());
    assertTrue(kl.get("passed").asBoolean(), "the generous KL gate passes: " + kl);

    JsonNode top1 = j.at("/gates/2");
    assertEquals("top1_agreement", top1.get("name").asText());
    assertEquals(false, top1.get("passed").asBoolean(true));
    double agreement = j.get("top1_agreement").asDouble();
    assertTrue(agreement < 1 && agreement > 0.3, "RTN 3 bits disagrees often: " + agreement);
    assertEquals(agreement, top1.get("measured").asDouble());
    assertEquals(agreement - 1.0, top1.get("margin").asDouble());
  }

  @Test
  void textOutputSaysWhichGateFailedAndByHowMuch() {
    JsonNode j = eval("--max-ppl-increase", "0.5%", "--min-top1", "100%", "--json").json();
    Cli r = eval("--max-ppl-increase", "0.5%", "--min-top1", "100%");
    assertEquals(3, r.exitCode(), r.err());
    assertEquals("", r.err());
    List<String> lines = r.out().lines().toList();
    List<String> gateLines = lines.stream().filter(l -> l.startsWith("gate ")).toList();
    assertEquals(2, gateLines.size(), r.out());

    Matcher ppl =
        Pattern.compile(
                "gate failed: perplexity \\+(\\d+\\.\\d\\d)% > \\+0\\.50% allowed, by (\\d+\\.\\d\\d)"
                    + " points \\(--max-ppl-increase\\)")
            .matcher(gateLines.get(0));
    assertTrue(ppl.matches(), gateLines.get(0));
    assertEquals(100 * increase(j), Double.parseDouble(ppl.group(1)), 0.005);
    assertEquals(100 * increase(j) - 0.5, Double.parseDouble(ppl.group(2)), 0.005);

    Matcher top1 =
        Pattern.compile(
                "gate failed: top-1 agreement (\\d+\\.\\d\\d)% < 100\\.00% required, by"
                    + " (\\d+\\.\\d\\d) points \\(--min-top1\\)")
            .matcher(gateLines.get(1));
    assertTrue(top1.matches(), gateLines.get(1));
    double agreement = j.get("top1_agreement").asDouble();
    assertEquals(100 * agreement, Double.parseDouble(top1.group(1)), 0.005);
    assertEquals(100 * (1 - agreement), Double.parseDouble(top1.group(2)), 0.005);
    assertTrue(lines.getFirst().startsWith("perplexity "), r.out());
  }

  @Test
  void aThresholdWithoutBaseExitsTwoWithOneLineNamingTheFlag() {
    for (String flag : new String[] {"--max-ppl-increase", "--max-kl", "--min-top1"}) {
      Cli r = Cli.run("eval", Cli.stories(), "--data", Cli.valid(), flag, "0.5");
      assertEquals(2, r.exitCode(), r.err());
      assertEquals("", r.out());
      assertEquals(
          "llmc: error: " + flag + " needs --base: a quality gate measures against a base model",
          r.err().strip());
    }
  }

  @Test
  void aThresholdThatIsNoNumberOrOutOfRangeExitsTwoWithOneLine() {
    Cli word = eval("--max-ppl-increase", "abc");
    assertEquals(2, word.exitCode(), word.err());
    assertEquals("", word.out());
    assertEquals(
        "llmc: error: --max-ppl-increase 'abc': give a percentage like 5% or a fraction like 0.05",
        word.err().strip());

    Cli overFull = eval("--min-top1", "150%");
    assertEquals(2, overFull.exitCode(), overFull.err());
    assertEquals(
        "llmc: error: --min-top1 1.5: give a fraction between 0 and 1", overFull.err().strip());

    Cli negative = eval("--max-kl", "-0.1");
    assertEquals(2, negative.exitCode(), negative.err());
    assertEquals(
        "llmc: error: --max-kl -0.1: give a finite number, 0 or more", negative.err().strip());
  }

  @Test
  void percentagesAndFractionsAreTheSameThreshold() {
    assertEquals(0.05, EvalCommand.fraction("--max-ppl-increase", "5%"));
    assertEquals(0.05, EvalCommand.fraction("--max-ppl-increase", "0.05"));
    assertEquals(0.0731, EvalCommand.fraction("--max-ppl-increase", "7.31%"));
    assertEquals(0.85, EvalCommand.fraction("--min-top1", " 85 % "));
    assertEquals(null, EvalCommand.fraction("--min-top1", null));
  }
}
