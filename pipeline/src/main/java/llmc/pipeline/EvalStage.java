package llmc.pipeline;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import llmc.formats.InvalidSettingException;
import llmc.model.Evaluator;
import llmc.model.LoadedModel;
import llmc.model.TextDataset;
import llmc.model.TokenWindows;

/**
 * Perplexity by protocol P1; with a base model also the KL divergence and top-1 agreement against
 * it on the same windows.
 */
public final class EvalStage implements Stage<EvalSettings, EvalReport> {

  @Override
  public EvalReport run(EvalSettings s, Progress progress) {
    Path model = s.model();
    Path base = s.base();
    Path tokenizerDir =
        s.tokenizer() != null
            ? s.tokenizer()
            : LoadedModel.isGguf(model) && base != null && !LoadedModel.isGguf(base) ? base : null;
    try (LoadedModel loaded = LoadedModel.open(model, tokenizerDir);
        LoadedModel baseModel = base == null ? null : LoadedModel.open(base)) {
      int contextLength = loaded.family.contextLength();
      int length = s.seqLen() != null ? s.seqLen() : loaded.family.defaultSeqLen();
      if (length < 2 || length > contextLength) {
        throw new InvalidSettingException(
            "{seqLen} %s must be between 2 and the model's context length %s",
            length, contextLength);
      }
      if (baseModel != null && baseModel.family.vocab() != loaded.family.vocab()) {
        throw new InvalidSettingException(
            "{base} %s has a vocabulary of %s tokens but %s has %s; KL needs the same tokenizer",
            base, baseModel.family.vocab(), model, loaded.family.vocab());
      }
      List<String> documents = TextDataset.read(s.data(), s.field());
      int[] stream = TokenWindows.stream(loaded.tokenizer(), documents);
      List<int[]> windows = TokenWindows.first(stream, length, s.maxWindows());
      if (windows.isEmpty()) {
        throw new InvalidSettingException(
            "%s: %s tokens, fewer than one window of %s; use a smaller {seqLen} or more text",
            s.data(), stream.length, length);
      }
      int total = windows.size();
      if (s.warmup() > 0) {
        int warm = Math.min(s.warmup(), total);
        Evaluator.evaluate(
            loaded.runtime,
            baseModel == null ? null : baseModel.runtime,
            windows.subList(0, warm),
            s.batch(),
            done -> progress.update("warm-up: window", done, warm));
      }
      Evaluator.Result r =
          Evaluator.evaluate(
              loaded.runtime,
              baseModel == null ? null : baseModel.runtime,
              windows,
              s.batch(),
              done -> progress.update("eval: window", done, total));
      progress.finished();
      boolean compared = baseModel != null;
      List<QualityGate> gates = s.hasGates() ? gates(s, r) : null;
      return new EvalReport(
          model.toString(),
          tokenizerDir == null ? null : tokenizerDir.toString(),
          s.data().toString(),
          "P1",
          r.seqLen(),
          r.windows(),
          stream.length,
          r.scoredTokens(),
          r.meanNll(),
          r.perplexity(),
          compared ? base.toString() : null,
          compared ? r.basePerplexity() : null,
          compared ? r.meanKl() : null,
          compared ? r.top1Agreement() : null,
          gates == null ? null : gates.stream().allMatch(QualityGate::passed),
          gates,
          r.seconds(),
          r.tokensPerSecond());
    }
  }

  /** The gates the settings ask for, measured on an evaluation against the base. */
  private static List<QualityGate> gates(EvalSettings s, Evaluator.Result r) {
    List<QualityGate> gates = new ArrayList<>();
    if (s.maxPerplexityIncrease() != null) {
      double increase = (r.perplexity() - r.basePerplexity()) / r.basePerplexity();
      gates.add(
          QualityGate.atMost(QualityGate.PERPLEXITY_INCREASE, s.maxPerplexityIncrease(), increase));
    }
    if (s.maxMeanKl() != null) {
      gates.add(QualityGate.atMost(QualityGate.MEAN_KL, s.maxMeanKl(), r.meanKl()));
    }
    if (s.minTop1Agreement() != null) {
      gates.add(
          QualityGate.atLeast(QualityGate.TOP1_AGREEMENT, s.minTop1Agreement(), r.top1Agreement()));
    }
    return List.copyOf(gates);
  }
}
