package llmc.pipeline;

import java.nio.file.Path;
import java.util.List;
import java.util.Objects;
import java.util.regex.Pattern;
import llmc.formats.InvalidSettingException;
import llmc.prune.Compare;
import llmc.prune.PruneMethod;
import llmc.prune.SparsityPattern;
import llmc.prune.structured.Structured;

/**
 * Everything a pruning run needs, checked when built (messages name these settings). {@link
 * #builder} fills the defaults.
 *
 * @param pattern unstructured (with its comparison group) or N:M; null when {@code structure} is
 *     set
 * @param structure channels, heads or layers (a physically smaller model), or null
 * @param sparsity the fraction removed: of each comparison group (unstructured, also in {@code
 *     pattern}), or of the channels / head groups / layers
 * @param dropLayers with {@link Structured.Structure#LAYERS}: these layers, or null to choose by
 *     score
 * @param p the norm of {@link PruneMethod#LP}: 1 or 2
 * @param taylorGroup how Taylor scores of a group add up: {@code sum |g w|} or {@code |sum g w|}
 * @param calibration the windows of Wanda, SparseGPT and the gradient scores, or null
 * @param gradBatch windows per backward pass (sensitivity, Taylor)
 * @param damp SparseGPT's dampening, a fraction of the mean Hessian diagonal
 * @param blockSize SparseGPT's mask and lazy-update block
 * @param ignore modules left as they are when a pattern finds them
 * @param maxShardBytes largest safetensors shard, or null for 5 GB
 * @param maxMemoryBytes the memory the run may use at its peak ({@link MemoryPlan}), or null for
 *     three quarters of the machine's
 * @param workDir where finished layers are kept while the run goes, or null for {@code OUT.work}
 * @param resume continue from the layers {@code workDir} holds
 */
