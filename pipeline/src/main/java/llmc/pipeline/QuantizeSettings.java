package llmc.pipeline;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.regex.Pattern;
import java.util.regex.PatternSyntaxException;
import llmc.formats.InvalidSettingException;
import llmc.formats.gguf.GgmlType;
import llmc.formats.quant.CheckpointFormat;
import llmc.formats.quant.InputQuantization;
import llmc.formats.quant.KvCacheQuantization;
import llmc.quantize.QuantScheme;
import llmc.quantize.Rtn;

/**
 * Everything a quantization run needs, checked when built: whatever made it (the command line, a
 * recipe, a Java caller) gets the same checks and the same messages, which name these settings.
 * {@link #builder} fills the defaults.
 *
 * @param model a Hugging Face folder (unquantized)
 * @param out the output folder, or the {@code .gguf} file with {@link Format#GGUF}
 * @param overwrite replace an output llmc wrote before
 * @param bits bits per weight, 2..8 (the GGUF type's with {@link Format#GGUF})
 * @param groupSize input columns per scale, or -1 for one scale per row
 * @param symmetric a symmetric grid (zero point {@code 2^(bits-1)}) rather than one zero per group
 * @param damp GPTQ's dampening, a fraction of the mean Hessian diagonal
 * @param blockSize GPTQ's lazy-update block
 * @param clip RTN's range search
 * @param calibration the calibration windows (GPTQ), or null
 * @param ggufType with {@link Format#GGUF}: the block type of the linear layers, else null
 * @param checkpointFormat GPTQ layout's zero points: v1 stores {@code z-1}, v2 stores {@code z}
 * @param ignore modules (e.g. {@code model.layers.0.mlp.down_proj}) left unquantized when a pattern
 *     finds them
 * @param bitsFor other bits for matching modules (the last match wins)
 * @param saveStats also save the unquantized model's calibration statistics there, or null
 * @param stats GPTQ from statistics saved before instead of calibration, or null
 * @param eval measure the quality before and after, or null
 * @param maxShardBytes largest safetensors shard, or null for 5 GB
 * @param maxMemoryBytes the memory the run may use at its peak ({@link MemoryPlan}), or null for
 *     three quarters of the machine's
 * @param workDir where finished layers are kept while the run goes, or null for {@code OUT.work}
 * @param resume continue from the layers {@code workDir} holds
 * @param scheme a vLLM scheme of 8-bit weights and (dynamic, per-token) activations, written as
 *     compressed-tensors' int-quantized or float-quantized; null for the weight grid of {@code
 *     bits}
 * @param smoothQuant SmoothQuant's migration strength alpha, or null for none
 * @param kvCache how the key/value cache is quantized (its scheme in the output's config, static
 *     scales calibrated), or null for none
 * @param targetBpw an automatic bit budget: the code bits per weight of the quantized matrices
 *     ({@link BitAllocation}), or null for {@code bits} and {@code bitsFor}
 * @param bitsChoices with {@code targetBpw}, the bits each matrix may get, ascending
 */
