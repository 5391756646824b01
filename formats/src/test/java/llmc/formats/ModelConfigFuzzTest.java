package llmc.formats;

import com.code_intelligence.jazzer.junit.DictionaryEntries;
import com.code_intelligence.jazzer.junit.FuzzTest;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.condition.EnabledIfSystemProperty;

/**
 * Fuzzes config.json: ModelConfig.read of any bytes, then every accessor and a write-back. Without
 * JAZZER_FUZZ the method runs its corpus under {@code
 * src/test/resources/llmc/formats/ModelConfigFuzzTestInputs/read}; scripts/fuzz.sh fuzzes it.
 */
@Timeout(10)
class ModelConfigFuzzTest {

  @DictionaryEntries({
    "\"architectures\"",
    "\"hidden_size\"",
    "\"intermediate_size\"",
    "\"num_hidden_layers\"",
    "\"num_attention_heads\"",
    "\"num_key_value_heads\"",
    "\"head_dim\"",
    "\"vocab_size\"",
    "\"max_position_embeddings\"",
    "\"rms_norm_eps\"",
    "\"rope_theta\"",
    "\"rope_scaling\"",
    "\"rope_parameters\"",
    "\"rope_type\"",
    "\"factor\"",
    "\"low_freq_factor\"",
    "\"high_freq_factor\"",
    "\"original_max_position_embeddings\"",
    "\"llama3\"",
    "\"default\"",
    "\"tie_word_embeddings\"",
    "\"bos_token_id\"",
    "\"eos_token_id\"",
    "\"sliding_window\"",
    "\"quantization_config\"",
    "2147483648",
    "-1",
    "0",
    "1e400",
    "NaN",
    "null",
    "[]",
    "{}"
  })
  @FuzzTest(maxDuration = "60s")
  void read(byte[] data) {
    Path file = FuzzFiles.write("config", "config.json", data);
    FuzzFiles.expectBadInputOrSuccess(
        file,
        () -> {
          ModelConfig c = ModelConfig.read(file);
          c.architectures();
          c.architecture();
          c.modelType();
          c.hiddenSize();
          c.intermediateSize();
          c.numHiddenLayers();
          c.numAttentionHeads();
          c.numKeyValueHeads();
          c.headDim();
          c.vocabSize();
          c.maxPositionEmbeddings();
          c.rmsNormEps();
          c.ropeTheta();
          c.ropeScaling();
          c.tieWordEmbeddings();
          c.attentionBias();
          c.mlpBias();
          c.bosTokenId();
          c.eosTokenId();
          c.torchDtype();
          c.hiddenAct();
          c.slidingWindow();
          c.toString();
          c.write(FuzzFiles.folder("config").resolve("written.json"));
          ModelConfig.fromJson(c.json(), "copy");
        });
  }

  @Test
  void seedsParse() {
    FuzzFiles.assertSeedsParse(getClass(), "read", this::read);
  }

  /** Writes the corpus's seeds (run once by hand: -Dllmc.fuzz.writeSeeds=true). */
  @Test
  @EnabledIfSystemProperty(named = "llmc.fuzz.writeSeeds", matches = "true")
  void writeSeeds() throws IOException {
    Path stories =
        Path.of(System.getProperty("llmc.root", ".."), "samples/models/stories260K/config.json");
    FuzzFiles.seed(getClass(), "read", "stories260K", Files.readAllBytes(stories));
    seed(
        "llama3",
        """
        {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 2048,
         "intermediate_size": 8192, "num_hidden_layers": 16, "num_attention_heads": 32,
         "num_key_value_heads": 8, "vocab_size": 128256, "max_position_embeddings": 131072,
         "rms_norm_eps": 1e-05, "rope_theta": 500000.0,
         "rope_scaling": {"factor": 32.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                          "original_max_position_embeddings": 8192, "rope_type": "llama3"},
         "tie_word_embeddings": true, "bos_token_id": 128000, "eos_token_id": [128001, 128009],
         "torch_dtype": "bfloat16"}
        """);
    seed(
        "rope-parameters",
        """
        {"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "hidden_size": 64,
         "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
         "num_key_value_heads": 2, "head_dim": 16, "vocab_size": 100,
         "max_position_embeddings": 256, "rms_norm_eps": 1e-6, "attention_bias": true,
         "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0},
         "sliding_window": 4096, "use_sliding_window": false, "eos_token_id": 2}
        """);
    seed(
        "quantized",
        """
        {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 64,
         "intermediate_size": 172, "num_hidden_layers": 5, "num_attention_heads": 8,
         "vocab_size": 512, "max_position_embeddings": 512, "rms_norm_eps": 1e-05,
         "quantization_config": {"quant_method": "gptq", "bits": 4, "group_size": 32,
                                 "desc_act": false, "sym": true}}
        """);
  }

  private void seed(String name, String json) {
    FuzzFiles.seed(getClass(), "read", name, json.getBytes(StandardCharsets.UTF_8));
  }
}