public record PruneSettings(
    Path model,
    Path out,
    boolean overwrite,
    PruneMethod method,
    SparsityPattern pattern,
    Structured.Structure structure,
    double sparsity,
    int[] dropLayers,
    double p,
    Structured.GroupReduce taylorGroup,
    CalibrationSettings calibration,
    int gradBatch,
    double damp,
    int blockSize,
    List<Pattern> ignore,
    Format format,
    EvaluationSettings eval,
    Long maxShardBytes,
    Path workDir,
    boolean resume,
    Long maxMemoryBytes) {

  /** How the pruned folder stores its matrices. */
  public enum Format {
    /** Zeros in place. */
    DENSE,
    /** compressed-tensors' 2:4 storage: the kept values and a bitmask. */
    SPARSE_24_BITMASK;

    public String label() {
      return name().toLowerCase().replace('_', '-');
    }
  }

  public PruneSettings {
    if (model == null || out == null) {
      throw new InvalidSettingException("{model} and {out} are required");
    }
    Objects.requireNonNull(method, "method");
    format = Objects.requireNonNullElse(format, Format.DENSE);
    taylorGroup = Objects.requireNonNullElse(taylorGroup, Structured.GroupReduce.SUM);
    ignore = List.copyOf(ignore == null ? List.of() : ignore);
    dropLayers = dropLayers == null ? null : dropLayers.clone();
    if (dropLayers != null && structure != Structured.Structure.LAYERS) {
      throw new InvalidSettingException("{dropLayers} removes layers; set {structure} to layers");
    }
    if (!(sparsity >= 0 && sparsity < 1)) {
      throw new InvalidSettingException("{sparsity} %s: give a fraction in [0, 1)", sparsity);
    }
    if (p != 1 && p != 2) {
      throw new InvalidSettingException("{p} %s: use 1 or 2", p);
    }
    if (structure == null && pattern == null) {
      throw new InvalidSettingException("{pattern} is required for unstructured pruning");
    }
    if (structure != null && pattern != null) {
      throw new InvalidSettingException(
          "{pattern} and {compare} are for unstructured pruning, not {structure} %s",
          structure.name().toLowerCase());
    }
    if (structure != null && method.layerwise()) {
      throw new InvalidSettingException(
          "{structure} %s scores groups with magnitude, lp, sensitivity or taylor; wanda and"
              + " sparsegpt prune single weights",
          structure.name().toLowerCase());
    }
    if (format == Format.SPARSE_24_BITMASK
        && !(pattern instanceof SparsityPattern.NofM nm && nm.n() == 2 && nm.m() == 4)) {
      throw new InvalidSettingException(
          "{format} sparse-24-bitmask stores 2:4 sparsity; set {pattern} 2:4");
    }
    if (method.needsCalibration() && calibration == null) {
      throw new InvalidSettingException(
          "{method} %s needs calibration data: give {calibration.file} (.jsonl or .txt), e.g."
              + " samples/data/tinystories/train.jsonl",
          method.name().toLowerCase());
    }
    if (blockSize < 1) {
      throw new InvalidSettingException("{blockSize} %s: give a positive size", blockSize);
    }
    if (gradBatch < 1) {
      throw new InvalidSettingException("{gradBatch} %s: give a positive size", gradBatch);
    }
    if (!(damp > 0 && damp < 1)) {
      throw new InvalidSettingException(
          "{damp} %s: give a fraction of the Hessian's mean diagonal between 0 and 1 (0.01 is"
              + " SparseGPT's default)",
          damp);
    }
    if (maxMemoryBytes != null && maxMemoryBytes < 1) {
      throw new InvalidSettingException(
          "{maxMemoryBytes} %s: give a positive size", maxMemoryBytes);
    }
    if (maxShardBytes != null && maxShardBytes < 1) {
      throw new InvalidSettingException("{maxShardBytes} %s: give a positive size", maxShardBytes);
    }
  }

  /** True when a module (e.g. {@code model.layers.3.mlp.down_proj}) is left as it is. */
  public boolean ignored(String module) {
    return ignore.stream().anyMatch(p -> p.matcher(module).find());
  }

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
    return maxShardBytes != null ? maxShardBytes : QuantizeSettings.DEFAULT_SHARD_BYTES;
  }

  @Override
  public int[] dropLayers() {
    return dropLayers == null ? null : dropLayers.clone();
  }

  public static Builder builder(Path model, Path out, PruneMethod method) {
    return new Builder(model, out, method);
  }

  /**
   * Defaults: sparsity 0.5 unstructured (per row for Wanda, per matrix otherwise), p 2, Taylor
   * groups by {@code sum |g w|}, gradient batches of 8, damp 0.01, blocks of 128, dense output.
   */
  public static final class Builder extends CompressionBuilder<Builder> {
    private final PruneMethod method;
    private double sparsity = 0.5;
    private String pattern;
    private Compare compare;
    private Structured.Structure structure;
    private int[] dropLayers;
    private double p = 2;
    private Structured.GroupReduce taylorGroup = Structured.GroupReduce.SUM;
    private int gradBatch = 8;
    private Format format = Format.DENSE;

    private Builder(Path model, Path out, PruneMethod method) {
      super(model, out);
      this.method = Objects.requireNonNull(method, "method");
    }

    @Override
    Builder self() {
      return this;
    }

    public Builder sparsity(double sparsity) {
      this.sparsity = sparsity;
      return this;
    }

    /** Semi-structured {@code N:M}, e.g. {@code 2:4}. */
    public Builder pattern(String nm) {
      this.pattern = nm;
      return this;
    }

    /** Unstructured: the comparison group. */
    public Builder compare(Compare compare) {
      this.compare = compare;
      return this;
    }

    public Builder structure(Structured.Structure structure) {
      this.structure = structure;
      return this;
    }

    /** Removes these layers (the structure becomes layers). */
    public Builder dropLayers(int... layers) {
      this.dropLayers = layers;
      return this;
    }

    public Builder p(double p) {
      this.p = p;
      return this;
    }

    public Builder taylorGroup(Structured.GroupReduce taylorGroup) {
      this.taylorGroup = taylorGroup;
      return this;
    }

    public Builder gradBatch(int gradBatch) {
      this.gradBatch = gradBatch;
      return this;
    }

    public Builder format(Format format) {
      this.format = format;
      return this;
    }

    public PruneSettings build() {
      Structured.Structure s = structure;
      if (dropLayers != null && s == null) {
        s = Structured.Structure.LAYERS;
      }
      if (!(sparsity >= 0 && sparsity < 1)) {
        throw new InvalidSettingException("{sparsity} %s: give a fraction in [0, 1)", sparsity);
      }
      SparsityPattern sp = null;
      if (s == null) {
        if (pattern != null) {
          if (compare != null) {
            throw new InvalidSettingException(
                "{compare} is for unstructured sparsity; N:M compares within each block of M");
          }
          sp = SparsityPattern.parse(pattern);
        } else {
          sp =
              new SparsityPattern.Unstructured(
                  sparsity, compare != null ? compare : method.defaultCompare());
        }
      } else if (pattern != null || compare != null) {
        throw new InvalidSettingException(
            "{pattern} and {compare} are for unstructured pruning, not {structure} %s",
            s.name().toLowerCase());
      }
      return new PruneSettings(
          model,
          out,
          overwrite,
          method,
          sp,
          s,
          sparsity,
          dropLayers,
          p,
          taylorGroup,
          method.needsCalibration() ? calibration : null,
          gradBatch,
          damp,
          blockSize,
          ignore,
          format,
          eval,
          maxShardBytes,
          workDir,
          resume,
          maxMemoryBytes);
    }
  }
}
