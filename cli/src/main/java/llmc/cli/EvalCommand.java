package llmc.cli;

import java.io.PrintWriter;
import java.math.BigDecimal;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import llmc.formats.BadInputException;
import llmc.pipeline.EvalReport;
import llmc.pipeline.EvalSettings;
import llmc.pipeline.EvalStage;
import llmc.pipeline.QualityGate;
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
      "with --base, also the KL divergence and top-1 agreement against a base model on the same windows,",
      "and quality gates: thresholds on them that make eval exit 3 when one is not met."
    },
    exitCodeListHeading = "%nExit codes:%n",
    exitCodeList = {
      "0:success (every quality gate passed)",
      "1:internal error",
      "2:bad input or usage",
      "3:a quality gate failed (the report is printed as usual and says which)"
    },
    footer = {
      "",
      "Example:",
      "  llmc eval samples/models/stories260K --data samples/data/tinystories/valid.jsonl",
      "  llmc eval quantized/ --base original/ --data valid.jsonl --max-windows 40 --json",
      "  llmc eval quantized/ --base original/ --data valid.jsonl --max-ppl-increase 5% --min-top1 0.85",
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
      names = "--max-memory",
      paramLabel = "SIZE",
      description =
          "Memory the run may use, e.g. 6GB: ./llmc sizes the JVM heap from it, and a model whose"
              + " layers take more than a quarter of the heap runs one layer at a time.")
  String maxMemory;

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

  @Option(
      names = "--max-ppl-increase",
      paramLabel = "X",
      description =
          "Quality gate: exit 3 when perplexity exceeds --base's by more than X, a percentage (5%)"
              + " or a fraction (0.05) of the base's.")
  String maxPplIncrease;

  @Option(
      names = "--max-kl",
      paramLabel = "X",
      description =
          "Quality gate: exit 3 when the mean KL(p_base || p) per scored token exceeds X nats.")
  String maxKl;

  @Option(
      names = "--min-top1",
      paramLabel = "X",
      description =
          "Quality gate: exit 3 when the top-1 agreement with --base is below X, a fraction (0.85)"
              + " or a percentage (85%).")
  String minTop1;

  @Mixin CommonOptions common;

  @Spec CommandSpec spec;

  @Override
  public Integer call() {
    common.configureEngine();
    if (maxMemory != null) {
      OutputOptions.bytes("--max-memory", maxMemory); // a size, or a clear error (the heap is set)
    }
    EvalSettings settings =
        new EvalSettings(
            model,
            data,
            field,
            seqLen,
            maxWindows,
            batch,
            warmup,
            base,
            tokenizer,
            fraction("--max-ppl-increase", maxPplIncrease),
            fraction("--max-kl", maxKl),
            fraction("--min-top1", minTop1));
    EvalReport r = new EvalStage().run(settings, common.progress());
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
      if (r.gates() != null) {
        for (QualityGate gate : r.gates()) {
          stdout.println(gateLine(gate));
        }
      }
      stdout.flush();
    }
    return Boolean.FALSE.equals(r.passed()) ? Llmc.QUALITY_GATE_FAILED : Llmc.OK;
  }

  /**
   * A threshold as given: a number ({@code 0.05}) or a percentage ({@code 5%}, the same); null when
   * not given. The settings check the range.
   */
  static Double fraction(String flag, String text) {
    if (text == null) {
      return null;
    }
    String s = text.strip();
    boolean percent = s.endsWith("%");
    try {
      BigDecimal value = new BigDecimal(percent ? s.substring(0, s.length() - 1).strip() : s);
      return (percent ? value.movePointLeft(2) : value).doubleValue();
    } catch (NumberFormatException e) {
      throw new BadInputException(
          flag + " '" + text + "': give a percentage like 5% or a fraction like 0.05");
    }
  }

  /** "gate failed: perplexity +7.31% > +5.00% allowed, by 2.31 points (--max-ppl-increase)" */
  private String gateLine(QualityGate gate) {
    String verdict = gate.passed() ? "gate passed: " : "gate failed: ";
    String by = gate.passed() ? "" : ", by %s".formatted(amount(gate, Math.abs(gate.margin())));
    String flag = SettingFlags.flag(spec, gate.setting());
    return verdict
        + switch (gate.name()) {
          case QualityGate.PERPLEXITY_INCREASE ->
              "perplexity %+.2f%% %s %+.2f%% allowed"
                  .formatted(
                      100 * gate.measured(), gate.passed() ? "<=" : ">", 100 * gate.threshold());
          case QualityGate.MEAN_KL ->
              "mean KL %.6f nats %s %.6f allowed"
                  .formatted(gate.measured(), gate.passed() ? "<=" : ">", gate.threshold());
          case QualityGate.TOP1_AGREEMENT ->
              "top-1 agreement %.2f%% %s %.2f%% required"
                  .formatted(
                      100 * gate.measured(), gate.passed() ? ">=" : "<", 100 * gate.threshold());
          default -> gate.name() + " " + gate.measured();
        }
        + by
        + " ("
        + flag
        + ")";
  }

  private static String amount(QualityGate gate, double difference) {
    return gate.name().equals(QualityGate.MEAN_KL)
        ? "%.6f nats".formatted(difference)
        : "%.2f points".formatted(100 * difference);
  }
}
