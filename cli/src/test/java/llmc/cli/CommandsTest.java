package llmc.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.Test;

class CommandsTest {

  @Test
  void inspectJsonReportsStories260kShapeAndMemory() {
    Cli r =
        Cli.run(
            "inspect",
            Cli.stories(),
            "--json",
            "--batch",
            "2",
            "--seq-len",
            "512",
            "--kv-dtype",
            "f32");
    assertEquals(0, r.exitCode(), r.err());
    JsonNode j = r.json();
    assertEquals("LlamaForCausalLM", j.get("architecture").asText());
    assertEquals(260_032, j.get("parameters").asLong());
    assertEquals(64, j.at("/shape/hidden_size").asInt());
    assertEquals(4, j.at("/shape/num_key_value_heads").asInt());
    // 2 (k and v) x 5 layers x 4 kv heads x 8 head_dim x 4 bytes x 2 x 512 tokens
    assertEquals(2L * 5 * 4 * 8 * 4 * 2 * 512, j.at("/memory/kv_cache_bytes").asLong());
    assertEquals(260_032L * 4, j.at("/memory/weights_bytes").asLong());
    assertEquals(
        j.at("/memory/weights_bytes").asLong() + j.at("/memory/kv_cache_bytes").asLong(),
        j.at("/memory/total_bytes").asLong());
  }

  @Test
  void inspectTensorsListsEveryTensor() {
    Cli r = Cli.run("inspect", Cli.stories(), "--tensors", "--json");
    assertEquals(0, r.exitCode(), r.err());
    JsonNode tensors = r.json().get("tensors");
    // embed + final norm + 5 layers x (7 linear + 2 norms)
    assertEquals(2 + 5 * 9, tensors.size());
    assertEquals("model.embed_tokens.weight", tensors.get(0).get("name").asText());
    assertEquals("[512,64]", tensors.get(0).get("shape").toString());
  }

  @Test
  void evalJsonGivesP1PerplexityOnFirstWindows() {
    Cli r = Cli.run("eval", Cli.stories(), "--data", Cli.valid(), "--max-windows", "3", "--json");
    assertEquals(0, r.exitCode(), r.err());
    JsonNode j = r.json();
    assertEquals(512, j.get("seq_len").asInt());
    assertEquals(3, j.get("windows").asInt());
    assertEquals(3 * 511, j.get("scored_tokens").asLong());
    assertEquals(Math.exp(j.get("mean_nll").asDouble()), j.get("perplexity").asDouble(), 1e-9);
    assertTrue(
        j.get("perplexity").asDouble() > 3 && j.get("perplexity").asDouble() < 7, j.toString());
  }

  @Test
  void evalAgainstItselfAsBaseHasZeroKl() {
    Cli r =
        Cli.run(
            "eval",
            Cli.stories(),
            "--data",
            Cli.valid(),
            "--max-windows",
            "1",
            "--base",
            Cli.stories(),
            "--json");
    assertEquals(0, r.exitCode(), r.err());
    assertEquals(0.0, r.json().get("mean_kl").asDouble(), 1e-6);
    assertEquals(1.0, r.json().get("top1_agreement").asDouble());
  }

  @Test
  void generateFromBosPrintsTheLilyStory() {
    Cli r = Cli.run("generate", Cli.stories(), "--prompt", "", "--max-tokens", "40");
    assertEquals(0, r.exitCode(), r.err());
    assertTrue(
        r.out()
            .startsWith(
                "Once upon a time, there was a little girl named Lily. She loved to play outside in the park."),
        r.out());
  }

  @Test
  void generateJsonContinuesThePrompt() {
    Cli r =
        Cli.run(
            "generate",
            Cli.stories(),
            "--prompt",
            "Once upon a time",
            "--max-tokens",
            "5",
            "--json");
    assertEquals(0, r.exitCode(), r.err());
    JsonNode j = r.json();
    assertEquals(5, j.get("generated_tokens").asInt());
    assertTrue(j.get("text").asText().startsWith("Once upon a time"), j.toString());
  }

  @Test
  void versionAndHelpWithExamples() {
    Cli v = Cli.run("--version");
    assertEquals(0, v.exitCode());
    assertTrue(v.out().startsWith("llmc 0."), v.out());
    for (String command : new String[] {"inspect", "eval", "generate", "random-model"}) {
      Cli h = Cli.run(command, "--help");
      assertEquals(0, h.exitCode());
      assertTrue(h.out().contains("Example:"), command + " help has an example");
    }
  }

  @Test
  void batchZeroIsRefusedNamingTheSetting() {
    for (Cli r :
        new Cli[] {
          Cli.run("inspect", Cli.stories(), "--batch", "0"),
          Cli.run("eval", Cli.stories(), "--data", Cli.valid(), "--batch", "0")
        }) {
      assertEquals(2, r.exitCode(), r.err());
      assertEquals("", r.out());
      // The setting as the library names it ("batch"); "--batch" once the CLI renders names.
      assertTrue(r.err().startsWith("llmc: error: "), r.err());
      assertTrue(r.err().contains("batch 0: give at least 1"), r.err());
    }
  }

  @Test
  void usageErrorExitsTwoWithOneLine() {
    Cli r = Cli.run("eval", Cli.stories()); // --data missing
    assertEquals(2, r.exitCode());
    assertTrue(r.err().contains("--data"), r.err());
  }
}
