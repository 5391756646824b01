package llmc.cli;

import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import llmc.pipeline.EvalReport;
import llmc.pipeline.EvalSettings;
import llmc.pipeline.EvalStage;
import llmc.pipeline.Reports;
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
    EvalSettings settings =
        new EvalSettings(model, data, field, seqLen, maxWindows, batch, warmup, base, tokenizer);
    EvalReport r = new EvalStage().run(settings, CommonOptions.progress());
    PrintWriter stdout = spec.commandLine().getOut();
    if (common.json) {
      common.print(stdout, Reports.toJson(r));
    } else {
      stdout.printf(
          "perplexity %.4f (mean NLL %.5f over %,d scored tokens; %d windows of L = %d; protocol P1)%n",
          r.perplexity(), r.meanNll(), r.scoredTokens(), r.windows(), r.seqLen());
      if (r.base() != null) {
        stdout.printf(
            "vs base     mean KL %.6f nats, top-1 agreement %.2f%% (base perplexity %.4f)%n",
            r.meanKl(), 100 * r.top1Agreement(), r.basePerplexity());
      }
      stdout.printf("speed       %.0f tokens/s (%.1f s)%n", r.tokensPerSecond(), r.seconds());
      stdout.flush();
    }
    return Llmc.OK;
  }
}
