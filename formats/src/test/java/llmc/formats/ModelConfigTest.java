package llmc.formats;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ModelConfigTest {

  @TempDir Path dir;

  private static final String LLAMA3 =
      """
            {
              "architectures": ["LlamaForCausalLM"],
              "model_type": "llama",
              "hidden_size": 2048,
              "intermediate_size": 8192,
              "num_hidden_layers": 16,
              "num_attention_heads": 32,
              "num_key_value_heads": 8,
              "vocab_size": 128256,
              "max_position_embeddings": 131072,
              "rms_norm_eps": 1e-05,
              "rope_theta": 500000.0,
              "rope_scaling": {"factor": 32.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                               "original_max_position_embeddings": 8192, "rope_type": "llama3"},
              "tie_word_embeddings": true,
              "bos_token_id": 128000,
              "eos_token_id": [128001, 128008, 128009],
              "torch_dtype": "bfloat16",
              "custom_nested": {"z": [1, 2.5, "x", null, {"deep": true}], "a": "\u00e9\u4e2d"},
              "quantization_hint": 0.1,
              "zzz_last": "kept"
            }
            """;

  private Path write(String name, String json) throws IOException {
    return Files.writeString(dir.resolve(name), json);
  }

  private static List<String> keys(JsonNode node) {
    List<String> keys = new ArrayList<>();
    node.fieldNames().forEachRemaining(keys::add);
    return keys;
  }

  @Test
  void llama3FieldsDefaultsAndRopeScalingAreRead() throws IOException {
    ModelConfig config = ModelConfig.read(write("config.json", LLAMA3));
    assertEquals("LlamaForCausalLM", config.architecture());
    assertEquals("llama", config.modelType());
    assertEquals(2048, config.hiddenSize());
    assertEquals(8, config.numKeyValueHeads());
    assertEquals(64, config.headDim()); // 2048 / 32
    assertEquals(1e-5, config.rmsNormEps());
    assertEquals(500000.0, config.ropeTheta());
    assertEquals(new ModelConfig.RopeScaling("llama3", 32.0, 1.0, 4.0, 8192), config.ropeScaling());
    assertEquals(128000, config.bosTokenId());
    assertEquals(128001, config.eosTokenId());
    assertEquals("bfloat16", config.torchDtype());
    assertEquals("silu", config.hiddenAct());
    assertTrue(config.tieWordEmbeddings());
    assertEquals(false, config.attentionBias());
    assertNull(config.slidingWindow());
  }

  @Test
  void absentOptionalKeysTakeDocumentedDefaults() {
    ObjectNode json = Json.mapper().createObjectNode();
    json.putArray("architectures").add("Qwen2ForCausalLM");
    json.put("hidden_size", 896)
        .put("intermediate_size", 4864)
        .put("num_hidden_layers", 24)
        .put("num_attention_heads", 14)
        .put("vocab_size", 151936)
        .put("sliding_window", 32768);
    ModelConfig config = ModelConfig.fromJson(json, "qwen/config.json");
    assertEquals(14, config.numKeyValueHeads());
    assertEquals(64, config.headDim());
    assertEquals(2048, config.maxPositionEmbeddings());
    assertEquals(1e-6, config.rmsNormEps());
    assertEquals(10000.0, config.ropeTheta());
    assertNull(config.ropeScaling());
    assertEquals(false, config.tieWordEmbeddings());
    assertEquals(true, config.attentionBias()); // Qwen2 has q/k/v biases without the key
    assertEquals(false, config.mlpBias());
    assertNull(config.bosTokenId());
    assertNull(config.torchDtype());
    assertEquals(32768, config.slidingWindow());
  }

  @Test
  void unknownKeysSurviveWriteAndReadInOrder() throws IOException {
    Path source = write("config.json", LLAMA3);
    ModelConfig config = ModelConfig.read(source);
    Path copy = dir.resolve("copy.json");
    config.write(copy);
    ModelConfig reread = ModelConfig.read(copy);
    JsonNode original = Json.mapper().readTree(Files.readString(source));
    assertEquals(original, reread.json());
    assertEquals(keys(original), keys(reread.json()));
    for (String key : List.of("custom_nested", "quantization_hint", "zzz_last", "rope_scaling")) {
      assertEquals(
          Json.mapper().writeValueAsString(original.get(key)),
          Json.mapper().writeValueAsString(reread.json().get(key)),
          key);
    }
    assertEquals(
        Files.readString(copy), Json.pretty(reread.json())); // write(read(write(x))) is stable
    assertTrue(Files.readString(copy).contains("\n  \"hidden_size\": 2048,\n"));
  }

  @Test
  void withEditsOnlyTheEditedKey() throws IOException {
    ModelConfig config = ModelConfig.read(write("config.json", LLAMA3));
    ModelConfig edited = config.with(json -> json.put("num_hidden_layers", 12));
    assertEquals(12, edited.numHiddenLayers());
    assertEquals(16, config.numHiddenLayers());
    ObjectNode expected = config.json();
    expected.put("num_hidden_layers", 12);
    assertEquals(expected, edited.json());
    assertEquals(keys(config.json()), keys(edited.json()));
  }

  @Test
  void configMissingRequiredKeyNamesFileAndKey() throws IOException {
    Path file = write("config.json", LLAMA3.replace("\"vocab_size\": 128256,", ""));
    TestFiles.assertBadInput(() -> ModelConfig.read(file), "config.json", "vocab_size");
    Path noArch = write("noarch.json", LLAMA3.replace("[\"LlamaForCausalLM\"]", "[]"));
    TestFiles.assertBadInput(() -> ModelConfig.read(noArch), "noarch.json", "architectures");
    Path wrongType =
        write(
            "wrongtype.json", LLAMA3.replace("\"hidden_size\": 2048", "\"hidden_size\": \"big\""));
    TestFiles.assertBadInput(() -> ModelConfig.read(wrongType), "wrongtype.json", "hidden_size");
  }

  @Test
  void invalidJsonConfigNamesFile() throws IOException {
    Path file = write("broken.json", "{\"hidden_size\": 64,");
    TestFiles.assertBadInput(() -> ModelConfig.read(file), "broken.json", "not valid JSON");
  }
}
