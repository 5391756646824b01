package llmc.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import llmc.formats.ModelConfig;
import llmc.formats.ModelFolder;
import llmc.model.kernels.Tensors;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/** Greedy speculative decoding gives the target's greedy tokens, whatever the draft. */
class SpeculativeDecodingTest {
  private static final String[] PROMPTS = {
    "Once upon a time", "The little dog", "Tom and Lily", "One day", ""
  };
  private static final int MAX_TOKENS = 200;

  @TempDir static Path dir;

  private static ModelFolder folder;
  private static Tokenizer tokenizer;
  private static LlamaRuntime target;

  @BeforeAll
  static void open() {
    folder = ModelFolder.open(TestModels.stories260K());
    tokenizer = Tokenizer.open(folder);
    target =
        new LlamaRuntime(LlamaFamily.from(folder.config()), Weights.of(folder.checkpoint()), true);
  }

  @AfterAll
  static void close() {
    target.close();
    tokenizer.close();
    folder.close();
  }

  /** stories260K with only the layers {@code keep} (in that order): a smaller, untrained draft. */
  static LlamaRuntime layerCut(int... keep) {
    LlamaFamily f = target.family();
    LlamaFamily cut =
        new LlamaFamily(
            f.variant(),
            f.hidden(),
            keep.length,
            f.heads(),
            f.kvHeads(),
            f.headDim(),
            f.intermediate(),
            f.vocab(),
            f.contextLength(),
            f.rmsNormEps(),
            f.rope(),
            f.tiedEmbeddings(),
            f.slidingWindow());
    Weights teacher = target.weights();
    Weights view =
        new Weights() {
          String map(String name) {
            if (!name.startsWith(TensorNames.LAYERS)) {
              return name;
            }
            String rest = name.substring(TensorNames.LAYERS.length());
            int dot = rest.indexOf('.');
            int layer = Integer.parseInt(rest.substring(0, dot));
            return TensorNames.layer(keep[layer]) + rest.substring(dot + 1);
          }

          @Override
          public boolean contains(String name) {
            return teacher.contains(map(name));
          }

          @Override
          public long[] shape(String name) {
            return teacher.shape(map(name));
          }

          @Override
          public float[] floats(String name) {
            return teacher.floats(map(name));
          }

          @Override
          public float[] rows(String name, long fromRow, int rows) {
            return teacher.rows(map(name), fromRow, rows);
          }
        };
    return new LlamaRuntime(cut, view, true);
  }

  @Test
  void theModelAsItsOwnDraftIsAlwaysAcceptedAndGivesTheGreedyTokens() {
    try (LlamaRuntime draft =
        new LlamaRuntime(target.family(), Weights.of(folder.checkpoint()), true)) {
      for (String prompt : PROMPTS) {
        int[] ids = tokenizer.encodeDocument(prompt);
        List<Integer> greedy = Generator.greedy(target, ids, MAX_TOKENS, tokenizer.eosId());
        Generator.Speculation s =
            Generator.speculative(target, draft, ids, MAX_TOKENS, tokenizer.eosId(), 4);
        assertEquals(greedy, s.tokens(), "prompt '" + prompt + "'");
        assertEquals(s.proposed(), s.accepted(), "prompt '" + prompt + "'");
        assertEquals(1.0, s.acceptanceRate());
        // Every step commits its 4 proposals and a bonus token: 5 tokens per forward pass of the
        // target (the last step may be shorter, or the story may end).
        assertEquals((greedy.size() + 4) / 5, s.verificationSteps(), "prompt '" + prompt + "'");
      }
    }
  }

