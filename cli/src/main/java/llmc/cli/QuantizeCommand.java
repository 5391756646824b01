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
import llmc.formats.gguf.GgmlType;
import llmc.quantize.QuantScheme;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

@Command(
    name = "quantize",
    mixinStandardHelpOptions = true,
    sortOptions = false,
    description = {
      "Post-training weight quantization of the decoder's linear layers (q, k, v, o, gate, up, down):",
      "GPTQ (layer-sequential, true-sequential, driven by calibration data) or round-to-nearest,",
      "written as a GPTQ, compressed-tensors or dense Hugging Face folder with llmc-report.json,",
      "or as one GGUF file for llama.cpp (--format gguf --gguf-type q4_0|q4_1|q5_0|q5_1|q8_0)."
    },
    footer = {
      "",
      "Examples:",
      "  llmc quantize samples/models/stories260K --out /tmp/stories-w4 --bits 4 --group-size 32 --asym \\",
      "      --calib samples/data/tinystories/train.jsonl --eval samples/data/tinystories/valid.jsonl",
      "  llmc quantize MODEL --out OUT --method rtn --bits 8 --format compressed-tensors",
      "  llmc quantize MODEL --out model-q4_1.gguf --format gguf --gguf-type q4_1 --calib c.jsonl",
      "  llmc quantize MODEL --out OUT --calib c.jsonl --bits 4 --bits-for 'down_proj$=8' --ignore 'layers\\.0\\.'"
    })
final class QuantizeCommand implements Callable<Integer> {
  @Parameters(
      index = "0",
      paramLabel = "MODEL",
      description = "A Hugging Face model folder (unquantized).")
  Path model;

  @Option(
      names = "--out",
      required = true,
      paramLabel = "DIR",
      description = "Output folder (a .gguf file with --format gguf), written atomically.")
  Path out;

  @Option(names = "--overwrite", description = "Replace --out if it exists.")
  boolean overwrite;

  @Option(
      names = "--method",
      defaultValue = "gptq",
      paramLabel = "gptq|rtn",
      description = "GPTQ or round-to-nearest (default: ${DEFAULT-VALUE}).")
  String method;

  @Option(
      names = {"--bits", "--wbits"},
      defaultValue = "4",
      description = "Bits per weight, 2..8 (default: ${DEFAULT-VALUE}).")
  int bits;

  @Option(
      names = "--group-size",
      defaultValue = "128",
      paramLabel = "G",
      description =
          "Input columns per scale; -1 = one scale per row (per-channel) (default: ${DEFAULT-VALUE}).")
  int groupSize;

  @ArgGroup(exclusive = true)
  Symmetry symmetry;

  static final class Symmetry {
    @Option(names = "--sym", description = "Symmetric grid, zero point 2^(bits-1) (the default).")
    boolean sym;

    @Option(names = "--asym", description = "Asymmetric grid with a zero point per group.")
    boolean asym;
  }

  @Option(
      names = {"--act-order", "--desc-act"},
      description = "GPTQ: process columns by decreasing Hessian diagonal.")
  boolean actOrder;

  @Option(
      names = "--static-groups",
      description = "GPTQ: group parameters from the original weights, before any update.")
  boolean staticGroups;

  @Option(
      names = {"--damp", "--damp-percent"},
      defaultValue = "0.01",
      description =
          "GPTQ dampening, a fraction of the mean Hessian diagonal (default: ${DEFAULT-VALUE}).")
  double damp;

  @Option(
      names = "--block-size",
      defaultValue = "128",
      description = "GPTQ lazy-update block (default: ${DEFAULT-VALUE}).")
  int blockSize;

  @Option(
      names = "--clip",
      defaultValue = "none",
      paramLabel = "none|mse",
      description =
          "RTN: search a shrunk range per group for the lowest squared error (default: ${DEFAULT-VALUE}).")
  String clip;

  @Mixin CalibrationOptions calibration;

  @Option(
      names = "--format",
      defaultValue = "gptq",
      paramLabel = "gptq|compressed-tensors|dense|gguf",
      description = "Output layout (default: ${DEFAULT-VALUE}).")
  String format;

  @Option(
      names = "--gguf-type",
      paramLabel = "TYPE",
      description = {
        "With --format gguf: the block type of the linear layers, q4_0|q4_1|q5_0|q5_1|q8_0. It sets the grid:",
        "groups of 32, symmetric (_0) or with a float16 min (_1), float16 scales, no act-order."
      })
  String ggufType;

  @Option(
      names = "--checkpoint-format",
      defaultValue = "v1",
      paramLabel = "v1|v2",
      description =
          "GPTQ zero points: v1 stores z-1 (what most readers expect), v2 stores z (default: ${DEFAULT-VALUE}).")
  String checkpointFormat;

  @Option(
      names = "--ignore",
      paramLabel = "REGEX",
      description =
          "Leave matrices whose module name matches unquantized (repeatable), e.g. 'layers\\.0\\.'.")
  List<String> ignore = new ArrayList<>();

