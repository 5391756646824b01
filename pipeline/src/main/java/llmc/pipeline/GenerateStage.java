package llmc.pipeline;

import java.util.Arrays;
import java.util.List;
import java.util.stream.IntStream;
import llmc.formats.InvalidSettingException;
import llmc.model.Generator;
import llmc.model.LoadedModel;
import llmc.model.Tokenizer;

/**
 * Greedy decoding with a KV cache: the prompt and its continuation; with a draft model,
 * speculatively, with the same tokens.
 */
public final class GenerateStage implements Stage<GenerateSettings, GenerateReport> {

  @Override
  public GenerateReport run(GenerateSettings s, Progress progress) {
    try (LoadedModel loaded = LoadedModel.open(s.model(), s.tokenizer())) {
      int[] promptIds = loaded.tokenizer().encodeDocument(s.prompt());
      if (promptIds.length == 0) {
        throw new InvalidSettingException(
            "the prompt is empty and the tokenizer adds no BOS token; give a {prompt}");
      }
      int contextLength = loaded.family.contextLength();
      int maxTokens = s.maxTokens();
      GenerateReport.MaxTokensCut cut = null;
      if (promptIds.length + maxTokens > contextLength) {
        maxTokens = Math.max(0, contextLength - promptIds.length);
        cut = new GenerateReport.MaxTokensCut(s.maxTokens(), maxTokens, contextLength);
      }
      int eos = loaded.tokenizer().eosId();
      long t0;
      List<Integer> generated;
      GenerateReport.Speculative speculative = null;
      if (s.draft() == null) {
        t0 = System.nanoTime();
        generated = Generator.greedy(loaded.runtime, promptIds, maxTokens, eos);
      } else {
        try (LoadedModel draft = LoadedModel.open(s.draft())) {
          checkVocabulary(s, loaded, draft, promptIds);
          t0 = System.nanoTime();
          Generator.Speculation run =
              Generator.speculative(
                  loaded.runtime, draft.runtime, promptIds, maxTokens, eos, s.draftTokens());
          generated = run.tokens();
          speculative =
              new GenerateReport.Speculative(
                  s.draft().toString(),
                  s.draftTokens(),
                  run.proposed(),
                  run.accepted(),
                  run.acceptanceRate(),
                  run.verificationSteps(),
                  run.tokensPerVerificationStep());
        }
      }
      double seconds = (System.nanoTime() - t0) / 1e9;
      int[] all =
          IntStream.concat(IntStream.of(promptIds), generated.stream().mapToInt(Integer::intValue))
              .toArray();
      String text = loaded.tokenizer().decode(all);
      String promptText = loaded.tokenizer().decode(promptIds);
      String continuation =
          text.startsWith(promptText) ? text.substring(promptText.length()) : text;
      return new GenerateReport(
          s.model().toString(),
          s.prompt(),
          text,
          continuation,
          promptIds.length,
          generated.size(),
          List.copyOf(generated),
          seconds,
          generated.size() / seconds,
          cut,
          speculative);
    }
  }

  /**
   * The draft must have the model's vocabulary: as many tokens, and where the draft brings its own
   * tokenizer, the same reading of the prompt and the same end-of-sequence token.
   */
  private static void checkVocabulary(
      GenerateSettings s, LoadedModel model, LoadedModel draft, int[] promptIds) {
    if (draft.family.vocab() != model.family.vocab()) {
      throw new InvalidSettingException(
          "{draft} %s has a vocabulary of %s tokens, {model} %s one of %s; the draft must share"
              + " the model's vocabulary",
          s.draft(), draft.family.vocab(), s.model(), model.family.vocab());
    }
    if (draft.folder != null && draft.folder.tokenizerJson().isPresent()) {
      Tokenizer own = draft.tokenizer();
      if (!Arrays.equals(own.encodeDocument(s.prompt()), promptIds)
          || own.eosId() != model.tokenizer().eosId()) {
        throw new InvalidSettingException(
            "{draft} %s has another tokenizer than {model} %s (it reads the prompt as other"
                + " tokens, or ends sequences with another one); the draft must share the model's"
                + " vocabulary",
            s.draft(), s.model());
      }
    }
  }
}
