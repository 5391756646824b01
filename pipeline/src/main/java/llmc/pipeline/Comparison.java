package llmc.pipeline;

import java.nio.file.Path;
import java.util.List;
import llmc.formats.BadInputException;
import llmc.model.Evaluator;
import llmc.model.LoadedModel;
import llmc.model.TextDataset;
import llmc.model.TokenWindows;

/**
 * The quality a compression cost: P1 perplexity before (the input) and after (the output, read back
 * as written), the mean KL divergence {@code KL(p_before || p_after)} and top-1 agreement, on the
 * same windows.
 */
public record Comparison(
    String protocol,
    String data,
    int seqLen,
    int windows,
    long scoredTokens,
    double perplexityBefore,
    double perplexityAfter,
    double meanNllBefore,
    double meanNllAfter,
    double meanKl,
    double top1Agreement) {

  static Comparison measure(
      Path before, Path after, EvaluationSettings settings, Progress progress) {
    try (LoadedModel base = LoadedModel.open(before);
        LoadedModel compressed = LoadedModel.open(after)) {
      int seqLen = base.family.defaultSeqLen();
      int[] stream =
          TokenWindows.stream(base.tokenizer(), TextDataset.read(settings.data(), "text"));
      List<int[]> windows = TokenWindows.first(stream, seqLen, settings.maxWindows());
      if (windows.isEmpty()) {
        throw new BadInputException(
            settings.data() + ": fewer than one window of " + seqLen + " tokens");
      }
      // KL needs the same vocabulary, which structured pruning keeps.
      Evaluator.Result r =
          Evaluator.evaluate(
              compressed.runtime,
              base.runtime,
              windows,
              1,
              done -> progress.update("eval: window", done, windows.size()));
      progress.finished();
      return new Comparison(
          "P1",
          settings.data().toString(),
          seqLen,
          r.windows(),
          r.scoredTokens(),
          r.basePerplexity(),
          r.perplexity(),
          r.baseMeanNll(),
          r.meanNll(),
          r.meanKl(),
          r.top1Agreement());
    }
  }
}