  @Option(
      names = "--bits-for",
      paramLabel = "REGEX=BITS",
      description =
          "Other bits for matching modules (repeatable; the last match wins), e.g. 'down_proj=8'.")
  List<String> bitsFor = new ArrayList<>();

  @Option(
      names = "--save-stats",
      paramLabel = "DIR",
      description =
          "Also save the calibration statistics of the unquantized model to DIR (to quantize again with --stats).")
  Path saveStats;

  @Option(
      names = "--stats",
      paramLabel = "DIR",
      description =
          "GPTQ from statistics saved with --save-stats, without calibration: fast, but not sequential.")
  Path stats;

  @Mixin OutputOptions output;

  @Mixin CommonOptions common;

  @Spec CommandSpec spec;

  @Override
  public Integer call() {
    common.configureEngine();
    QuantizeOptions options = options();
    ObjectNode report = new QuantizeJob(options, spec.commandLine().getErr()).run();
    PrintWriter stdout = spec.commandLine().getOut();
    if (common.json) {
      common.print(stdout, report);
    } else {
      printSummary(stdout, report);
    }
    return Llmc.OK;
  }

  private QuantizeOptions options() {
    QuantizeOptions.Method m =
        switch (method.toLowerCase()) {
          case "gptq" -> QuantizeOptions.Method.GPTQ;
          case "rtn" -> QuantizeOptions.Method.RTN;
          default -> throw new BadInputException("--method '" + method + "': use gptq or rtn");
        };
    QuantizeOptions.Format f =
        switch (format.toLowerCase()) {
          case "gptq" -> QuantizeOptions.Format.GPTQ;
          case "compressed-tensors" -> QuantizeOptions.Format.COMPRESSED_TENSORS;
          case "dense" -> QuantizeOptions.Format.DENSE;
          case "gguf" -> QuantizeOptions.Format.GGUF;
          default ->
              throw new BadInputException(
                  "--format '" + format + "': use gptq, compressed-tensors, dense or gguf");
        };
    GgmlType gguf = ggufType(f);
    boolean v2 =
        switch (checkpointFormat.toLowerCase()) {
          case "v1", "gptq" -> false;
          case "v2", "gptq_v2" -> true;
          default ->
              throw new BadInputException(
                  "--checkpoint-format '" + checkpointFormat + "': use v1 or v2");
        };
    boolean clipMse =
        switch (clip.toLowerCase()) {
          case "none" -> false;
          case "mse" -> true;
          default -> throw new BadInputException("--clip '" + clip + "': use none or mse");
        };
    Runs.Calibration calib = calibration.toCalibration();
    if (groupSize == 0 || groupSize < -1) {
      throw new BadInputException(
          "--group-size " + groupSize + ": use a positive size or -1 (per-channel)");
    }
    if (blockSize < 1 || damp <= 0) {
      throw new BadInputException("--block-size must be positive and --damp above 0");
    }
    if (m == QuantizeOptions.Method.RTN && (actOrder || staticGroups)) {
      throw new BadInputException(
          "--act-order and --static-groups are GPTQ options; drop them or use --method gptq");
    }
    List<Pattern> ignored = new ArrayList<>();
    for (String regex : ignore) {
      ignored.add(regex("--ignore", regex));
    }
    List<QuantizeOptions.BitsOverride> overrides = new ArrayList<>();
    for (String spec : bitsFor) {
      int eq = spec.lastIndexOf('=');
      if (eq <= 0) {
        throw new BadInputException("--bits-for '" + spec + "': use REGEX=BITS, e.g. down_proj=8");
      }
      int b;
      try {
        b = Integer.parseInt(spec.substring(eq + 1));
      } catch (NumberFormatException e) {
        throw new BadInputException("--bits-for '" + spec + "': BITS must be a number from 2 to 8");
      }
      overrides.add(
          new QuantizeOptions.BitsOverride(regex("--bits-for", spec.substring(0, eq)), b));
    }
    if (stats != null && (calib.file() != null || saveStats != null)) {
      throw new BadInputException("--stats replaces calibration: drop --calib and --save-stats");
    }
    if (m == QuantizeOptions.Method.RTN && (stats != null || saveStats != null)) {
      throw new BadInputException(
          "RTN uses no calibration statistics: drop --stats / --save-stats or use --method gptq");
    }
    boolean symmetric = symmetry == null || !symmetry.asym;
    if (gguf != null) {
      QuantScheme grid = QuantScheme.ggml(gguf);
      bits = grid.bits();
      groupSize = grid.groupSize();
      symmetric = grid.symmetric();
    }
    return new QuantizeOptions(
        model,
        out,
        overwrite,
        m,
        bits,
        groupSize,
        symmetric,
        actOrder,
        staticGroups,
        damp,
        blockSize,
        clipMse,
        calib,
        f,
        v2,
        ignored,
        overrides,
        output.eval,
        output.evalMaxWindows,
        output.maxShardBytes(),
        saveStats,
        stats,
        gguf);
  }

