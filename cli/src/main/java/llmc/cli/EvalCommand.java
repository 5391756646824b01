package llmc.cli;

import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;
import llmc.formats.BadInputException;
import llmc.formats.Json;
import llmc.model.Evaluator;
import llmc.model.LoadedModel;
import llmc.model.TextDataset;
import llmc.model.TokenWindows;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

@Command(
    name = "eval",
    mixinStandardHelpOptions = true,
    description = {
      "Perplexity by protocol P1 (non-overlapping windows of L tokens, each scored from an empty cache);",
      "with --base, also the KL divergence and top-1 agreement against a base model on the same windows."
    },
    footer = {
      "",
      "Example:",
      "  llmc eval samples/models/stories260K --data samples/data/tinystories/valid.jsonl",
      "  llmc eval quantized/ --base original/ --data valid.jsonl --max-windows 40 --json",
      "  llmc eval model-q8_0.gguf --tokenizer original/ --data valid.jsonl"
    })
final class EvalCommand implements Callable<Integer> {
  @Parameters(
      index = "0",
      paramLabel = "MODEL",
      description = "A Hugging Face model folder or a .gguf file.")
  Path model;

  @Option(
      names = "--data",
      required = true,
      paramLabel = "FILE",
      description = "Evaluation text: .jsonl (one document per line) or .txt.")
  Path data;

  @Option(
      names = "--field",
      defaultValue = "text",
      paramLabel = "NAME",
      description = "JSON field holding the text (default: ${DEFAULT-VALUE}).")
  String field;

  @Option(
      names = "--seq-len",
      paramLabel = "L",
      description = "Window length (default: min(context length, 2048)).")
  Integer seqLen;

  @Option(
      names = "--max-windows",
      paramLabel = "W",
      defaultValue = "0",
      description = "Evaluate only the first W windows (default: all).")
  int maxWindows;

  @Option(
      names = "--batch",
      paramLabel = "B",
      defaultValue = "1",
      description = "Windows per forward pass (default: ${DEFAULT-VALUE}).")
  int batch;

  @Option(
      names = "--warmup",
      paramLabel = "N",
      defaultValue = "0",
      description =
          "Run the first N windows once untimed before measuring (for benchmarks; default: ${DEFAULT-VALUE}).")
  int warmup;

  @Option(
      names = "--base",
      paramLabel = "MODEL",
      description = "Base model for KL divergence and top-1 agreement (same tokenizer).")
  Path base;

  @Option(
      names = "--tokenizer",
      paramLabel = "DIR",
      description =
          "Hugging Face folder whose tokenizer.json tokenizes --data (needed for a .gguf MODEL: the folder"
              + " it was exported from; default: --base when it is a folder).")
  Path tokenizer;

  @Mixin CommonOptions common;

  @Spec CommandSpec spec;

  @Override
  public Integer call() {
    common.configureEngine();
    if (batch < 1) {
      throw new BadInputException("--batch must be at least 1");
    }
    Path tokenizerDir =
        tokenizer != null
            ? tokenizer
            : LoadedModel.isGguf(model) && base != null && !LoadedModel.isGguf(base) ? base : null;
    try (LoadedModel loaded = LoadedModel.open(model, tokenizerDir);
        LoadedModel baseModel = base == null ? null : LoadedModel.open(base)) {
      int length = seqLen != null ? seqLen : loaded.family.defaultSeqLen();
      if (length < 2 || length > loaded.family.contextLength()) {
        throw new BadInputException(
            "--seq-len "
                + length
                + " must be between 2 and the model's context length "
                + loaded.family.contextLength());
      }
      if (baseModel != null && baseModel.family.vocab() != loaded.family.vocab()) {
        throw new BadInputException(
            "--base "
                + base
                + " has a vocabulary of "
                + baseModel.family.vocab()
                + " tokens but "
                + model
                + " has "
                + loaded.family.vocab()
                + "; KL needs the same tokenizer");
      }
      List<String> documents = TextDataset.read(data, field);
      int[] stream = TokenWindows.stream(loaded.tokenizer(), documents);
      List<int[]> windows = TokenWindows.first(stream, length, maxWindows);
      if (windows.isEmpty()) {
        throw new BadInputException(
            data
                + ": "
                + stream.length
                + " tokens, fewer than one window of "
                + length
                + "; use a smaller --seq-len or more text");
      }
      int total = windows.size();
      if (warmup > 0) {
        Evaluator.evaluate(
            loaded.runtime,
            baseModel == null ? null : baseModel.runtime,
            windows.subList(0, Math.min(warmup, total)),
            batch,
            done -> CommonOptions.progress("warm-up: window " + done));
      }
      Evaluator.Result r =
          Evaluator.evaluate(
              loaded.runtime,
              baseModel == null ? null : baseModel.runtime,
              windows,
              batch,
              done -> CommonOptions.progress("eval: window " + done + "/" + total));
      CommonOptions.endProgress();

      ObjectNode out = Json.mapper().createObjectNode();
      out.put("model", model.toString());
      if (tokenizerDir != null) {
        out.put("tokenizer", tokenizerDir.toString());
      }
      out.put("data", data.toString());
      out.put("protocol", "P1");
      out.put("seq_len", r.seqLen());
      out.put("windows", r.windows());
      out.put("stream_tokens", stream.length);
      out.put("scored_tokens", r.scoredTokens());
      out.put("mean_nll", r.meanNll());
      out.put("perplexity", r.perplexity());
      if (baseModel != null) {
        out.put("base", base.toString());
        out.put("base_perplexity", r.basePerplexity());
        out.put("mean_kl", r.meanKl());
        out.put("top1_agreement", r.top1Agreement());
      }
      out.put("seconds", r.seconds());
      out.put("tokens_per_second", r.tokensPerSecond());
      PrintWriter stdout = spec.commandLine().getOut();
      if (common.json) {
        common.print(stdout, out);
      } else {
        stdout.printf(
            "perplexity %.4f (mean NLL %.5f over %,d scored tokens; %d windows of L = %d; protocol P1)%n",
            r.perplexity(), r.meanNll(), r.scoredTokens(), r.windows(), r.seqLen());
        if (baseModel != null) {
          stdout.printf(
              "vs base     mean KL %.6f nats, top-1 agreement %.2f%% (base perplexity %.4f)%n",
              r.meanKl(), 100 * r.top1Agreement(), r.basePerplexity());
        }
        stdout.printf("speed       %.0f tokens/s (%.1f s)%n", r.tokensPerSecond(), r.seconds());
        stdout.flush();
      }
    }
    return Llmc.OK;
  }
}
