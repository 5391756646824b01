package llmc.model;

import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import llmc.formats.DType;
import llmc.formats.Json;
import llmc.formats.ModelConfig;

/** Paths of the bundled samples, and small random models of each supported architecture. */
final class TestModels {
  private TestModels() {}

  static Path root() {
    return Path.of(System.getProperty("llmc.root", "..")).toAbsolutePath().normalize();
  }

  static Path stories260K() {
    return root().resolve("samples/models/stories260K");
  }

  static Path validData() {
    return root().resolve("samples/data/tinystories/valid.jsonl");
  }

  /** A tiny config of the given architecture; {@code extra} is JSON merged over the defaults. */
  static ModelConfig config(String architecture, String modelType, String extra) {
    try {
      ObjectNode json =
          (ObjectNode)
              Json.mapper()
                  .readTree(
                      """
          {"architectures": ["%s"], "model_type": "%s", "hidden_size": 32, "intermediate_size": 48,
           "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
           "vocab_size": 64, "max_position_embeddings": 64, "rms_norm_eps": 1e-5,
           "rope_theta": 10000.0, "hidden_act": "silu", "tie_word_embeddings": false,
           "bos_token_id": 1, "eos_token_id": 2}"""
                          .formatted(architecture, modelType));
      json.setAll((ObjectNode) Json.mapper().readTree(extra));
      return ModelConfig.fromJson(json, architecture + " test config");
    } catch (IOException e) {
      throw new IllegalStateException(e);
    }
  }

  static Path randomModel(Path dir, ModelConfig config, long seed) {
    Path out = dir.resolve(config.architecture() + "-" + seed);
    RandomModel.write(config, null, out, seed, DType.F32, 0.15, 0.1);
    return out;
  }

  static boolean exists(Path p) {
    return Files.exists(p);
  }
}
