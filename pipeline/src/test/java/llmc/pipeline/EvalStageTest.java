package llmc.pipeline;

import static org.junit.jupiter.api.Assertions.assertEquals;
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
