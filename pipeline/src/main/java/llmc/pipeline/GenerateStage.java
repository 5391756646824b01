package llmc.pipeline;

import java.util.List;
import java.util.stream.IntStream;
import llmc.formats.InvalidSettingException;
import llmc.model.Generator;
import llmc.model.LoadedModel;

/** Greedy decoding with a KV cache: the prompt and its continuation. */
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
      long t0 = System.nanoTime();
      List<Integer> generated =
          Generator.greedy(loaded.runtime, promptIds, maxTokens, loaded.tokenizer().eosId());
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
          cut);
    }
  }
}
