package llmc.cli;

import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import llmc.formats.BadInputException;
import llmc.formats.gguf.GgmlType;
import llmc.pipeline.ExportReport;
import llmc.pipeline.ExportSettings;
import llmc.pipeline.ExportStage;
import llmc.pipeline.Reports;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

/**
 * {@code llmc export MODEL --format gguf --type TYPE --out FILE.gguf}: a model as one GGUF file for
 * llama.cpp, Ollama and LM Studio. Dense weights are rounded by llama.cpp's own reference rules for
 * the type (so llmc's Q4_0 of a dense model is the file llama.cpp's {@code llama-quantize} would
 * make, with the same F16 fallback); GPTQ on the same grids is {@code llmc quantize --format gguf}.
 */
@Command(
    name = "export",
    mixinStandardHelpOptions = true,
    sortOptions = false,
    description = {
      "Write a model as one GGUF file (llama.cpp, Ollama, LM Studio): llama metadata and tensor names,",
      "q/k rows in llama.cpp's order, the tokenizer, and the weights rounded by llama.cpp's rules for --type.",
      "Tensors a block type cannot hold (in_features not a multiple of 32) are stored as F16 and reported."
    },
    footer = {
      "",
      "Examples:",
      "  llmc export samples/models/stories260K --format gguf --type q8_0 --out /tmp/stories260K-q8_0.gguf",
      "  llmc export MODEL --format gguf --type f16 --out model-f16.gguf --json"
    })
final class ExportCommand implements Callable<Integer> {
  @Parameters(
      index = "0",
      paramLabel = "MODEL",
      description = "A Hugging Face model folder (a quantized folder is read dequantized).")
  Path model;

  @Option(
      names = "--format",
      defaultValue = "gguf",
      paramLabel = "gguf",
      description = "Output format (default: ${DEFAULT-VALUE}).")
  String format;

  @Option(
      names = {"--type", "--outtype"},
      required = true,
      paramLabel = "TYPE",
      description = "Tensor type of the linear layers: f32|f16|q8_0|q4_0|q4_1|q5_0|q5_1.")
  String type;

  @Option(
      names = "--out",
      required = true,
      paramLabel = "FILE",
      description = "The .gguf file, written atomically.")
  Path out;

  @Option(names = "--overwrite", description = "Replace --out if it exists.")
  boolean overwrite;

  @Option(
      names = "--name",
      paramLabel = "NAME",
      description = "general.name (default: the model folder's name).")
  String name;

  @Mixin CommonOptions common;

  @Spec CommandSpec spec;

  @Override
  public Integer call() {
    common.configureEngine();
    if (!format.equalsIgnoreCase("gguf")) {
      throw new BadInputException(
          "--format '"
              + format
              + "': llmc export writes gguf; for safetensors layouts use"
              + " llmc quantize --format gptq|compressed-tensors|dense");
    }
    ExportReport report =
        new ExportStage()
            .run(
                new ExportSettings(
                    model, out, overwrite, GgmlType.byName(type.toLowerCase()), name),
                common.progress());
    PrintWriter stdout = spec.commandLine().getOut();
    if (common.json) {
      common.print(stdout, Reports.toJson(report));
    } else {
      printSummary(stdout, report);
    }
    return Llmc.OK;
  }

  private static void printSummary(PrintWriter out, ExportReport r) {
    out.printf(
        "exported %s -> %s (gguf, %s, %s tokenizer of %d tokens)%n",
        r.model(), r.out(), r.type(), r.tokenizer(), r.vocab());
    StringBuilder types = new StringBuilder();
    r.tensorTypes()
        .forEach(
            (type, count) ->
                types.append(types.isEmpty() ? "" : ", ").append(count).append(' ').append(type));
    out.printf("tensors   %d (%s)%n", r.tensors(), types);
    for (ExportReport.Fallback f : r.fallbacks()) {
      out.printf("fallback  %s stored as %s: %s%n", f.name(), f.type(), f.reason());
    }
    out.printf(
        "size      %s -> %s (%.2fx smaller) in %.1f s%n",
        Sizes.human(r.size().inputBytes()),
        Sizes.human(r.size().outputBytes()),
        r.size().compression(),
        r.seconds());
    for (String w : r.warnings()) {
      out.println("warning   " + w);
    }
    out.flush();
  }
}
