package llmc.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import llmc.formats.ModelFolder;
import org.junit.jupiter.api.Test;

/** The acceptance figures of the foundation issue, on the bundled stories260K. */
class Stories260kTest {

  @Test
  void greedyFromBosTellsTheLilyStory() {
    try (ModelFolder folder = ModelFolder.open(TestModels.stories260K());
        Tokenizer tokenizer = Tokenizer.open(folder);
        LlamaRuntime runtime =
            new LlamaRuntime(
                LlamaFamily.from(folder.config()), Weights.of(folder.checkpoint()), true)) {
      List<Integer> ids =
          Generator.greedy(runtime, tokenizer.encodeDocument(""), 40, tokenizer.eosId());
      String text = tokenizer.decode(ids.stream().mapToInt(Integer::intValue).toArray());
      assertTrue(
          text.startsWith(
              "Once upon a time, there was a little girl named Lily. She loved to play outside in the park."),
          text);
    }
  }

  @Test
  void validPerplexityMatchesIndependentPyTorchWithinPointTwoPercent() {
    try (ModelFolder folder = ModelFolder.open(TestModels.stories260K());
        Tokenizer tokenizer = Tokenizer.open(folder);
        LlamaRuntime runtime =
            new LlamaRuntime(
                LlamaFamily.from(folder.config()), Weights.of(folder.checkpoint()), true)) {
      int[] stream =
          TokenWindows.stream(tokenizer, TextDataset.read(TestModels.validData(), "text"));
      List<int[]> windows = TokenWindows.first(stream, 512, 0);
      Evaluator.Result result = Evaluator.evaluate(runtime, null, windows, 4, done -> {});
      assertEquals(120_596, result.scoredTokens());
      assertEquals(4.8413, result.perplexity(), 4.8413 * 0.002, "ppl " + result.perplexity());
      assertEquals(1.57718, result.meanNll(), 0.002);
    }
  }

  @Test
  void modelAgainstItselfHasZeroKlAndFullAgreement() {
    try (ModelFolder folder = ModelFolder.open(TestModels.stories260K());
        Tokenizer tokenizer = Tokenizer.open(folder);
        LlamaRuntime runtime =
            new LlamaRuntime(
                LlamaFamily.from(folder.config()), Weights.of(folder.checkpoint()), true);
        LlamaRuntime base =
            new LlamaRuntime(
                LlamaFamily.from(folder.config()), Weights.of(folder.checkpoint()), true)) {
      int[] stream =
          TokenWindows.stream(tokenizer, TextDataset.read(TestModels.validData(), "text"));
      Evaluator.Result result =
          Evaluator.evaluate(runtime, base, TokenWindows.first(stream, 512, 2), 1, done -> {});
      assertEquals(0.0, result.meanKl(), 1e-6);
      assertEquals(1.0, result.top1Agreement());
      assertEquals(2 * 511, result.scoredTokens());
    }
  }
}
