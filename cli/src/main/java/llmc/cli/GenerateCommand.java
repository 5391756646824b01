package llmc.cli;

import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import llmc.pipeline.GenerateReport;
import llmc.pipeline.GenerateSettings;
import llmc.pipeline.GenerateStage;
import llmc.pipeline.Reports;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

@Command(
    name = "generate",
    mixinStandardHelpOptions = true,
    description = {
      "Greedy decoding with a KV cache: prints the prompt and its continuation.",
      "With --draft, speculative: a smaller model with the same vocabulary proposes --draft-tokens"
          + " tokens at a time, MODEL checks them in one forward pass; the output is the same."
    },
    footer = {
      "",
      "Example:",
      "  llmc generate samples/models/stories260K --prompt \"Once upon a time\" --max-tokens 40",
      "  llmc generate model-q8_0.gguf --tokenizer original/ --prompt \"Once upon a time\"",
      "  llmc generate teacher/ --draft student/ --draft-tokens 4 --prompt \"One day\""
    })
final class GenerateCommand implements Callable<Integer> {
  @Parameters(
      index = "0",
      paramLabel = "MODEL",
      description = "A Hugging Face model folder or a .gguf file.")
  Path model;

  @Option(
      names = "--prompt",
      required = true,
      paramLabel = "TEXT",
      description = "The prompt (\"\" starts from BOS alone).")
  String prompt;

  @Option(
      names = "--max-tokens",
      defaultValue = "64",
      paramLabel = "N",
      description = "New tokens at most (default: ${DEFAULT-VALUE}).")
  int maxTokens;

  @Option(
      names = "--tokenizer",
      paramLabel = "DIR",
      description =
          "Hugging Face folder whose tokenizer.json to use (needed for a .gguf MODEL: the folder it was"
              + " exported from).")
  Path tokenizer;

  @Option(
      names = "--draft",
      paramLabel = "DIR",
      description =
          "Decode speculatively with this draft model (a folder or .gguf file with MODEL's"
              + " vocabulary, e.g. a student distilled from it); the output is unchanged.")
  Path draft;

  @Option(
      names = "--draft-tokens",
      defaultValue = "" + GenerateSettings.DEFAULT_DRAFT_TOKENS,
      paramLabel = "K",
      description =
          "Tokens the draft proposes per verification step, 1 to "
              + GenerateSettings.MAX_DRAFT_TOKENS
              + " (default: ${DEFAULT-VALUE}).")
  int draftTokens;

  @Mixin CommonOptions common;

  @Spec CommandSpec spec;

  @Override
  public Integer call() {
    common.configureEngine();
    GenerateSettings settings =
        new GenerateSettings(model, prompt, maxTokens, tokenizer, draft, draftTokens);
    GenerateReport r = new GenerateStage().run(settings, common.progress());
    PrintWriter stderr = spec.commandLine().getErr();
    if (r.maxTokensCut() != null) {
      stderr.println(
          "llmc: note: --max-tokens cut to "
              + r.maxTokensCut().to()
              + " to stay within the context length "
              + r.maxTokensCut().contextLength());
    }
    PrintWriter stdout = spec.commandLine().getOut();
    if (common.json) {
      common.print(stdout, Reports.toJson(r));
    } else {
      stdout.println(r.text());
      stdout.flush();
      stderr.printf(
          "llmc: %d tokens in %.2f s (%.1f tokens/s)%n",
          r.generatedTokens(), r.seconds(), r.tokensPerSecond());
      if (r.speculative() != null) {
        GenerateReport.Speculative sp = r.speculative();
        stderr.printf(
            "llmc: draft acceptance %.1f%% (%d of %d proposed), %.2f tokens per verification"
                + " step (%d steps)%n",
            100 * sp.acceptanceRate(),
            sp.accepted(),
            sp.proposed(),
            sp.tokensPerVerificationStep(),
            sp.verificationSteps());
      }
    }
    return Llmc.OK;
  }
}
