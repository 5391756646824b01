package llmc.cli;

import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import llmc.formats.BadInputException;
import llmc.formats.gguf.GgmlType;
import llmc.formats.quant.CheckpointFormat;
import llmc.pipeline.ExportReport;
import llmc.pipeline.QuantizeReport;
import llmc.pipeline.QuantizeSettings;
import llmc.pipeline.QuantizeStage;
import llmc.pipeline.Reports;
import llmc.quantize.Rtn;
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
      paramLabel = "gptq|rtn|awq|awq-gptq|none",
      description =
          "GPTQ, round-to-nearest, AWQ (activation-aware scales, then round-to-nearest; with"
              + " --clip mse, AWQ's clipping search too), AWQ's scales then GPTQ, or none (no"
              + " weight quantization: only --kv-cache) (default: ${DEFAULT-VALUE}).")
  String method;

  @Option(
      names = {"--bits", "--wbits"},
      description = "Bits per weight, 2..8 (default: 4; with --format gguf, the type's).")
  Integer bits;

  @Option(
      names = "--group-size",
      paramLabel = "G",
      description =
          "Input columns per scale; -1 = one scale per row (per-channel) (default: 128; GGUF: 32).")
  Integer groupSize;

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
          "rtn: search a shrunk range per group for the lowest squared weight error; awq: AWQ's"
              + " clipping search, a shrunk range per group for the lowest output error on the"
              + " calibration data, q and k left whole (default: ${DEFAULT-VALUE}).")
  String clip;

  @Option(
      names = "--scheme",
      paramLabel = "w8a8|fp8|fp8-dynamic",
      description =
          "A vLLM scheme, written as compressed-tensors: w8a8 (int8 weights per output channel,"
              + " int8 activations per token, dynamic), fp8 (E4M3 weights per output channel, 16-bit"
              + " activations), fp8-dynamic (E4M3 weights, E4M3 activations per token). Sets 8 bits,"
              + " one scale per row, symmetric.")
  String scheme;

  @Option(
      names = "--smoothquant",
      paramLabel = "ALPHA",
      description =
          "SmoothQuant before quantizing: s = max|X|^ALPHA / max|W|^(1-ALPHA) per input feature of"
              + " (q,k,v) and (gate,up), folded into the norms (needs --calib; 0.5 is the paper's"
              + " default).")
  Double smoothQuant;

  @Option(
      names = "--kv-cache",
      paramLabel = "fp8|int8",
      description =
          "Quantize the key/value cache, stored as compressed-tensors' kv_cache_scheme: fp8 (E4M3,"
              + " one scale per layer for keys and one for values, calibrated on --calib: vLLM's FP8"
              + " KV cache) or int8 (a scale per token and head, computed as the cache is written)."
              + " llmc eval simulates it.")
  String kvCache;

  @Option(
      names = "--target-bpw",
      paramLabel = "BITS",
      description =
          "An automatic bit budget: code bits per weight over the quantized matrices (scales not"
              + " counted). Each matrix's sensitivity at each of --bits-choices (the calibration"
              + " loss increase with only it rounded to nearest) is measured, and the bits that"
              + " minimise their sum under the budget are chosen (exact multiple-choice knapsack).")
  Double targetBpw;

  @Option(
      names = "--bits-choices",
      paramLabel = "B,B,...",
      split = ",",
      description = "With --target-bpw: the bits a matrix may get, e.g. 3,4 or 3,4,8.")
  List<Integer> bitsChoices;

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

  @Mixin MemoryOptions memory;

  @Mixin CommonOptions common;

  @Spec CommandSpec spec;

  @Override
  public Integer call() {
    common.configureEngine();
    if (memory.dryRun) {
      MemoryOptions.print(
          spec.commandLine().getOut(), new QuantizeStage().plan(settings()), common.json, common);
      return Llmc.OK;
    }
    QuantizeReport report = new QuantizeStage().run(settings(), common.progress());
    PrintWriter stdout = spec.commandLine().getOut();
    if (common.json) {
      common.print(stdout, Reports.toJson(report));
    } else {
      printSummary(stdout, report);
    }
    return Llmc.OK;
  }

  /** The options as settings; the settings check themselves. */
  private QuantizeSettings settings() {
    QuantizeSettings.Builder b =
        QuantizeSettings.builder(model, out)
            .overwrite(overwrite)
            .method(
                switch (method.toLowerCase()) {
                  case "gptq" -> QuantizeSettings.Method.GPTQ;
                  case "rtn" -> QuantizeSettings.Method.RTN;
                  case "awq" -> QuantizeSettings.Method.AWQ;
                  case "awq-gptq" -> QuantizeSettings.Method.AWQ_GPTQ;
                  case "none" -> QuantizeSettings.Method.NONE;
                  default ->
                      throw new BadInputException(
                          "--method '" + method + "': use gptq, rtn, awq, awq-gptq or none");
                })
            .bits(bits)
            .groupSize(groupSize)
            .scheme(
                scheme == null
                    ? null
                    : switch (scheme.toLowerCase()) {
                      case "w8a8" -> QuantizeSettings.Scheme.W8A8;
                      case "fp8" -> QuantizeSettings.Scheme.FP8;
                      case "fp8-dynamic", "fp8_dynamic" -> QuantizeSettings.Scheme.FP8_DYNAMIC;
                      default ->
                          throw new BadInputException(
                              "--scheme '" + scheme + "': use w8a8, fp8 or fp8-dynamic");
                    })
            .smoothQuant(smoothQuant)
            .targetBpw(targetBpw, bitsChoices)
            .kvCache(
                kvCache == null
                    ? null
                    : switch (kvCache.toLowerCase()) {
                      case "fp8" -> QuantizeSettings.KvCache.FP8;
                      case "int8" -> QuantizeSettings.KvCache.INT8;
                      default ->
                          throw new BadInputException(
                              "--kv-cache '" + kvCache + "': use fp8 or int8");
                    })
            .symmetric(symmetry == null ? null : !symmetry.asym)
            .actOrder(actOrder)
            .staticGroups(staticGroups)
            .damp(damp)
            .blockSize(blockSize)
            .clip(
                switch (clip.toLowerCase()) {
                  case "none" -> Rtn.Clip.NONE;
                  case "mse" -> Rtn.Clip.MSE;
                  default -> throw new BadInputException("--clip '" + clip + "': use none or mse");
                })
            .calibration(calibration.toSettings())
            .format(
                switch (format.toLowerCase()) {
                  case "gptq" -> QuantizeSettings.Format.GPTQ;
                  case "compressed-tensors" -> QuantizeSettings.Format.COMPRESSED_TENSORS;
                  case "dense" -> QuantizeSettings.Format.DENSE;
                  case "gguf" -> QuantizeSettings.Format.GGUF;
                  default ->
                      throw new BadInputException(
                          "--format '" + format + "': use gptq, compressed-tensors, dense or gguf");
                })
            .ggufType(ggufType == null ? null : GgmlType.byName(ggufType.toLowerCase()))
            .checkpointFormat(
                switch (checkpointFormat.toLowerCase()) {
                  case "v1", "gptq" -> CheckpointFormat.V1;
                  case "v2", "gptq_v2" -> CheckpointFormat.V2;
                  default ->
                      throw new BadInputException(
                          "--checkpoint-format '" + checkpointFormat + "': use v1 or v2");
                })
            .saveStats(saveStats)
            .stats(stats)
            .eval(output.evaluation())
            .maxShardBytes(output.maxShardBytes())
            .maxMemoryBytes(memory.maxMemoryBytes())
            .workDir(output.workDir)
            .resume(output.resume);
    ignore.forEach(b::ignore);
    bitsFor.forEach(b::bitsFor);
    return b.build();
  }

  private static void printSummary(PrintWriter out, QuantizeReport r) {
    QuantizeReport.Scheme s = r.scheme();
    out.printf(
        "quantized %s -> %s (%s, written as %s%s)%n",
        r.model(),
        r.out(),
        r.method(),
        r.format(),
        r.checkpointFormat() != null
            ? " checkpoint_format " + r.checkpointFormat()
            : r.ggufType() != null ? " " + r.ggufType() : "");
    out.printf(
        "scheme    %d bits, group %d, %s%s%n",
        s.bits(),
        s.groupSize(),
        s.sym() ? "symmetric" : "asymmetric",
        Boolean.TRUE.equals(s.actOrder()) ? ", act-order" : "");
    out.printf(
        "matrices  %d quantized in %.1f s (total %.1f s)%n",
        r.matrices().size(), r.seconds().quantize(), r.seconds().total());
    out.printf(
        "size      %s -> %s (%.2fx smaller)%n",
        Sizes.human(r.size().inputBytes()),
        Sizes.human(r.size().outputBytes()),
        r.size().compression());
    if (r.sparsity() != null) {
      out.printf(
          "sparsity  %,d of the input's %,d zeros are still 0%s%n",
          r.sparsity().zerosKept(),
          r.sparsity().inputZeros(),
          r.sparsity().survived() ? " (survived)" : "");
    }
    if (r.fallbacks() != null) {
      for (ExportReport.Fallback f : r.fallbacks()) {
        out.printf("fallback  %s stored as %s: %s%n", f.name(), f.type(), f.reason());
      }
    }
    Summaries.qualityAndWarnings(out, r.eval(), r.warnings());
    out.flush();
  }
}
