package llmc.pipeline;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import llmc.formats.InvalidSettingException;
import org.junit.jupiter.api.Test;

class EvalStageTest {
  static Path root() {
    return Path.of(System.getProperty("llmc.root", "..")).toAbsolutePath().normalize();
  }

  static final Path STORIES = root().resolve("samples/models/stories260K");
  static final Path VALID = root().resolve("samples/data/tinystories/valid.jsonl");

  /**
   * What {@code llmc eval samples/models/stories260K --data samples/data/tinystories/valid.jsonl
   * --max-windows 4 --json} printed as its perplexity.
   */
  static final double CLI_PERPLEXITY = 4.3489698562761205;

  @Test
  void perplexityOfFourWindowsIsTheCommandLines() {
    List<String> progress = new ArrayList<>();
    EvalReport r =
        new EvalStage()
            .run(
                EvalSettings.of(STORIES, VALID).withMaxWindows(4),
                (task, done, total) -> progress.add(task + " " + done + "/" + total));
    assertEquals(CLI_PERPLEXITY, r.perplexity(), 1e-9 * CLI_PERPLEXITY);
    assertEquals(Math.exp(r.meanNll()), r.perplexity(), 1e-12 * r.perplexity());
    assertEquals(512, r.seqLen());
    assertEquals(4, r.windows());
    assertEquals(4 * 511, r.scoredTokens());
    assertEquals(120_862, r.streamTokens());
    assertEquals("P1", r.protocol());
    assertNull(r.base());
    assertNull(r.meanKl());
    assertEquals(List.of("eval: window 1/4", "eval: window 4/4"), ends(progress));

    ObjectNode json = Reports.toJson(r);
    List<String> keys = new ArrayList<>();
    json.fieldNames().forEachRemaining(keys::add);
    assertEquals(
        List.of(
            "model",
            "data",
            "protocol",
            "seq_len",
            "windows",
            "stream_tokens",
            "scored_tokens",
            "mean_nll",
            "perplexity",
            "seconds",
            "tokens_per_second"),
        keys);
  }

  @Test
  void batchZeroIsRefusedNamingTheSetting() {
    InvalidSettingException e =
        assertThrows(
            InvalidSettingException.class,
            () -> new EvalSettings(STORIES, VALID, "text", null, 4, 0, 0, null, null));
    assertTrue(e.getMessage().startsWith("batch 0"), e.getMessage());
    assertEquals(List.of("batch"), e.settings());
    assertEquals("--batch 0: give at least 1", e.message(name -> "--" + name));
  }

  @Test
  void settingsOutOfRangeAreRefused() {
    assertEquals(
        List.of("seqLen"),
        assertThrows(
                InvalidSettingException.class,
                () -> new EvalSettings(STORIES, VALID, null, 1, 0, 1, 0, null, null))
            .settings());
    assertEquals(
        List.of("maxWindows"),
        assertThrows(
                InvalidSettingException.class,
                () -> new EvalSettings(STORIES, VALID, null, null, -1, 1, 0, null, null))
            .settings());
    assertEquals(
        List.of("warmup"),
        assertThrows(
                InvalidSettingException.class,
                () -> new EvalSettings(STORIES, VALID, null, null, 0, 1, -1, null, null))
            .settings());
    assertEquals(
        List.of("model", "data"),
        assertThrows(InvalidSettingException.class, () -> EvalSettings.of(STORIES, null))
            .settings());
  }

  @Test
  void qualityGateThresholdsAreCheckedInTheSettingsWithTheSettingNamed() {
    EvalSettings withBase = EvalSettings.of(STORIES, VALID).withBase(STORIES);
    InvalidSettingException negative =
        assertThrows(InvalidSettingException.class, () -> withBase.withGates(-0.05, null, null));
    assertEquals(List.of("maxPerplexityIncrease"), negative.settings());
    assertEquals(
        "maxPerplexityIncrease -0.05: give a finite number, 0 or more", negative.getMessage());
    assertEquals(
        List.of("maxMeanKl"),
        assertThrows(
                InvalidSettingException.class, () -> withBase.withGates(null, Double.NaN, null))
            .settings());
    assertEquals(
        List.of("maxMeanKl"),
        assertThrows(
                InvalidSettingException.class,
                () -> withBase.withGates(null, Double.POSITIVE_INFINITY, null))
            .settings());
    InvalidSettingException aboveOne =
        assertThrows(InvalidSettingException.class, () -> withBase.withGates(null, null, 1.5));
    assertEquals("minTop1Agreement 1.5: give a fraction between 0 and 1", aboveOne.getMessage());
    assertEquals(
        List.of("minTop1Agreement"),
        assertThrows(InvalidSettingException.class, () -> withBase.withGates(null, null, -0.1))
            .settings());

    InvalidSettingException noBase =
        assertThrows(
            InvalidSettingException.class,
            () -> EvalSettings.of(STORIES, VALID).withGates(null, 0.1, null));
    assertEquals(List.of("maxMeanKl", "base"), noBase.settings());
    assertEquals(
        "--max-kl needs --base: a quality gate measures against a base model",
        noBase.message(name -> name.equals("maxMeanKl") ? "--max-kl" : "--" + name));

    EvalSettings edges = withBase.withGates(0.0, 0.0, 1.0);
    assertEquals(0.0, edges.maxPerplexityIncrease());
    assertEquals(1.0, edges.minTop1Agreement());
    assertTrue(edges.hasGates());
    assertFalse(withBase.hasGates());
  }

