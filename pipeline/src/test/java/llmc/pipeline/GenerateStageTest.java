package llmc.pipeline;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import llmc.formats.DType;
import llmc.formats.InvalidSettingException;
import llmc.formats.Json;
import llmc.formats.ModelConfig;
import llmc.formats.ModelFolder;
import llmc.model.RandomModel;
import llmc.model.Tokenizer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class GenerateStageTest {
  static final Path STORIES = EvalStageTest.STORIES;
  static final Progress NONE = (task, done, total) -> {};

  @TempDir Path dir;

  @Test
  void theModelAsItsOwnDraftGivesTheSameTextAllAcceptedFiveTokensPerStep() {
    GenerateSettings plain = GenerateSettings.of(STORIES, "Once upon a time", 40);
    GenerateReport greedy = new GenerateStage().run(plain, NONE);
    GenerateReport r = new GenerateStage().run(plain.withDraft(STORIES, 4), NONE);
    assertNull(greedy.speculative());
    assertEquals(greedy.tokens(), r.tokens());
    assertEquals(greedy.text(), r.text());
    GenerateReport.Speculative s = r.speculative();
    assertEquals(STORIES.toString(), s.draft());
    assertEquals(4, s.draftTokens());
    assertEquals(1.0, s.acceptanceRate());
    // 40 tokens: 8 steps of 4 accepted and one of the model's own; 4 proposals each.
    assertEquals(8, s.verificationSteps());
    assertEquals(32, s.proposed());
    assertEquals(32, s.accepted());
    assertEquals(5.0, s.tokensPerVerificationStep());

    ObjectNode json = Reports.toJson(r);
    List<String> keys = new ArrayList<>();
    json.fieldNames().forEachRemaining(keys::add);
    assertEquals(
        List.of(
            "model",
            "prompt",
            "text",
            "continuation",
            "prompt_tokens",
            "generated_tokens",
            "tokens",
            "seconds",
            "tokens_per_second",
            "speculative"),
        keys);
    List<String> parts = new ArrayList<>();
    json.get("speculative").fieldNames().forEachRemaining(parts::add);
    assertEquals(
        List.of(
            "draft",
            "draft_tokens",
            "proposed",
            "accepted",
            "acceptance_rate",
            "verification_steps",
            "tokens_per_verification_step"),
        parts);
    assertTrue(!Reports.toJson(greedy).has("speculative"));
  }

  @Test
  void draftTokensOutsideOneToSixtyFourAreRefusedNamingTheSetting() {
    for (int k : new int[] {0, -1, 65}) {
      InvalidSettingException e =
          assertThrows(
              InvalidSettingException.class,
              () -> GenerateSettings.of(STORIES, "", 4).withDraft(STORIES, k));
      assertEquals(List.of("draftTokens"), e.settings());
      assertEquals("draftTokens " + k + ": give 1 to 64 tokens per step", e.getMessage());
    }
    assertEquals(64, GenerateSettings.of(STORIES, "", 4).withDraft(STORIES, 64).draftTokens());
  }

  @Test
  void aDraftWithAnotherVocabularySizeIsRefusedNamingTheDraft() throws IOException {
    // A random model of stories260K's shape with 256 tokens instead of 512.
    ObjectNode json = (ObjectNode) Json.mapper().readTree(STORIES.resolve("config.json").toFile());
    json.put("vocab_size", 256);
    Path draft = dir.resolve("small-vocab");
    RandomModel.write(
        ModelConfig.fromJson(json, "small-vocab config"), null, draft, 1, DType.F32, 0.02, 0.1);
    InvalidSettingException e =
        assertThrows(
            InvalidSettingException.class,
            () ->
                new GenerateStage()
                    .run(GenerateSettings.of(STORIES, "One day", 10).withDraft(draft, 4), NONE));
    assertEquals(List.of("draft", "model"), e.settings());
    assertTrue(e.getMessage().contains("vocabulary of 256 tokens"), e.getMessage());
    assertTrue(e.getMessage().contains("one of 512"), e.getMessage());
  }

  @Test
  void aDraftWithTheSameSizeButAnotherTokenizerIsRefusedNamingTheDraft() throws IOException {
    // Two tokens of the prompt's first word swap ids in the draft's tokenizer.json.
    int first;
    try (ModelFolder stories = ModelFolder.open(STORIES);
        Tokenizer tokenizer = Tokenizer.open(stories)) {
      first = tokenizer.encodeDocument("Once upon a time")[1];
    }
    Path draft = copyOfStories("other-tokenizer");
    ObjectNode json = (ObjectNode) Json.mapper().readTree(draft.resolve("tokenizer.json").toFile());
    ObjectNode vocab = (ObjectNode) json.get("model").get("vocab");
    String a = null;
    String b = null;
    for (Map.Entry<String, com.fasterxml.jackson.databind.JsonNode> entry : vocab.properties()) {
      if (entry.getValue().asInt() == first) {
        a = entry.getKey();
      } else if (entry.getValue().asInt() == 300) {
        b = entry.getKey();
      }
    }
    vocab.put(a, 300);
    vocab.put(b, first);
    Json.writePretty(draft.resolve("tokenizer.json"), json);
    InvalidSettingException e =
        assertThrows(
            InvalidSettingException.class,
            () ->
                new GenerateStage()
                    .run(
                        GenerateSettings.of(STORIES, "Once upon a time", 10).withDraft(draft, 4),
                        NONE));
    assertEquals(List.of("draft", "model"), e.settings());
    assertTrue(e.getMessage().contains("another tokenizer"), e.getMessage());
  }

  private Path copyOfStories(String name) throws IOException {
    Path out = dir.resolve(name);
    Files.createDirectories(out);
    try (var files = Files.list(STORIES)) {
      for (Path f : files.toList()) {
        Files.copy(f, out.resolve(f.getFileName()));
      }
    }
    return out;
  }
}