  /**
   * The GGUF block type, which fixes the grid: options that say otherwise are refused rather than
   * ignored, and so is act-order (ggml's blocks are 32 consecutive input columns with no column
   * permutation).
   */
  private GgmlType ggufType(QuantizeOptions.Format f) {
    if (f != QuantizeOptions.Format.GGUF) {
      if (ggufType != null) {
        throw new BadInputException("--gguf-type needs --format gguf");
      }
      return null;
    }
    if (ggufType == null) {
      throw new BadInputException(
          "--format gguf needs --gguf-type q4_0|q4_1|q5_0|q5_1|q8_0 (the block type of the"
              + " linear layers)");
    }
    GgmlType type = GgmlType.byName(ggufType.toLowerCase());
    if (!type.isQuantized()) {
      throw new BadInputException(
          "--gguf-type "
              + ggufType
              + " is not quantized; use llmc export --format gguf"
              + " --type "
              + type.ggmlName()
              + " for a dense GGUF file");
    }
    QuantScheme grid = QuantScheme.ggml(type);
    var parsed = spec.commandLine().getParseResult();
    if (parsed.hasMatchedOption("--bits") && bits != grid.bits()) {
      throw new BadInputException(
          "--bits "
              + bits
              + " contradicts --gguf-type "
              + type.ggmlName()
              + " ("
              + grid.bits()
              + " bits); drop --bits");
    }
    if (parsed.hasMatchedOption("--group-size") && groupSize != grid.groupSize()) {
      throw new BadInputException(
          "--group-size "
              + groupSize
              + ": GGUF blocks hold groups of "
              + grid.groupSize()
              + " consecutive input columns; drop --group-size");
    }
    if (symmetry != null && (symmetry.asym == grid.symmetric())) {
      throw new BadInputException(
          "--gguf-type "
              + type.ggmlName()
              + " is "
              + (grid.symmetric()
                  ? "symmetric (_0 types)"
                  : "asymmetric, with a float16 min (_1 types)")
              + "; drop --sym/--asym or pick the other type");
    }
    if (actOrder) {
      throw new BadInputException(
          "--act-order: GGUF blocks are 32 consecutive input columns in their original order,"
              + " which act-order's groups are not; drop --act-order (or use --static-groups)");
    }
    if (!bitsFor.isEmpty()) {
      throw new BadInputException(
          "--bits-for: a GGUF file from llmc has one block type for its linear layers; use"
              + " --ignore to keep modules in F16");
    }
    if (output.shardSizeGiven()) {
      throw new BadInputException("--max-shard-size: a GGUF file is not sharded");
    }
    return type;
  }

  private static Pattern regex(String option, String regex) {
    try {
      return Pattern.compile(regex);
    } catch (PatternSyntaxException e) {
      throw new BadInputException(
          option + " '" + regex + "' is not a regular expression: " + e.getDescription());
    }
  }

  private static void printSummary(PrintWriter out, ObjectNode r) {
    JsonNode s = r.get("scheme");
    out.printf(
        "quantized %s -> %s (%s, written as %s%s)%n",
        r.get("model").asText(),
        r.get("out").asText(),
        r.get("method").asText(),
        r.get("format").asText(),
        r.has("checkpoint_format")
            ? " checkpoint_format " + r.get("checkpoint_format").asText()
            : r.has("gguf_type") ? " " + r.get("gguf_type").asText() : "");
    out.printf(
        "scheme    %d bits, group %d, %s%s%n",
        s.get("bits").asInt(),
        s.get("group_size").asInt(),
        s.get("sym").asBoolean() ? "symmetric" : "asymmetric",
        s.path("act_order").asBoolean() ? ", act-order" : "");
    out.printf(
        "matrices  %d quantized in %.1f s (total %.1f s)%n",
        r.get("matrices").size(),
        r.at("/seconds/quantize").asDouble(),
        r.at("/seconds/total").asDouble());
    out.printf(
        "size      %s -> %s (%.2fx smaller)%n",
        Sizes.human(r.at("/size/input_bytes").asLong()),
        Sizes.human(r.at("/size/output_bytes").asLong()),
        r.at("/size/compression").asDouble());
    if (r.has("sparsity")) {
      out.printf(
          "sparsity  %,d of the input's %,d zeros are still 0%s%n",
          r.at("/sparsity/zeros_kept").asLong(),
          r.at("/sparsity/input_zeros").asLong(),
          r.at("/sparsity/survived").asBoolean() ? " (survived)" : "");
    }
    for (JsonNode f : r.path("fallbacks")) {
      out.printf(
          "fallback  %s stored as %s: %s%n",
          f.get("name").asText(), f.get("type").asText(), f.get("reason").asText());
    }
    Runs.printQualityAndWarnings(out, r);
    out.flush();
  }
}