  @Test
  void aThreeLayerCutAsDraftGivesTheGreedyTokensForEveryDraftLength() {
    try (LlamaRuntime draft = layerCut(0, 2, 4)) {
      assertEquals(3, draft.family().layers());
      for (int k : new int[] {1, 4, 8}) {
        int proposed = 0;
        int accepted = 0;
        int steps = 0;
        int tokens = 0;
        for (String prompt : PROMPTS) {
          int[] ids = tokenizer.encodeDocument(prompt);
          List<Integer> greedy = Generator.greedy(target, ids, MAX_TOKENS, tokenizer.eosId());
          Generator.Speculation s =
              Generator.speculative(target, draft, ids, MAX_TOKENS, tokenizer.eosId(), k);
          assertEquals(greedy, s.tokens(), "K " + k + ", prompt '" + prompt + "'");
          assertTrue(s.accepted() <= s.proposed());
          assertTrue(s.proposed() <= k * s.verificationSteps());
          // Each forward pass of the target commits its accepted tokens and one of its own.
          assertEquals(s.tokens().size(), s.accepted() + s.verificationSteps(), "K " + k);
          System.out.printf(
              "K %d, prompt %-18s: %3d tokens, acceptance %5.1f%% (%d/%d), %.2f tokens per"
                  + " verification step%n",
              k,
              "'" + prompt + "'",
              s.tokens().size(),
              100 * s.acceptanceRate(),
              s.accepted(),
              s.proposed(),
              s.tokensPerVerificationStep());
          proposed += s.proposed();
          accepted += s.accepted();
          steps += s.verificationSteps();
          tokens += s.tokens().size();
        }
        System.out.printf(
            "K %d, all prompts: acceptance %.1f%% (%d/%d), %.2f tokens per verification step"
                + " (%d/%d)%n",
            k,
            100.0 * accepted / proposed,
            accepted,
            proposed,
            (double) tokens / steps,
            tokens,
            steps);
      }
    }
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("llmc.model.RuntimeCrossCheckTest#architectures")
  void aRowsBitsDoNotDependOnTheTokensRunWithItSoAnyDraftGivesTheGreedyTokens(
      String name, ModelConfig config) throws Exception {
    ModelConfig oneLayer =
        ModelConfig.fromJson(
            ((ObjectNode) config.json().deepCopy()).put("num_hidden_layers", 1), name + " draft");
    Path here = java.nio.file.Files.createTempDirectory(dir, "arch");
    try (ModelFolder targetFolder = ModelFolder.open(TestModels.randomModel(here, config, 21));
        ModelFolder draftFolder = ModelFolder.open(TestModels.randomModel(here, oneLayer, 22));
        LlamaRuntime model =
            new LlamaRuntime(
                LlamaFamily.from(targetFolder.config()),
                Weights.of(targetFolder.checkpoint()),
                true);
        LlamaRuntime draft =
            new LlamaRuntime(
                LlamaFamily.from(draftFolder.config()),
                Weights.of(draftFolder.checkpoint()),
                true);
        NDManager scope = model.manager().newSubManager()) {
      LlamaFamily f = model.family();
      int[] tokens = new SplittableRandom(5).ints(24, 0, f.vocab()).toArray();
      // 24 tokens at once, and 16 then 8 one at a time: the same bits in every row.
      float[] together = model.decode(tokens, 0, new KvCache(f.layers()));
      float[] logitsTogether = model.logitsRows(together, 0, tokens.length);
      KvCache cache = new KvCache(f.layers());
      float[] first = model.decode(Arrays.copyOf(tokens, 16), 0, cache);
      assertTrue(
          Arrays.equals(
              Arrays.copyOf(logitsTogether, 16 * f.vocab()), model.logitsRows(first, 0, 16)),
          name);
      for (int t = 16; t < tokens.length; t++) {
        float[] alone = model.logitsRows(model.decode(new int[] {tokens[t]}, t, cache), 0, 1);
        assertTrue(
            Arrays.equals(
                Arrays.copyOfRange(logitsTogether, t * f.vocab(), (t + 1) * f.vocab()), alone),
            name + ", row " + t);
      }
      // The head on Java arrays agrees with the engine's.
      NDArray x = Tensors.create(scope, together, new Shape(1, tokens.length, f.hidden()));
      float[] engine = model.logits(x).toFloatArray();
      for (int i = 0; i < engine.length; i++) {
        assertEquals(engine[i], logitsTogether[i], 1e-5, name + ", logit " + i);
      }

      int[] prompt = Arrays.copyOf(tokens, 5);
      List<Integer> greedy = Generator.greedy(model, prompt, 50, -1);
      for (int k : new int[] {1, 3, 8}) {
        Generator.Speculation s = Generator.speculative(model, draft, prompt, 50, -1, k);
        assertEquals(greedy, s.tokens(), name + ", K " + k);
        assertEquals(50, s.accepted() + s.verificationSteps(), name + ", K " + k);
      }
    }
  }

  @Test
  void theEndOfSequenceStopsItAsItStopsGreedyDecoding() {
    // Stop at the 11th greedy token of stories260K from BOS as if it were EOS: greedy decoding
    // stops before its first occurrence, and so must speculative decoding.
    int[] bos = tokenizer.encodeDocument("");
    List<Integer> greedy = Generator.greedy(target, bos, 60, -1);
    int stop = greedy.get(10);
    List<Integer> stopped = Generator.greedy(target, bos, 60, stop);
    assertEquals(greedy.subList(0, greedy.indexOf(stop)), stopped);
    try (LlamaRuntime draft = layerCut(0, 2, 4);
        LlamaRuntime same = new LlamaRuntime(target.family(), target.weights(), true)) {
      for (LlamaRuntime d : new LlamaRuntime[] {draft, same}) {
        for (int k : new int[] {1, 4, 8}) {
          assertEquals(stopped, Generator.speculative(target, d, bos, 60, stop, k).tokens());
        }
      }
    }
  }

  @Test
  void noTokensAskedNoPassRun() {
    Generator.Speculation s =
        Generator.speculative(target, target, tokenizer.encodeDocument(""), 0, -1, 4);
    assertEquals(List.of(), s.tokens());
    assertEquals(0, s.verificationSteps());
    assertEquals(0.0, s.acceptanceRate());
    assertEquals(0.0, s.tokensPerVerificationStep());
  }
}
