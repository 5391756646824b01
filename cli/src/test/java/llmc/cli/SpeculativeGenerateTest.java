package llmc.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code llmc generate --draft}: stories260K with layers 1 and 3 dropped ({@code llmc prune
 * --drop-layers 1,3}) as the draft.
 */
class SpeculativeGenerateTest {
  @TempDir static Path dir;
  static Path draft;

  @BeforeAll
  static void cut() {
    draft = dir.resolve("layers-0-2-4");
    Cli r = Cli.run("prune", Cli.stories(), "--out", draft.toString(), "--drop-layers", "1,3");
    assertEquals(0, r.exitCode(), r.err());
  }

  static Cli generate(String... extra) {
    List<String> args =
        new java.util.ArrayList<>(
            List.of("generate", Cli.stories(), "--prompt", "Tom and Lily", "--max-tokens", "120"));
    args.addAll(List.of(extra));
    return Cli.run(args.toArray(String[]::new));
  }

  @Test
  void jsonWithADraftHasTheSpeculativeFieldsAndTheSameTextAsWithout() {
    Cli plain = generate("--json");
    assertEquals(0, plain.exitCode(), plain.err());
    Cli spec = generate("--json", "--draft", draft.toString(), "--draft-tokens", "4");
    assertEquals(0, spec.exitCode(), spec.err());
    JsonNode p = plain.json();
    JsonNode s = spec.json();
    assertFalse(p.has("speculative"), p.toString());
    assertEquals(120, s.get("generated_tokens").asInt());
    assertEquals(p.get("text").asText(), s.get("text").asText());
    assertEquals(p.get("tokens"), s.get("tokens"));

    JsonNode sp = s.get("speculative");
    assertEquals(draft.toString(), sp.get("draft").asText());
    assertEquals(4, sp.get("draft_tokens").asInt());
    int proposed = sp.get("proposed").asInt();
    int accepted = sp.get("accepted").asInt();
    int steps = sp.get("verification_steps").asInt();
    assertTrue(accepted > 0 && accepted < proposed, sp.toString()); // an untrained cut
    assertTrue(proposed <= 4 * steps, sp.toString());
    // Each verification step commits the accepted proposals and one token of the model's own.
    assertEquals(120, accepted + steps, sp.toString());
    assertEquals((double) accepted / proposed, sp.get("acceptance_rate").asDouble(), 1e-12);
    assertEquals(120.0 / steps, sp.get("tokens_per_verification_step").asDouble(), 1e-12);
  }

  @Test
  void textWithADraftPrintsTheSameTextAndOneLineOfAcceptance() {
    Cli plain = generate();
    Cli spec = generate("--draft", draft.toString());
    assertEquals(0, spec.exitCode(), spec.err());
    assertEquals(plain.out(), spec.out());
    List<String> lines = spec.err().lines().toList();
    assertEquals(2, lines.size(), spec.err());
    assertTrue(lines.get(0).startsWith("llmc: 120 tokens in "), lines.get(0));
    assertTrue(
        lines
            .get(1)
            .matches(
                "llmc: draft acceptance \\d+\\.\\d% \\(\\d+ of \\d+ proposed\\), \\d+\\.\\d\\d tokens per verification step \\(\\d+ steps\\)"),
        lines.get(1));
    assertEquals(1, plain.err().lines().count(), plain.err());
  }

  @Test
  void draftTokensOutOfRangeIsRefusedWithItsFlag() {
    Cli r = generate("--draft", draft.toString(), "--draft-tokens", "0");
    assertEquals(2, r.exitCode(), r.err());
    assertEquals("", r.out());
    assertEquals("llmc: error: --draft-tokens 0: give 1 to 64 tokens per step\n", r.err());
  }

  @Test
  void aDraftWithAnotherVocabularyIsRefusedNamingTheFlag() throws Exception {
    Path config = dir.resolve("small-vocab.json");
    Files.writeString(
        config,
        Files.readString(Path.of(Cli.stories()).resolve("config.json"))
            .replace("\"vocab_size\": 512", "\"vocab_size\": 256"));
    Path other = dir.resolve("small-vocab");
    Cli w = Cli.run("random-model", "--config", config.toString(), "--out", other.toString());
    assertEquals(0, w.exitCode(), w.err());
    Cli r = generate("--draft", other.toString());
    assertEquals(2, r.exitCode(), r.err());
    assertTrue(
        r.err()
            .startsWith("llmc: error: --draft " + other + " has a vocabulary of 256 tokens, MODEL"),
        r.err());
  }
}
