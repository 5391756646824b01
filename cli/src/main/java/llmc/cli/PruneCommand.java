package llmc.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.regex.Pattern;
import java.util.regex.PatternSyntaxException;
import llmc.formats.BadInputException;
import llmc.prune.Compare;
import llmc.prune.SparsityPattern;
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

  @Mixin CommonOptions common;

  @Spec CommandSpec spec;

  @Override
  public Integer call() {
    common.configureEngine();
    PruneOptions options = options();
    ObjectNode report = new PruneJob(options).run();
    PrintWriter stdout = spec.commandLine().getOut();
    if (common.json) {
      common.print(stdout, report);
    } else {
      printSummary(stdout, report);
    }
    return Llmc.OK;
  }

  private PruneOptions options() {
    PruneOptions.Method m;
    try {
      m = PruneOptions.Method.valueOf(method.toUpperCase());
    } catch (IllegalArgumentException e) {
      throw new BadInputException(
          "--method '" + method + "': use magnitude, lp, sensitivity, taylor, wanda or sparsegpt");
    }
    Structured.Structure s =
        switch (structure.toLowerCase()) {
          case "unstructured" -> null;
          case "channels" -> Structured.Structure.CHANNELS;
          case "heads" -> Structured.Structure.HEADS;
          case "layers" -> Structured.Structure.LAYERS;
          default ->
              throw new BadInputException(
                  "--structure '" + structure + "': use unstructured, channels, heads or layers");
        };
    if (dropLayers != null) {
      if (s != null && s != Structured.Structure.LAYERS) {
        throw new BadInputException("--drop-layers removes layers; drop --structure " + structure);
      }
      s = Structured.Structure.LAYERS;
    }
    if (!(sparsity >= 0 && sparsity < 1)) {
      throw new BadInputException("--sparsity " + sparsity + ": give a fraction in [0, 1)");
    }
    if (p != 1 && p != 2) {
      throw new BadInputException("--p " + p + ": use 1 or 2");
    }
    boolean bitmask =
        switch (format.toLowerCase()) {
          case "dense" -> false;
          case "sparse-24-bitmask" -> true;
          default ->
              throw new BadInputException(
                  "--format '" + format + "': use dense or sparse-24-bitmask");
        };
    Structured.GroupReduce reduce =
        switch (taylorGroup.toLowerCase()) {
          case "element" -> Structured.GroupReduce.SUM;
          case "vector" -> Structured.GroupReduce.ABS_OF_SUM;
          default ->
              throw new BadInputException(
                  "--taylor-group '" + taylorGroup + "': use element or vector");
        };
    if (bitmask && !"2:4".equals(pattern == null ? null : pattern.trim())) {
      throw new BadInputException(
          "--format sparse-24-bitmask stores 2:4 sparsity; add --pattern 2:4");
    }
    SparsityPattern sp = null;
    if (s == null) {
      if (pattern != null) {
        if (compare != null) {
          throw new BadInputException(
              "--compare is for unstructured sparsity; N:M compares within each block of M");
        }
        sp = SparsityPattern.parse(pattern);
      } else {
        Compare c =
            compare == null
                ? m.defaultCompare()
                : switch (compare.toLowerCase()) {
                  case "matrix" -> Compare.MATRIX;
                  case "row" -> Compare.ROW;
                  default ->
                      throw new BadInputException("--compare '" + compare + "': use matrix or row");
                };
        sp = new SparsityPattern.Unstructured(sparsity, c);
      }
    } else {
      if (pattern != null || compare != null) {
        throw new BadInputException(
            "--pattern and --compare are for unstructured pruning, not --structure " + structure);
      }
      if (m == PruneOptions.Method.WANDA || m == PruneOptions.Method.SPARSEGPT) {
        throw new BadInputException(
            "--structure "
                + structure
                + " scores groups with magnitude, lp, sensitivity or"
                + " taylor; wanda and sparsegpt prune single weights");
      }
    }
    Runs.Calibration calib = calibration.toCalibration();
    if (m.needsCalibration() && calib.file() == null) {
      throw new BadInputException(
          "--method "
              + m.name().toLowerCase()
              + " needs calibration data: give --calib FILE"
              + " (.jsonl or .txt), e.g. samples/data/tinystories/train.jsonl");
    }
    if (blockSize < 1 || damp <= 0 || gradBatch < 1) {
      throw new BadInputException(
          "--block-size and --grad-batch must be positive and --damp above 0");
    }
    List<Pattern> ignored = new ArrayList<>();
    for (String regex : ignore) {
      try {
        ignored.add(Pattern.compile(regex));
      } catch (PatternSyntaxException e) {
        throw new BadInputException(
            "--ignore '" + regex + "' is not a regular expression: " + e.getDescription());
      }
    }
    return new PruneOptions(
        model,
        out,
        overwrite,
        m,
        sp,
        s,
        sparsity,
        dropLayers,
        p,
        reduce,
        m.needsCalibration() ? calib : null,
        gradBatch,
        damp,
        blockSize,
        ignored,
        bitmask,
        output.eval,
        output.evalMaxWindows,
        output.maxShardBytes());
  }

  private static void printSummary(PrintWriter out, ObjectNode r) {
    out.printf(
        "pruned    %s -> %s (%s, %s)%n",
        r.get("model").asText(),
        r.get("out").asText(),
        r.get("method").asText(),
        r.get("pattern").asText());
    out.printf(
        "sparsity  %.2f%% of the linear layers' weights are zero (%,d of %,d)%n",
        100 * r.at("/sparsity/linear").asDouble(),
        r.at("/sparsity/zeros").asLong(),
        r.at("/sparsity/weights").asLong());
    if (r.has("structured")) {
      JsonNode s = r.get("structured");
      out.printf(
          "shape     %s; parameters %,d -> %,d%n",
          s.get("config").toString(),
          s.get("parameters_before").asLong(),
          s.get("parameters_after").asLong());
    }
    out.printf(
        "size      %s -> %s%n",
        Sizes.human(r.at("/size/input_bytes").asLong()),
        Sizes.human(r.at("/size/output_bytes").asLong()));
    Runs.printQualityAndWarnings(out, r);
    out.flush();
  }
}