public record QuantizeSettings(
    Path model,
    Path out,
    boolean overwrite,
    Method method,
    int bits,
    int groupSize,
    boolean symmetric,
    boolean actOrder,
    boolean staticGroups,
    double damp,
    int blockSize,
    Rtn.Clip clip,
    CalibrationSettings calibration,
    Format format,
    GgmlType ggufType,
    CheckpointFormat checkpointFormat,
    List<Pattern> ignore,
    List<BitsOverride> bitsFor,
    Path saveStats,
    Path stats,
    EvaluationSettings eval,
    Long maxShardBytes,
    Path workDir,
    boolean resume,
    Long maxMemoryBytes,
    Scheme scheme,
    Double smoothQuant,
    KvCache kvCache,
    Double targetBpw,
    List<Integer> bitsChoices) {

  /** 5 GB, Hugging Face's default shard size. */
  public static final long DEFAULT_SHARD_BYTES = 5_000_000_000L;

  public enum Method {
    GPTQ,
    RTN,
    /** AWQ's activation-aware scales, then round-to-nearest ({@link #clip} adds AWQ's clipping). */
    AWQ,
    /** AWQ's scales, then GPTQ on the scaled matrices. */
    AWQ_GPTQ,
    /** No weight quantization (the weights are copied): only {@link #kvCache}. */
    NONE;

    /** The name on the command line and in reports: gptq, rtn, awq, awq-gptq. */
    public String label() {
      return name().toLowerCase(java.util.Locale.ROOT).replace('_', '-');
    }

    /** Whether the method runs GPTQ (alone or after AWQ's scales). */
    public boolean gptq() {
      return this == GPTQ || this == AWQ_GPTQ;
    }

    /** Whether the method searches AWQ's scales. */
    public boolean awq() {
      return this == AWQ || this == AWQ_GPTQ;
    }

    /** Whether the method reads calibration statistics. */
    public boolean calibrated() {
      return this != RTN && this != NONE;
    }
  }

  /**
   * 8-bit weights per output channel, symmetric, for vLLM, with the activations its kernels
   * quantize at run time.
   */
  public enum Scheme {
    /** int8 weights, int8 activations per token (dynamic). */
    W8A8(false, InputQuantization.Type.INT8),
    /** FP8 E4M3 weights, 16-bit activations. */
    FP8(true, null),
    /** FP8 E4M3 weights, FP8 activations per token (dynamic). */
    FP8_DYNAMIC(true, InputQuantization.Type.FP8_E4M3);

    /** E4M3 weights rather than int8. */
    public final boolean fp8;

    /** How the runtime quantizes the activations, or null (16-bit activations). */
    public final InputQuantization.Type activations;

    Scheme(boolean fp8, InputQuantization.Type activations) {
      this.fp8 = fp8;
      this.activations = activations;
    }

    public String label() {
      return name().toLowerCase(java.util.Locale.ROOT).replace('_', '-');
    }

    /** The activation scheme, or null. */
    public InputQuantization inputQuantization() {
      return activations == null ? null : new InputQuantization(activations);
    }
  }

  /** How the key/value cache is quantized. */
  public enum KvCache {
    /** FP8 E4M3 with one calibrated scale per layer for keys and one for values (vLLM's). */
    FP8(KvCacheQuantization.Type.FP8_STATIC),
    /** int8 with a scale per token and head, computed as the cache is written. */
    INT8(KvCacheQuantization.Type.INT8_DYNAMIC);

    public final KvCacheQuantization.Type type;

    KvCache(KvCacheQuantization.Type type) {
      this.type = type;
    }

    public String label() {
      return name().toLowerCase(java.util.Locale.ROOT);
    }
  }

  /** Whether the run needs the activations' statistics (calibration data). */
  public boolean calibrated() {
    return method.calibrated()
        || smoothQuant != null
        || (scheme != null && scheme.activations != null && calibration != null);
  }

  /**
   * Whether the run reports its activation outliers: a scheme that quantizes activations, with
   * calibration data.
   */
  public boolean reportsOutliers() {
    return scheme != null && scheme.activations != null && calibration != null;
  }

  /** The output layout; GGUF is one file whose linear layers are blocks of {@code ggufType}. */
  public enum Format {
    GPTQ,
    COMPRESSED_TENSORS,
    DENSE,
    GGUF;

    public String label() {
      return name().toLowerCase().replace('_', '-');
    }
  }

  /** Matrices whose module name matches {@code pattern} get {@code bits}. */
  public record BitsOverride(Pattern pattern, int bits) {
    /** {@code REGEX=BITS}, e.g. {@code down_proj=8}. */
    public static BitsOverride parse(String spec) {
      int eq = spec.lastIndexOf('=');
      if (eq <= 0) {
        throw new InvalidSettingException("{bitsFor} '%s': use REGEX=BITS, e.g. down_proj=8", spec);
      }
      try {
        return new BitsOverride(
            regex("bitsFor", spec.substring(0, eq)), Integer.parseInt(spec.substring(eq + 1)));
      } catch (NumberFormatException e) {
        throw new InvalidSettingException(
            "{bitsFor} '%s': BITS must be a number from 2 to 8", spec);
      }
    }
  }

  public QuantizeSettings {
    if (model == null || out == null) {
      throw new InvalidSettingException("{model} and {out} are required");
    }
    Objects.requireNonNull(method, "method");
    Objects.requireNonNull(format, "format");
    clip = Objects.requireNonNullElse(clip, Rtn.Clip.NONE);
    checkpointFormat = Objects.requireNonNullElse(checkpointFormat, CheckpointFormat.V1);
    ignore = List.copyOf(ignore == null ? List.of() : ignore);
    bitsFor = List.copyOf(bitsFor == null ? List.of() : bitsFor);
    checkBits("bits", bits);
    for (BitsOverride b : bitsFor) {
      if (b.bits() < 2 || b.bits() > 8) {
        throw new InvalidSettingException(
            "{bitsFor} '%s=%s': llmc quantizes to 2..8 bits", b.pattern().pattern(), b.bits());
      }
    }
    if (groupSize == 0 || groupSize < -1) {
      throw new InvalidSettingException(
          "{groupSize} %s: use a positive size or -1 (one scale per row)", groupSize);
    }
    if (resume && saveStats != null) {
      throw new InvalidSettingException(
          "{resume} cannot continue a run that saves statistics ({saveStats}): run it again"
              + " without {resume}");
    }
    if (blockSize < 1) {
      throw new InvalidSettingException("{blockSize} %s: give a positive size", blockSize);
    }
    if (!(damp > 0 && damp < 1)) {
      throw new InvalidSettingException(
          "{damp} %s: give a fraction of the Hessian's mean diagonal between 0 and 1 (0.01 is"
              + " GPTQ's default)",
          damp);
    }
    if (maxMemoryBytes != null && maxMemoryBytes < 1) {
      throw new InvalidSettingException(
          "{maxMemoryBytes} %s: give a positive size", maxMemoryBytes);
    }
    if (maxShardBytes != null && maxShardBytes < 1) {
      throw new InvalidSettingException("{maxShardBytes} %s: give a positive size", maxShardBytes);
    }
    if (!method.gptq() && (actOrder || staticGroups)) {
      throw new InvalidSettingException(
          "{actOrder} and {staticGroups} are GPTQ settings; drop them or use {method} gptq or"
              + " awq-gptq");
    }
    if (method.gptq() && clip != Rtn.Clip.NONE) {
      throw new InvalidSettingException(
          "{clip} mse is a round-to-nearest search (rtn: the range with the least weight error;"
              + " awq: AWQ's clipping for the least output error); GPTQ finds its own ranges:"
              + " drop {clip} or use {method} rtn or awq");
    }
    if (method.awq() && (stats != null || saveStats != null)) {
      throw new InvalidSettingException(
          "AWQ needs the mean |x| of every input feature, which saved statistics do not keep:"
              + " drop {stats} / {saveStats} and give {calibration.file}");
    }
    if (stats != null && (calibration != null || saveStats != null)) {
      throw new InvalidSettingException(
          "{stats} replaces calibration: drop {calibration.file} and {saveStats}");
    }
    if (method == Method.RTN && (stats != null || saveStats != null)) {
      throw new InvalidSettingException(
          "RTN uses no calibration statistics: drop {stats} / {saveStats} or use {method} gptq");
    }
    if (method.awq() && calibration == null) {
      throw new InvalidSettingException(
          "AWQ needs calibration data: give {calibration.file} (.jsonl or .txt), e.g."
              + " samples/data/tinystories/train.jsonl, or use {method} rtn");
    }
    if (method == Method.GPTQ && calibration == null && stats == null) {
      throw new InvalidSettingException(
          "GPTQ needs calibration data: give {calibration.file} (.jsonl or .txt), e.g."
              + " samples/data/tinystories/train.jsonl, or {stats}, or use {method} rtn");
    }
    if (format == Format.GPTQ) {
      for (int b : allBits(bits, bitsFor)) {
        if (b != 2 && b != 3 && b != 4 && b != 8) {
          throw new InvalidSettingException(
              "{format} gptq holds 2, 3, 4 or 8 bits, not %s; use {format} compressed-tensors or"
                  + " dense",
              b);
        }
      }
    }
    checkGguf(format, ggufType, bits, groupSize, symmetric, actOrder, bitsFor, maxShardBytes);
    checkScheme(scheme, smoothQuant, method, format, bits, symmetric, bitsFor, calibration, stats);
    bitsChoices =
        bitsChoices == null ? List.of() : bitsChoices.stream().sorted().distinct().toList();
    checkBudget(targetBpw, bitsChoices, method, format, bitsFor, scheme, calibration, stats);
    if (kvCache != null && format != Format.COMPRESSED_TENSORS) {
      throw new InvalidSettingException(
          "{kvCache} %s is stored as compressed-tensors' kv_cache_scheme: use {format}"
              + " compressed-tensors",
          kvCache.label());
    }
    if (kvCache == KvCache.FP8 && (calibration == null || stats != null)) {
      throw new InvalidSettingException(
          "{kvCache} fp8 calibrates a scale per layer for the keys and the values: give"
              + " {calibration.file}");
    }
    if (method == Method.NONE && (kvCache == null || format != Format.COMPRESSED_TENSORS)) {
      throw new InvalidSettingException(
          "{method} none quantizes no weights: give {kvCache} fp8 or int8 with {format}"
              + " compressed-tensors, or choose a method");
    }
    if (method == Method.NONE && (scheme != null || smoothQuant != null)) {
      throw new InvalidSettingException(
          "{method} none quantizes no weights: drop {scheme} and {smoothQuant}");
    }
  }

  private static void checkBudget(
      Double targetBpw,
      List<Integer> bitsChoices,
      Method method,
      Format format,
      List<BitsOverride> bitsFor,
      Scheme scheme,
      CalibrationSettings calibration,
      Path stats) {
    if (targetBpw == null) {
      if (!bitsChoices.isEmpty()) {
        throw new InvalidSettingException("{bitsChoices} go with {targetBpw}: give both");
      }
      return;
    }
    if (bitsChoices.size() < 2) {
      throw new InvalidSettingException(
          "{targetBpw} needs at least two {bitsChoices}, e.g. 3,4 or 3,4,8");
    }
    for (int b : bitsChoices) {
      if (b < 2 || b > 8 || (format == Format.GPTQ && b != 2 && b != 3 && b != 4 && b != 8)) {
        throw new InvalidSettingException(
            "{bitsChoices} %s: give bits from 2 to 8 (2, 3, 4 or 8 with {format} gptq)", b);
      }
    }
    if (!(targetBpw >= bitsChoices.getFirst() && targetBpw <= bitsChoices.getLast())) {
      throw new InvalidSettingException(
          "{targetBpw} %s: give a budget between the smallest and the largest of {bitsChoices}"
              + " (%s)",
          targetBpw, bitsChoices);
    }
    if (!bitsFor.isEmpty() || scheme != null || format == Format.GGUF || method == Method.NONE) {
      throw new InvalidSettingException(
          "{targetBpw} chooses every matrix's bits itself: drop {bitsFor}, {scheme} and {format}"
              + " gguf, and give a method");
    }
    if (calibration == null || stats != null) {
      throw new InvalidSettingException(
          "{targetBpw} measures each matrix's sensitivity on calibration data: give"
              + " {calibration.file}");
    }
  }

  /** These settings with the bits of every matrix given ({@code bitsFor}), not chosen. */
  public QuantizeSettings withBits(List<BitsOverride> chosen) {
    return new QuantizeSettings(
        model,
        out,
        overwrite,
        method,
        bits,
        groupSize,
        symmetric,
        actOrder,
        staticGroups,
        damp,
        blockSize,
        clip,
        calibration,
        format,
        ggufType,
        checkpointFormat,
        ignore,
        chosen,
        saveStats,
        stats,
        eval,
        maxShardBytes,
        workDir,
        resume,
        maxMemoryBytes,
        scheme,
        smoothQuant,
        kvCache,
        null,
        null);
  }

  private static void checkScheme(
      Scheme scheme,
      Double smoothQuant,
      Method method,
      Format format,
      int bits,
      boolean symmetric,
      List<BitsOverride> bitsFor,
      CalibrationSettings calibration,
      Path stats) {
    if (scheme != null) {
      if (format != Format.COMPRESSED_TENSORS) {
        throw new InvalidSettingException(
            "{scheme} %s is written as compressed-tensors (what vLLM loads): use {format}"
                + " compressed-tensors",
            scheme.label());
      }
      if (bits != 8 || !symmetric || !bitsFor.isEmpty()) {
        throw new InvalidSettingException(
            "{scheme} %s has 8-bit symmetric weights: drop {bits}, {bitsFor} and the asymmetric"
                + " grid",
            scheme.label());
      }
      if (scheme.fp8 && method != Method.RTN) {
        throw new InvalidSettingException(
            "{scheme} %s rounds the weights to nearest E4M3 values: use {method} rtn (GPTQ and AWQ"
                + " on FP8 grids are not implemented)",
            scheme.label());
      }
    }
    if (smoothQuant != null) {
      if (!(smoothQuant >= 0 && smoothQuant <= 1)) {
        throw new InvalidSettingException(
            "{smoothQuant} %s: give the migration strength alpha, from 0 to 1 (0.5 is"
                + " SmoothQuant's default)",
            smoothQuant);
      }
      if (method.awq()) {
        throw new InvalidSettingException(
            "{smoothQuant} and AWQ both scale the inputs of the linear layers: choose one");
      }
      if (calibration == null || stats != null) {
        throw new InvalidSettingException(
            "{smoothQuant} needs the largest |x| of every input feature: give"
                + " {calibration.file} (saved statistics do not keep it)");
      }
    }
  }

  private static List<Integer> allBits(int bits, List<BitsOverride> bitsFor) {
    List<Integer> all = new ArrayList<>(List.of(bits));
    bitsFor.forEach(b -> all.add(b.bits()));
    return all;
  }

  private static void checkBits(String setting, int bits) {
    if (bits < 2 || bits > 8) {
      throw new InvalidSettingException("{" + setting + "} %s: llmc quantizes to 2..8 bits", bits);
    }
  }

  /**
   * The GGUF block type fixes the grid: settings that say otherwise are refused rather than
   * ignored, and so is act-order (ggml's blocks are 32 consecutive input columns, unpermuted).
   */
  private static void checkGguf(
      Format format,
      GgmlType type,
      int bits,
      int groupSize,
      boolean symmetric,
      boolean actOrder,
      List<BitsOverride> bitsFor,
      Long maxShardBytes) {
    if (format != Format.GGUF) {
      if (type != null) {
        throw new InvalidSettingException("{ggufType} needs {format} gguf");
      }
      return;
    }
    if (type == null) {
      throw new InvalidSettingException(
          "{format} gguf needs {ggufType} q4_0|q4_1|q5_0|q5_1|q8_0 (the block type of the linear"
              + " layers)");
    }
    if (!type.isQuantized()) {
      throw new InvalidSettingException(
          "{ggufType} %s is not quantized; export the model as a dense GGUF file instead",
          type.ggmlName());
    }
    QuantScheme grid = QuantScheme.ggml(type);
    if (bits != grid.bits()) {
      throw new InvalidSettingException(
          "{bits} %s contradicts {ggufType} %s (%s bits); drop {bits}",
          bits, type.ggmlName(), grid.bits());
    }
    if (groupSize != grid.groupSize()) {
      throw new InvalidSettingException(
          "{groupSize} %s: GGUF blocks hold groups of %s consecutive input columns; drop"
              + " {groupSize}",
          groupSize, grid.groupSize());
    }
    if (symmetric != grid.symmetric()) {
      throw new InvalidSettingException(
          "{ggufType} %s is %s; drop {symmetric} or pick the other type",
          type.ggmlName(),
          grid.symmetric() ? "symmetric (_0 types)" : "asymmetric, with a float16 min (_1 types)");
    }
    if (actOrder) {
      throw new InvalidSettingException(
          "{actOrder}: GGUF blocks are 32 consecutive input columns in their original order,"
              + " which act-order's groups are not; drop {actOrder} (or use {staticGroups})");
    }
    if (!bitsFor.isEmpty()) {
      throw new InvalidSettingException(
          "{bitsFor}: a GGUF file from llmc has one block type for its linear layers; use"
              + " {ignore} to keep modules in F16");
    }
    if (maxShardBytes != null) {
      throw new InvalidSettingException("{maxShardBytes}: a GGUF file is not sharded");
    }
  }

  /** Bits for a module (e.g. {@code model.layers.3.mlp.down_proj}), or null when ignored. */
  public Integer bitsOf(String module) {
    if (method == Method.NONE) {
      return null;
    }
    for (Pattern p : ignore) {
      if (p.matcher(module).find()) {
        return null;
      }
    }
    Integer chosen = bits;
    for (BitsOverride o : bitsFor) {
      if (o.pattern().matcher(module).find()) {
        chosen = o.bits();
      }
    }
    return chosen;
  }

  /** {@link #maxShardBytes}, or the default. */
  /** The work folder: {@link #workDir}, or {@code OUT.work} beside the output. */
  public Path work() {
    Path o = out.toAbsolutePath().normalize();
    return workDir != null ? workDir : o.resolveSibling(o.getFileName() + ".work");
  }

  /** {@link #maxMemoryBytes}, or the default. */
  public long memoryLimit() {
    return maxMemoryBytes != null ? maxMemoryBytes : MemoryPlan.defaultLimit();
  }

  public long shardBytes() {
    return maxShardBytes != null ? maxShardBytes : DEFAULT_SHARD_BYTES;
  }

  static Pattern regex(String setting, String regex) {
    try {
      return Pattern.compile(regex);
    } catch (PatternSyntaxException e) {
      throw new InvalidSettingException(
          "{" + setting + "} '%s' is not a regular expression: %s", regex, e.getDescription());
    }
  }

  public static Builder builder(Path model, Path out) {
    return new Builder(model, out);
  }

  /**
   * Settings with defaults: GPTQ, 4 bits, groups of 128, symmetric, damp 0.01, blocks of 128,
   * compressed as GPTQ layout v1; with {@link Format#GGUF} the bits, group size and symmetry come
   * from the type unless given.
   */
  public static final class Builder extends CompressionBuilder<Builder> {
    private Method method = Method.GPTQ;
    private Integer bits;
    private Integer groupSize;
    private Scheme scheme;
    private Double smoothQuant;
    private KvCache kvCache;
    private Double targetBpw;
    private List<Integer> bitsChoices;
    private Boolean symmetric;
    private boolean actOrder;
    private boolean staticGroups;
    private Rtn.Clip clip = Rtn.Clip.NONE;
    private Format format = Format.GPTQ;
    private GgmlType ggufType;
    private CheckpointFormat checkpointFormat = CheckpointFormat.V1;
    private final List<BitsOverride> bitsFor = new ArrayList<>();
    private Path saveStats;
    private Path stats;

    private Builder(Path model, Path out) {
      super(model, out);
    }

    @Override
    Builder self() {
      return this;
    }

    public Builder method(Method method) {
      this.method = method;
      return this;
    }

    /** Null: 4, or the GGUF type's. */
    public Builder bits(Integer bits) {
      this.bits = bits;
      return this;
    }

    /** Null: 128, or the GGUF type's 32. */
    public Builder groupSize(Integer groupSize) {
      this.groupSize = groupSize;
      return this;
    }

    /** Null: symmetric, or as the GGUF type is. */
    public Builder symmetric(Boolean symmetric) {
      this.symmetric = symmetric;
      return this;
    }

    public Builder actOrder(boolean actOrder) {
      this.actOrder = actOrder;
      return this;
    }

    public Builder staticGroups(boolean staticGroups) {
      this.staticGroups = staticGroups;
      return this;
    }

    public Builder clip(Rtn.Clip clip) {
      this.clip = clip;
      return this;
    }

    public Builder format(Format format) {
      this.format = format;
      return this;
    }

    /** Also sets the format to GGUF. */
    public Builder gguf(GgmlType type) {
      this.format = Format.GGUF;
      this.ggufType = type;
      return this;
    }

    public Builder ggufType(GgmlType type) {
      this.ggufType = type;
      return this;
    }

    public Builder checkpointFormat(CheckpointFormat checkpointFormat) {
      this.checkpointFormat = checkpointFormat;
      return this;
    }

    /** {@code REGEX=BITS}. */
    public Builder bitsFor(String spec) {
      bitsFor.add(BitsOverride.parse(spec));
      return this;
    }

    public Builder saveStats(Path dir) {
      this.saveStats = dir;
      return this;
    }

    public Builder stats(Path dir) {
      this.stats = dir;
      return this;
    }

    /** A vLLM scheme (W8A8, FP8); null for the weight grid of {@link #bits}. */
    public Builder scheme(Scheme scheme) {
      this.scheme = scheme;
      return this;
    }

    /** An automatic bit budget of {@code bpw} code bits per weight over {@code choices}. */
    public Builder targetBpw(Double bpw, List<Integer> choices) {
      this.targetBpw = bpw;
      this.bitsChoices = choices;
      return this;
    }

    /** The key/value cache's quantization; null for none. */
    public Builder kvCache(KvCache kvCache) {
      this.kvCache = kvCache;
      return this;
    }

    /** SmoothQuant with migration strength {@code alpha}; null for none. */
    public Builder smoothQuant(Double alpha) {
      this.smoothQuant = alpha;
      return this;
    }

    public QuantizeSettings build() {
      QuantScheme grid =
          format == Format.GGUF && ggufType != null && ggufType.isQuantized()
              ? QuantScheme.ggml(ggufType)
              : null;
      return new QuantizeSettings(
          model,
          out,
          overwrite,
          method,
          bits != null ? bits : grid != null ? grid.bits() : scheme != null ? 8 : 4,
          groupSize != null
              ? groupSize
              : grid != null ? grid.groupSize() : scheme != null ? -1 : 128,
          symmetric != null ? symmetric : grid == null || grid.symmetric(),
          actOrder,
          staticGroups,
          damp,
          blockSize,
          clip,
          calibration,
          format,
          ggufType,
          checkpointFormat,
          ignore,
          bitsFor,
          saveStats,
          stats,
          eval,
          maxShardBytes,
          workDir,
          resume,
          maxMemoryBytes,
          scheme,
          smoothQuant,
          kvCache,
          targetBpw,
          bitsChoices);
    }
  }
}
