package llmc.cli;

import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import llmc.formats.BadInputException;
import llmc.pipeline.PruneReport;
import llmc.pipeline.PruneSettings;
import llmc.pipeline.PruneStage;
import llmc.pipeline.Reports;
import llmc.prune.Compare;
import llmc.prune.PruneMethod;
import llmc.prune.structured.Structured;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

@Command(
    name = "prune",
    mixinStandardHelpOptions = true,
    sortOptions = false,
    description = {
      "Pruning of the decoder's linear layers by magnitude, Lp-norm, gradient",
      "sensitivity, first-order Taylor, Wanda or SparseGPT scores: unstructured,",
      "N:M (2:4) or structured (MLP channels, heads, layers: the model written is",
      "physically smaller). Written as a Hugging Face folder (dense, or",
      "sparse-24-bitmask) with llmc-report.json."
    },
    footer = {
      "",
      "Examples:",
      "  llmc prune samples/models/stories260K --out /tmp/stories-wanda --method wanda --sparsity 0.5 \\",
      "      --calib samples/data/tinystories/train.jsonl --eval samples/data/tinystories/valid.jsonl",
      "  llmc prune MODEL --out OUT --method sparsegpt --pattern 2:4 --calib c.jsonl",
      "  llmc prune MODEL --out OUT --method taylor --structure channels --sparsity 0.25 --calib c.jsonl"
    })
final class PruneCommand implements Callable<Integer> {
  @Parameters(
      index = "0",
      paramLabel = "MODEL",
      description = "A Hugging Face model folder (unquantized).")
  Path model;

  @Option(
      names = "--out",
      required = true,
      paramLabel = "DIR",
      description = "Output folder, written atomically.")
  Path out;

  @Option(names = "--overwrite", description = "Replace --out if it exists.")
  boolean overwrite;

  @Option(
      names = "--method",
      defaultValue = "magnitude",
      paramLabel = "NAME",
      description = "magnitude|lp|sensitivity|taylor|wanda|sparsegpt (default: ${DEFAULT-VALUE}).")
  String method;

  @Option(
      names = "--sparsity",
      defaultValue = "0.5",
      paramLabel = "P",
      description =
          "Fraction removed: of each comparison group (unstructured), or of the channels/heads/layers (default: ${DEFAULT-VALUE}).")
  double sparsity;

  @Option(
      names = "--pattern",
      paramLabel = "N:M",
      description =
          "Semi-structured: keep at most N of every M consecutive input weights (2:4, 4:8).")
  String pattern;

  @Option(
      names = "--structure",
      defaultValue = "unstructured",
      paramLabel = "KIND",
      description = "unstructured|channels|heads|layers (default: ${DEFAULT-VALUE}).")
  String structure;

  @Option(
      names = "--drop-layers",
      split = ",",
      paramLabel = "I,J",
      description = "Remove these decoder layers (implies --structure layers).")
  int[] dropLayers;

  @Option(
      names = "--p",
      defaultValue = "2",
      description = "The norm of --method lp: 1 or 2 (default: ${DEFAULT-VALUE}).")
  double p;

  @Option(
      names = "--compare",
      paramLabel = "matrix|row",
      description =
          "Unstructured: the comparison group (default: row for wanda, matrix otherwise).")
  String compare;

  @Option(
      names = "--taylor-group",
      defaultValue = "element",
      paramLabel = "element|vector",
      description =
          "Taylor group score: sum of |g w| (element) or |sum g w| (vector) (default: ${DEFAULT-VALUE}).")
  String taylorGroup;

  @Mixin CalibrationOptions calibration;

  @Option(
      names = "--grad-batch",
      defaultValue = "8",
      paramLabel = "B",
      description = "sensitivity/taylor: windows per backward pass (default: ${DEFAULT-VALUE}).")
  int gradBatch;

  @Option(
      names = {"--damp", "--damp-percent"},
      defaultValue = "0.01",
      description =
          "SparseGPT dampening, a fraction of the mean Hessian diagonal (default: ${DEFAULT-VALUE}).")
  double damp;

  @Option(
      names = "--block-size",
      defaultValue = "128",
      description = "SparseGPT mask block and lazy-update block (default: ${DEFAULT-VALUE}).")
  int blockSize;

  @Option(
      names = "--ignore",
      paramLabel = "REGEX",
      description = "Leave matrices whose module name matches as they are (repeatable).")
  List<String> ignore = new ArrayList<>();