  @Test
  void aModelAgainstItselfPassesTightGatesWithTheMeasuredValuesOfTheReport() {
    EvalReport r =
        new EvalStage()
            .run(
                EvalSettings.of(STORIES, VALID)
                    .withMaxWindows(1)
                    .withBase(STORIES)
                    .withGates(1e-6, 1e-6, 1.0));
    assertEquals(Boolean.TRUE, r.passed());
    assertEquals(3, r.gates().size());

    QualityGate ppl = r.gates().get(0);
    assertEquals(QualityGate.PERPLEXITY_INCREASE, ppl.name());
    assertEquals("max", ppl.bound());
    assertEquals(1e-6, ppl.threshold());
    assertEquals((r.perplexity() - r.basePerplexity()) / r.basePerplexity(), ppl.measured());
    assertEquals(0.0, ppl.measured(), 1e-9);
    assertEquals(ppl.threshold() - ppl.measured(), ppl.margin());

    QualityGate kl = r.gates().get(1);
    assertEquals(QualityGate.MEAN_KL, kl.name());
    assertEquals(r.meanKl(), kl.measured());
    assertEquals(1e-6 - r.meanKl(), kl.margin());
    assertTrue(kl.passed());

    QualityGate top1 = r.gates().get(2);
    assertEquals(QualityGate.TOP1_AGREEMENT, top1.name());
    assertEquals("min", top1.bound());
    assertEquals(1.0, top1.measured());
    assertEquals(0.0, top1.margin());
    assertTrue(top1.passed());

    ObjectNode json = Reports.toJson(r);
    List<String> keys = new ArrayList<>();
    json.fieldNames().forEachRemaining(keys::add);
    assertEquals(
        List.of("top1_agreement", "passed", "gates", "seconds"),
        keys.subList(keys.indexOf("top1_agreement"), keys.indexOf("seconds") + 1));
    List<String> gateKeys = new ArrayList<>();
    json.get("gates").get(0).fieldNames().forEachRemaining(gateKeys::add);
    assertEquals(List.of("name", "bound", "threshold", "measured", "passed", "margin"), gateKeys);
    assertEquals("top1_agreement", json.at("/gates/2/name").asText());
  }

  @Test
  void gatesFailWhenTheMeasurementIsBeyondTheThresholdOrNotANumber() {
    QualityGate over = QualityGate.atMost(QualityGate.MEAN_KL, 0.01, 0.0125);
    assertFalse(over.passed());
    assertEquals(-0.0025, over.margin(), 1e-15);
    QualityGate under = QualityGate.atLeast(QualityGate.TOP1_AGREEMENT, 0.85, 0.8);
    assertFalse(under.passed());
    assertEquals(-0.05, under.margin(), 1e-15);
    assertTrue(QualityGate.atMost(QualityGate.PERPLEXITY_INCREASE, 0.05, 0.05).passed());
    assertFalse(QualityGate.atMost(QualityGate.MEAN_KL, 1, Double.NaN).passed());
    assertFalse(QualityGate.atLeast(QualityGate.TOP1_AGREEMENT, 0, Double.NaN).passed());
  }

  @Test
  void aWindowLongerThanTheContextIsRefusedOnceTheModelIsOpen() {
    InvalidSettingException e =
        assertThrows(
            InvalidSettingException.class,
            () ->
                new EvalStage()
                    .run(new EvalSettings(STORIES, VALID, null, 100_000, 1, 1, 0, null, null)));
    assertEquals(
        "seqLen 100000 must be between 2 and the model's context length 512", e.getMessage());
  }

  private static List<String> ends(List<String> progress) {
    return List.of(progress.getFirst(), progress.getLast());
  }
}
