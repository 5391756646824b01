package llmc.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import java.nio.file.Path;
import java.util.SplittableRandom;
import java.util.stream.Stream;
import llmc.formats.BadInputException;
import llmc.formats.ModelConfig;
import llmc.formats.ModelFolder;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/** The runtime (Java kernels) agrees with the plain-Java reference forward to 1e-4 in logits. */
class RuntimeCrossCheckTest {
  @TempDir static Path dir;

  static Stream<Arguments> architectures() {
    return Stream.of(
        Arguments.of(
            "llama3 rope scaling, tied",
            TestModels.config(
                "LlamaForCausalLM",
                "llama",
                """
            {"tie_word_embeddings": true, "rope_theta": 500000.0, "max_position_embeddings": 128,
             "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                              "high_freq_factor": 4.0, "original_max_position_embeddings": 16}}""")),
        Arguments.of(
            "smollm shape (tied, theta 1e5, MHA)",
            TestModels.config(
                "LlamaForCausalLM",
                "llama",
                """
            {"tie_word_embeddings": true, "rope_theta": 100000, "num_key_value_heads": 4}""")),
        Arguments.of(
            "mistral sliding window 5",
            TestModels.config(
                "MistralForCausalLM",
                "mistral",
                """
            {"sliding_window": 5}""")),
        Arguments.of(
            "qwen2 q/k/v biases",
            TestModels.config(
                "Qwen2ForCausalLM",
                "qwen2",
                """
            {"num_key_value_heads": 1}""")),
        Arguments.of(
            "qwen3 q/k norm, head_dim 16 != hidden/heads",
            TestModels.config(
                "Qwen3ForCausalLM",
                "qwen3",
                """
            {"head_dim": 16, "attention_bias": false}""")));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("architectures")
  void djlLogitsMatchPlainJavaWithin1e4(String name, ModelConfig config) {
    assertAgreement(name, config, 2, 12);
  }

  @Test
  void blockedCausalAttentionOver300TokensMatchesPlainJava() {
    // 300 tokens span three query blocks of 128, the last one partial.
    assertAgreement(
        "long window",
        TestModels.config(
            "MistralForCausalLM",
            "mistral",
            """
        {"max_position_embeddings": 512, "sliding_window": 200}"""),
        1,
        300);
    assertAgreement(
        "long window",
        TestModels.config(
            "LlamaForCausalLM",
            "llama",
            """
        {"max_position_embeddings": 512}"""),
        1,
        300);
  }

  private static void assertAgreement(String name, ModelConfig config, int batch, int length) {
    Path model = TestModels.randomModel(dir, config, (name + config.architecture()).hashCode());
    int[][] tokens = new int[batch][length];
    SplittableRandom random = new SplittableRandom(7);
    for (int[] row : tokens) {
      for (int t = 0; t < row.length; t++) {
        row[t] = random.nextInt(config.vocabSize());
      }
    }
    try (ModelFolder folder = ModelFolder.open(model)) {
      LlamaFamily family = LlamaFamily.from(folder.config());
      Weights weights = Weights.of(folder.checkpoint());
      ReferenceLlama reference = new ReferenceLlama(family, weights);
      try (LlamaRuntime runtime = new LlamaRuntime(family, weights, true);
          NDManager scope = runtime.manager().newSubManager()) {
        NDArray logits = runtime.forward(scope, tokens); // batch of 2 windows at once
        float[] got = logits.toFloatArray();
        double maxDiff = 0;
        double maxAbs = 0;
        for (int b = 0; b < tokens.length; b++) {
          float[][] expected = reference.logits(tokens[b]);
          for (int t = 0; t < tokens[b].length; t++) {
            for (int v = 0; v < family.vocab(); v++) {
              float g = got[(b * tokens[b].length + t) * family.vocab() + v];
              maxDiff = Math.max(maxDiff, Math.abs(g - expected[t][v]));
              maxAbs = Math.max(maxAbs, Math.abs(expected[t][v]));
            }
          }
        }
        assertTrue(maxAbs > 0.1, "logits are not trivially small: " + maxAbs);
        assertTrue(maxDiff < 1e-4, name + ": max |djl - reference| = " + maxDiff);
      }
    }
  }

  @Test
  void kvCacheDecodingMatchesPlainJavaAcrossTheCacheGrowthAndTheSlidingWindow() {
    // A 20-token prompt, then one token at a time to 150: the cache grows past its first
    // capacity (64), and the window of 40 keeps moving over cached keys.
    ModelConfig config =
        TestModels.config(
            "MistralForCausalLM",
            "mistral",
            """
        {"max_position_embeddings": 256, "sliding_window": 40}""");
    Path model = TestModels.randomModel(dir, config, 11);
    int[] tokens = new SplittableRandom(3).ints(150, 0, config.vocabSize()).toArray();
    try (ModelFolder folder = ModelFolder.open(model)) {
      LlamaFamily family = LlamaFamily.from(folder.config());
      Weights weights = Weights.of(folder.checkpoint());
      float[][] expected = new ReferenceLlama(family, weights).logits(tokens);
      try (LlamaRuntime runtime = new LlamaRuntime(family, weights, true);
          NDManager scope = runtime.manager().newSubManager()) {
        KvCache cache = new KvCache(family.layers());
        double maxDiff = 0;
        int position = 0;
        int step = 20;
        while (position < tokens.length) {
          int[] chunk = java.util.Arrays.copyOfRange(tokens, position, position + step);
          NDArray x = runtime.embed(scope, new int[][] {chunk});
          for (int i = 0; i < family.layers(); i++) {
            x = runtime.runLayer(runtime.layer(i), x, position, cache, CaptureHook.NONE);
          }
          float[] got = runtime.logits(x).toFloatArray(); // [1, step, V]
          for (int t = 0; t < step; t++) {
            for (int v = 0; v < family.vocab(); v++) {
              maxDiff =
                  Math.max(
                      maxDiff, Math.abs(got[t * family.vocab() + v] - expected[position + t][v]));
            }
          }
          position += step;
          step = 1;
        }
        assertEquals(150, cache.length());
        assertTrue(maxDiff < 1e-4, "max |cached decoding - reference| = " + maxDiff);
      }
    }
  }

  @Test
  void aLayerGivesTheSameBitsEveryTimeWhateverTheJitHasCompiled() {
    // The first calls run interpreted, later ones compiled: the bits must not change.
    try (ModelFolder folder = ModelFolder.open(TestModels.stories260K())) {
      LlamaFamily family = LlamaFamily.from(folder.config());
      try (LlamaRuntime runtime = new LlamaRuntime(family, Weights.of(folder.checkpoint()), true)) {
        DecoderLayer layer = runtime.layer(0);
        int[] tokens = new SplittableRandom(2).ints(256, 0, family.vocab()).toArray();
        float[] x = runtime.embedRows(new int[][] {tokens});
        float[] first = runtime.runLayer(layer, x, 1, tokens.length, 0, null, CaptureHook.NONE);
        for (int i = 0; i < 200; i++) {
          float[] again = runtime.runLayer(layer, x, 1, tokens.length, 0, null, CaptureHook.NONE);
          assertTrue(java.util.Arrays.equals(first, again), "run " + i + " differs from the first");
        }
      }
    }
  }

  @Test
  void stagedLayerEqualsTheWholeLayer() {
    // The stages a compression pipeline runs, in its order, give the layer's own output.
    ModelConfig config =
        TestModels.config(
            "Qwen2ForCausalLM",
            "qwen2",
            """
        {"num_key_value_heads": 1}""");
    Path model = TestModels.randomModel(dir, config, 5);
    int[] tokens = new SplittableRandom(4).ints(70, 0, config.vocabSize()).toArray();
    try (ModelFolder folder = ModelFolder.open(model)) {
      LlamaFamily family = LlamaFamily.from(folder.config());
      try (LlamaRuntime runtime = new LlamaRuntime(family, Weights.of(folder.checkpoint()), true)) {
        DecoderLayer layer = runtime.layer(0);
        int rows = tokens.length;
        float[] x = runtime.embedRows(new int[][] {tokens});
        float[] whole = runtime.runLayer(layer, x, 1, rows, 0, null, CaptureHook.NONE);
        float[] merged = runtime.attentionOutput(layer, x, 1, rows, null);
        float[] residual = runtime.afterAttention(layer, x.clone(), merged, rows);
        float[] act = runtime.mlpActivation(layer, residual, rows, null);
        float[] staged = runtime.afterMlp(layer, residual, act, rows);
        for (int i = 0; i < whole.length; i++) {
          assertEquals(whole[i], staged[i], 1e-5f, "element " + i);
        }
      }
    }
  }

  @Test
  void stories260kDjlLogitsMatchPlainJavaWithin1e4() {
    try (ModelFolder folder = ModelFolder.open(TestModels.stories260K());
        Tokenizer tokenizer = Tokenizer.open(folder)) {
      LlamaFamily family = LlamaFamily.from(folder.config());
      Weights weights = Weights.of(folder.checkpoint());
      int[] tokens =
          tokenizer.encodeDocument(
              "Once upon a time, there was a little dog named Max. He liked to run.");
      float[][] expected = new ReferenceLlama(family, weights).logits(tokens);
      try (LlamaRuntime runtime = new LlamaRuntime(family, weights, true);
          NDManager scope = runtime.manager().newSubManager()) {
        float[] got = runtime.forward(scope, new int[][] {tokens}).toFloatArray();
        double maxDiff = 0;
        for (int t = 0; t < tokens.length; t++) {
          for (int v = 0; v < family.vocab(); v++) {
            maxDiff = Math.max(maxDiff, Math.abs(got[t * family.vocab() + v] - expected[t][v]));
          }
        }
        assertTrue(maxDiff < 1e-4, "max |djl - reference| = " + maxDiff);
      }
    }
  }

  @Test
  void unsupportedArchitectureIsRefusedNamingArchitectures() {
    ModelConfig gpt2 = TestModels.config("GPT2LMHeadModel", "gpt2", "{}");
    BadInputException e = assertThrows(BadInputException.class, () -> LlamaFamily.from(gpt2));
    assertTrue(
        e.getMessage().contains("architectures") && e.getMessage().contains("GPT2LMHeadModel"),
        e.getMessage());
    assertEquals(1, e.getMessage().lines().count());
  }
}
