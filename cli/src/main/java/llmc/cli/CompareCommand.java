package llmc.cli;

import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import llmc.pipeline.CompareReport;
import llmc.pipeline.CompareSettings;
import llmc.pipeline.CompareStage;
import llmc.pipeline.Reports;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

@Command(
    name = "compare",
    mixinStandardHelpOptions = true,
    sortOptions = false,
    description = {
      "Several compressed variants of one model side by side: size on disk, bits per parameter,",
      "P1 perplexity and, against --base, the perplexity increase, mean KL and top-1 agreement,",
      "all on the same windows; a table, --json, and with --chart a PNG of size against perplexity."
    },
    footer = {
      "",
      "Example:",
      "  llmc compare /tmp/stories-w4 /tmp/stories-q4_0.gguf --base samples/models/stories260K \\",
      "      --data samples/data/tinystories/valid.jsonl --max-windows 16 --chart /tmp/compare.png"
    })
final class CompareCommand implements Callable<Integer> {
  @Parameters(
      arity = "1..*",
      paramLabel = "MODEL",
      description = "Model folders or GGUF files (a GGUF uses --base's tokenizer).")
  List<Path> models;

  @Option(names = "--data", required = true, paramLabel = "FILE", description = "Evaluation text.")
  Path data;

  @Option(
      names = "--field",
      defaultValue = "text",
      paramLabel = "NAME",
      description = "Text field of a .jsonl file (default: ${DEFAULT-VALUE}).")
  String field;

  @Option(names = "--base", paramLabel = "MODEL", description = "The original model.")
  Path base;

  @Option(
      names = "--max-windows",
      defaultValue = "0",
      paramLabel = "W",
      description = "Windows per model, 0 = all (default: ${DEFAULT-VALUE}).")
  int maxWindows;

  @Option(
      names = "--chart",
      paramLabel = "FILE.png",
      description = "Draw size against perplexity to this PNG.")
  Path chart;

  @Mixin CommonOptions common;

  @Spec CommandSpec spec;

  @Override
  public Integer call() {
    common.configureEngine();
    CompareReport r =
        new CompareStage()
            .run(
                new CompareSettings(models, base, data, field, maxWindows, chart),
                common.progress());
    PrintWriter out = spec.commandLine().getOut();
    if (common.json) {
      common.print(out, Reports.toJson(r));
      return Llmc.OK;
    }
    out.printf(
        Locale.ROOT,
        "%d windows of L = %d (protocol %s) of %s%n",
        r.windows(),
        r.seqLen(),
        r.protocol(),
        r.data());
    out.printf(
        Locale.ROOT,
        "%-40s %12s %6s %10s %8s %9s %7s%n",
        "model",
        "size",
        "bits/p",
        "perplexity",
        "vs base",
        "mean KL",
        "top-1");
    if (r.base() != null) {
      line(out, r.base(), "(base) ");
    }
    r.models().forEach(m -> line(out, m, ""));
    if (r.chart() != null) {
      out.println("chart: " + r.chart());
    }
    return Llmc.OK;
  }

  private static void line(PrintWriter out, CompareReport.Row r, String tag) {
    String name = tag + r.model();
    if (name.length() > 40) {
      name = "..." + name.substring(name.length() - 37);
    }
    out.printf(
        Locale.ROOT,
        "%-40s %12s %6.2f %10.4f %8s %9s %7s%n",
        name,
        Sizes.human(r.sizeBytes()),
        r.bitsPerParameter(),
        r.perplexity(),
        r.perplexityIncrease() == null
            ? "-"
            : String.format(Locale.ROOT, "%+.2f%%", 100 * r.perplexityIncrease()),
        r.meanKl() == null ? "-" : String.format(Locale.ROOT, "%.5f", r.meanKl()),
        r.top1Agreement() == null
            ? "-"
            : String.format(Locale.ROOT, "%.2f%%", 100 * r.top1Agreement()));
  }
}
