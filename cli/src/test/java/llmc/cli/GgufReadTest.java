package llmc.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.nio.file.Path;
import llmc.formats.ModelFolder;
import llmc.formats.gguf.GgmlType;
import llmc.model.LlamaFamily;
import llmc.model.Weights;
import llmc.model.gguf.GgufModelWriter;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code inspect}, {@code eval} and {@code generate} on GGUF files of stories260K written by
 * GgufModelWriter.
 */
class GgufReadTest {
  @TempDir static Path dir;

  static Path f32;
  static Path q80;

  @BeforeAll
  static void export() {
    f32 = write("stories-f32.gguf", GgmlType.F32);
    q80 = write("stories-q8_0.gguf", GgmlType.Q8_0);
  }

  /** stories260K as one GGUF file of {@code type}, without tokenizer keys. */
  static Path write(String name, GgmlType type) {
    try (ModelFolder folder = ModelFolder.open(Path.of(Cli.stories()))) {
      LlamaFamily family = LlamaFamily.from(folder.config());
      Weights weights = Weights.of(folder.checkpoint());
      var plan = GgufModelWriter.plan(family, weights, folder.checkpoint().names(), type, null);
      try (GgufModelWriter w =
          new GgufModelWriter(
              dir.resolve(name), false, family, "stories260K", type, plan, g -> {})) {
        for (GgufModelWriter.Tensor t : w.tensors()) {
          w.writeFloats(t.hfName(), weights.floats(t.hfName()));
        }
        return w.finish();
      }
    }
  }

  @Test
  void inspectJsonSummarisesTheFile() {
    Cli r =
        Cli.run(
            "inspect",
            q80.toString(),
            "--json",
            "--tensors",
            "--seq-len",
            "512",
            "--kv-dtype",
            "f32");
    assertEquals(0, r.exitCode(), r.err());
    JsonNode j = r.json();
    assertEquals("gguf", j.get("format").asText());
    assertEquals(3, j.get("gguf_version").asInt());
    assertEquals("llama", j.get("architecture").asText());
    // embed + final norm + 5 layers x (7 linear + 2 norms); tied: no output.weight
    assertEquals(2 + 5 * 9, j.get("tensor_count").asInt());
    assertEquals(260_032, j.get("parameters").asLong());
    JsonNode byDtype = j.get("parameters_by_dtype");
    // F32: the norms (64 each, 11 of them); F16: down_proj (in_features 172); Q8_0: everything else
    assertEquals(11 * 64, byDtype.get("f32").asLong());
    assertEquals(5 * 64 * 172, byDtype.get("f16").asLong());
    assertEquals(260_032 - 11 * 64 - 5 * 64 * 172, byDtype.get("q8_0").asLong());
    assertEquals(byDtype.get("q8_0").asLong() / 32 * 34, j.at("/bytes_by_dtype/q8_0").asLong());
    assertTrue(j.get("size_on_disk_bytes").asLong() > j.at("/memory/weights_bytes").asLong());
    assertEquals(64, j.at("/shape/hidden_size").asInt());
    assertEquals(4, j.at("/shape/num_key_value_heads").asInt());
    assertTrue(j.at("/shape/tie_word_embeddings").asBoolean());
    assertEquals(2L * 5 * 4 * 8 * 4 * 512, j.at("/memory/kv_cache_bytes").asLong());
    assertEquals("stories260K", j.at("/metadata/general.name").asText());
    assertEquals(7, j.at("/metadata/general.file_type").asInt());
    assertEquals(5, j.at("/metadata/llama.block_count").asInt());
    assertEquals(
        5 + 10, j.get("metadata_keys").asInt(), "general.* (5) and llama.* (10), no tokenizer.*");
    assertEquals(15, j.get("metadata").size());
    assertFalse(j.has("tokenizer"), "written without tokenizer keys");
    JsonNode tensors = j.get("tensors");
    assertEquals(47, tensors.size());
    assertEquals("token_embd.weight", tensors.get(0).get("name").asText());
    assertEquals("q8_0", tensors.get(0).get("dtype").asText());
    assertEquals("[512,64]", tensors.get(0).get("shape").toString());
    assertEquals("model.embed_tokens.weight", tensors.get(0).get("hf_name").asText());
  }

  @Test
  void inspectPrintsTheMetadataForPeople() {
    Cli r = Cli.run("inspect", f32.toString());
    assertEquals(0, r.exitCode(), r.err());
    assertTrue(r.out().contains("architecture  llama (GGUF v3, 47 tensors)"), r.out());
    assertTrue(r.out().contains("llama.attention.head_count_kv"), r.out());
  }

  @Test
  void evalOfTheF32FileGivesTheFolderPerplexity() {
    Cli folder =
        Cli.run("eval", Cli.stories(), "--data", Cli.valid(), "--max-windows", "2", "--json");
    assertEquals(0, folder.exitCode(), folder.err());
    Cli gguf =
        Cli.run(
            "eval",
            f32.toString(),
            "--tokenizer",
            Cli.stories(),
            "--data",
            Cli.valid(),
            "--max-windows",
            "2",
            "--json");
    assertEquals(0, gguf.exitCode(), gguf.err());
    assertEquals(
        folder.json().get("scored_tokens").asLong(), gguf.json().get("scored_tokens").asLong());
    assertEquals(
        folder.json().get("perplexity").asDouble(), gguf.json().get("perplexity").asDouble(), 1e-4);
    assertEquals(Cli.stories(), gguf.json().get("tokenizer").asText());
  }

  @Test
  void evalOfTheQ8FileAgainstTheFolderTakesTheTokenizerFromBase() {
    Cli r =
        Cli.run(
            "eval",
            q80.toString(),
            "--base",
            Cli.stories(),
            "--data",
            Cli.valid(),
            "--max-windows",
            "1",
            "--json");
    assertEquals(0, r.exitCode(), r.err());
    JsonNode j = r.json();
    assertTrue(j.get("mean_kl").asDouble() < 0.01, j.toString());
    assertEquals(j.get("base_perplexity").asDouble(), j.get("perplexity").asDouble(), 0.05);
  }

  @Test
  void generateFromTheF32FileTellsTheLilyStory() {
    Cli r =
        Cli.run(
            "generate",
            f32.toString(),
            "--tokenizer",
            Cli.stories(),
            "--prompt",
            "",
            "--max-tokens",
            "40");
    assertEquals(0, r.exitCode(), r.err());
    assertTrue(
        r.out().startsWith("Once upon a time, there was a little girl named Lily."), r.out());
  }

  @Test
  void withoutTokenizerTheUserIsToldToGiveOne() {
    String expected =
        "llmc: error: "
            + f32
            + ": llmc reads the tokenizer of a GGUF file from the original model"
            + " folder; set --tokenizer to it";
    Cli eval = Cli.run("eval", f32.toString(), "--data", Cli.valid(), "--max-windows", "1");
    assertEquals(2, eval.exitCode(), eval.err());
    assertEquals(expected, eval.err().strip());
    Cli generate = Cli.run("generate", f32.toString(), "--prompt", "Once");
    assertEquals(2, generate.exitCode(), generate.err());
    assertEquals(expected, generate.err().strip());
  }
}