  @Option(
      names = "--format",
      defaultValue = "dense",
      paramLabel = "dense|sparse-24-bitmask",
      description =
          "Output layout: zeros in place, or (2:4 only) compressed-tensors' sparse-24-bitmask (default: ${DEFAULT-VALUE}).")
  String format;

  @Mixin OutputOptions output;

  @Mixin MemoryOptions memory;

  @Mixin CommonOptions common;

  @Spec CommandSpec spec;

  @Override
  public Integer call() {
    common.configureEngine();
    if (memory.dryRun) {
      MemoryOptions.print(
          spec.commandLine().getOut(), new PruneStage().plan(settings()), common.json, common);
      return Llmc.OK;
    }
    PruneReport report = new PruneStage().run(settings(), common.progress());
    PrintWriter stdout = spec.commandLine().getOut();
    if (common.json) {
      common.print(stdout, Reports.toJson(report));
    } else {
      printSummary(stdout, report);
    }
    return Llmc.OK;
  }

  /** The options as settings; the settings check themselves. */
  private PruneSettings settings() {
    PruneMethod m;
    try {
      m = PruneMethod.valueOf(method.toUpperCase());
    } catch (IllegalArgumentException e) {
      throw new BadInputException(
          "--method '" + method + "': use magnitude, lp, sensitivity, taylor, wanda or sparsegpt");
    }
    PruneSettings.Builder b =
        PruneSettings.builder(model, out, m)
            .overwrite(overwrite)
            .sparsity(sparsity)
            .pattern(pattern)
            .structure(
                switch (structure.toLowerCase()) {
                  case "unstructured" -> null;
                  case "channels" -> Structured.Structure.CHANNELS;
                  case "heads" -> Structured.Structure.HEADS;
                  case "layers" -> Structured.Structure.LAYERS;
                  default ->
                      throw new BadInputException(
                          "--structure '"
                              + structure
                              + "': use unstructured, channels, heads or layers");
                })
            .compare(
                compare == null
                    ? null
                    : switch (compare.toLowerCase()) {
                      case "matrix" -> Compare.MATRIX;
                      case "row" -> Compare.ROW;
                      default ->
                          throw new BadInputException(
                              "--compare '" + compare + "': use matrix or row");
                    })
            .p(p)
            .taylorGroup(
                switch (taylorGroup.toLowerCase()) {
                  case "element" -> Structured.GroupReduce.SUM;
                  case "vector" -> Structured.GroupReduce.ABS_OF_SUM;
                  default ->
                      throw new BadInputException(
                          "--taylor-group '" + taylorGroup + "': use element or vector");
                })
            .calibration(calibration.toSettings())
            .gradBatch(gradBatch)
            .damp(damp)
            .blockSize(blockSize)
            .format(
                switch (format.toLowerCase()) {
                  case "dense" -> PruneSettings.Format.DENSE;
                  case "sparse-24-bitmask" -> PruneSettings.Format.SPARSE_24_BITMASK;
                  default ->
                      throw new BadInputException(
                          "--format '" + format + "': use dense or sparse-24-bitmask");
                })
            .eval(output.evaluation())
            .maxShardBytes(output.maxShardBytes())
            .maxMemoryBytes(memory.maxMemoryBytes())
            .workDir(output.workDir)
            .resume(output.resume);
    if (dropLayers != null) {
      b.dropLayers(dropLayers);
    }
    ignore.forEach(b::ignore);
    return b.build();
  }

  private static void printSummary(PrintWriter out, PruneReport r) {
    out.printf("pruned    %s -> %s (%s, %s)%n", r.model(), r.out(), r.method(), r.pattern());
    out.printf(
        "sparsity  %.2f%% of the linear layers' weights are zero (%,d of %,d)%n",
        100 * r.sparsity().linear(), r.sparsity().zeros(), r.sparsity().weights());
    if (r.structured() != null) {
      PruneReport.Structure s = r.structured();
      out.printf(
          "shape     %s; parameters %,d -> %,d%n",
          Reports.toJson(s.config()), s.parametersBefore(), s.parametersAfter());
    }
    out.printf(
        "size      %s -> %s%n",
        Sizes.human(r.size().inputBytes()), Sizes.human(r.size().outputBytes()));
    Summaries.qualityAndWarnings(out, r.eval(), r.warnings());
    out.flush();
  }
}
