package llmc.pipeline;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.EnumSet;
import java.util.List;
import java.util.Locale;
import java.util.Objects;
import java.util.Set;
import llmc.distill.Divergence;
import llmc.distill.LearningRate;
import llmc.formats.InvalidSettingException;
import llmc.model.Linear;
import llmc.model.train.DifferentiableLlama;

/**
 * Everything a distillation run needs, checked when built (messages name these settings). {@link
 * #builder} fills the defaults of PROTOCOLS.md's setup: 500 steps of 8 windows of 256 tokens, AdamW
 * (0.9, 0.95, 1e-8) at 3e-3 with weight decay 0.01 on 2-D weights, warm-up over 10% of the steps,
 * cosine to 10% of the peak, gradient norm clipped at 1, T = 2, alpha = 0.5, beta = 0; every
 * parameter of the student trains (no LoRA).
 *
 * <p><b>LoRA.</b> With {@code loraRank} r >= 1 only low-rank adapters train, on the linear layers
 * {@code loraTargets} (default all seven) of every decoder layer: {@code W' = W + (loraAlpha / r) B
 * A}, {@code loraAlpha} by default 2r (a scale of 2 whatever the rank, so that changing the rank
 * does not change the size of the update; PEFT's own default is a fixed alpha of 8). The adapters
 * start as PEFT's ({@code A} Kaiming-uniform drawn from {@code seed}, {@code B = 0}: the untrained
 * student is the cut or given model exactly), get AdamW's weight decay (they are 2-D), and are
 * merged into the written student, a plain dense model.
 *
 * @param teacher the teacher's model folder
 * @param out the student's output folder
 * @param student a model folder to train, or null to cut one from the teacher
 * @param keepLayers with no {@code student}: the teacher's decoder layers the student keeps
 * @param dropLayers or instead: the teacher's decoder layers the student leaves out
 * @param data the training text (.jsonl or .txt), tokenized as P1
 * @param eval text for P1 evaluations, or null
 * @param evalMaxWindows only the first windows of {@code eval}, or 0 for all
 * @param warmup warm-up steps, or null for 10% of the steps
 * @param minLrRatio the cosine schedule's end as a fraction of the peak
 * @param hiddenPairs student layer : teacher layer pairs for the hidden-state MSE
 * @param checkpointEvery steps between checkpoints in {@code workDir} (0: none)
 * @param evalEvery steps between evaluations (0: before and after training only)
 * @param seed draws the training windows (and LoRA's initial {@code A})
 * @param loraRank the adapters' rank, or 0 to train every parameter
 * @param loraAlpha LoRA's scale numerator, or null for 2 {@code loraRank}
 * @param loraTargets the linear layers with adapters, or null for all seven (with LoRA only)
 * @param workDir where checkpoints go, or null for {@code <out>.work} beside the output
 * @param resume continue from the checkpoint in {@code workDir}
 * @param teacherCache where the teacher's top-k logits over the training windows are stored (built
 *     when absent, reused when present), or null to run the teacher live
 * @param cacheTopK the logits kept per position in the cache
 */
public record DistillSettings(
    Path teacher,
    Path out,
    boolean overwrite,
    Path student,
    int[] keepLayers,
    int[] dropLayers,
    Path data,
    String field,
    Path eval,
    int evalMaxWindows,
    int steps,
    int batchSize,
    int seqLen,
    double lr,
    Integer warmup,
    LearningRate.Schedule schedule,
    double minLrRatio,
    double weightDecay,
    double gradClip,
    int gradAccum,
    double temperature,
    double alpha,
    double beta,
    List<int[]> hiddenPairs,
    Divergence divergence,
    double jsdBeta,
    long seed,
    int loraRank,
    Double loraAlpha,
    Set<Linear> loraTargets,
    int checkpointEvery,
    int evalEvery,
    Path workDir,
    boolean resume,
    Path teacherCache,
    int cacheTopK) {

  public DistillSettings {
    if (teacher == null || out == null) {
      throw new InvalidSettingException("{teacher} and {out} are required");
    }
    if (data == null) {
      throw new InvalidSettingException("{data} is required: the training text, .jsonl or .txt");
    }
    int given =
        (student != null ? 1 : 0) + (keepLayers != null ? 1 : 0) + (dropLayers != null ? 1 : 0);
    if (given != 1) {
      throw new InvalidSettingException(
          "give one of {student} (a model folder), {keepLayers} or {dropLayers} (the teacher's"
              + " layers the student keeps or leaves out)");
    }
    keepLayers = keepLayers == null ? null : keepLayers.clone();
    dropLayers = dropLayers == null ? null : dropLayers.clone();
    field = Objects.requireNonNullElse(field, "text");
    schedule = Objects.requireNonNullElse(schedule, LearningRate.Schedule.COSINE);
    divergence = Objects.requireNonNullElse(divergence, Divergence.FORWARD_KL);
    hiddenPairs = List.copyOf(hiddenPairs == null ? List.of() : hiddenPairs);
    positive("steps", steps);
    positive("batchSize", batchSize);
    positive("gradAccum", gradAccum);
    if (seqLen < 2) {
      throw new InvalidSettingException("{seqLen} %s: a window needs at least 2 tokens", seqLen);
    }
    if (!(lr > 0 && Double.isFinite(lr))) {
      throw new InvalidSettingException("{lr} %s: give a finite rate above 0", lr);
    }
    if (warmup != null && (warmup < 0 || warmup > steps)) {
      throw new InvalidSettingException("{warmup} %s: give 0 to {steps} (%s) steps", warmup, steps);
    }
    if (!(minLrRatio >= 0 && minLrRatio <= 1)) {
      throw new InvalidSettingException("{minLrRatio} %s: give a fraction in [0, 1]", minLrRatio);
    }
    if (!(weightDecay >= 0 && Double.isFinite(weightDecay))) {
      throw new InvalidSettingException(
          "{weightDecay} %s: give a finite value, 0 or more", weightDecay);
    }
    if (!(gradClip >= 0 && Double.isFinite(gradClip))) {
      throw new InvalidSettingException("{gradClip} %s: give 0 (none) or a finite norm", gradClip);
    }
    if (!(temperature > 0 && Double.isFinite(temperature))) {
      throw new InvalidSettingException(
          "{temperature} %s: give a finite temperature above 0", temperature);
    }
    if (!(alpha >= 0 && alpha <= 1)) {
      throw new InvalidSettingException("{alpha} %s: give a weight in [0, 1]", alpha);
    }
    if (!(beta >= 0 && Double.isFinite(beta))) {
      throw new InvalidSettingException("{beta} %s: give a finite weight, 0 or more", beta);
    }
    if (beta > 0 && hiddenPairs.isEmpty()) {
      throw new InvalidSettingException(
          "{beta} %s weighs the hidden-state MSE: give {hiddenPairs}, e.g. 0:0,1:2,2:4", beta);
    }
    if (!(jsdBeta > 0 && jsdBeta < 1)) {
      throw new InvalidSettingException("{jsdBeta} %s: give a weight in (0, 1)", jsdBeta);
    }
    if (evalMaxWindows < 0 || checkpointEvery < 0 || evalEvery < 0) {
      throw new InvalidSettingException(
          "{evalMaxWindows}, {checkpointEvery} and {evalEvery} must not be negative");
    }
    if (teacherCache != null && beta > 0) {
      throw new InvalidSettingException(
          "{teacherCache} stores logits, not the teacher's hidden states: drop {beta} or"
              + " {teacherCache}");
    }
    if (cacheTopK < 1) {
      throw new InvalidSettingException("{cacheTopK} %s: give at least 1", cacheTopK);
    }
    for (int[] pair : hiddenPairs) {
      if (pair.length != 2 || pair[0] < 0 || pair[1] < 0) {
        throw new InvalidSettingException(
            "{hiddenPairs} %s: give student:teacher layer pairs, e.g. 0:0,1:2",
            Arrays.toString(pair));
      }
    }
    if (loraRank < 0) {
      throw new InvalidSettingException(
          "{loraRank} %s: give a rank of at least 1, or 0 to train every parameter", loraRank);
    }
    if (loraRank == 0 && (loraAlpha != null || loraTargets != null)) {
      throw new InvalidSettingException(
          "{loraAlpha} and {loraTargets} shape LoRA's adapters: give {loraRank} too");
    }
    if (loraAlpha != null && !(loraAlpha > 0 && loraAlpha < Double.POSITIVE_INFINITY)) {
      throw new InvalidSettingException("{loraAlpha} %s: give a number above 0", loraAlpha);
    }
    if (loraTargets != null && loraTargets.isEmpty()) {
      throw new InvalidSettingException(
          "{loraTargets}: give at least one of %s", String.join(",", TARGET_NAMES));
    }
    if (loraRank > 0) {
      loraTargets =
          Collections.unmodifiableSet(
              loraTargets == null ? EnumSet.allOf(Linear.class) : EnumSet.copyOf(loraTargets));
    }
  }

  /** The names of the linear layers in {@code loraTargets}, in {@link Linear} order. */
  private static final List<String> TARGET_NAMES =
      Arrays.stream(Linear.values()).map(DistillSettings::targetName).toList();

  /** A linear layer's name as a LoRA target: q, k, v, o, gate, up, down. */
  public static String targetName(Linear l) {
    return l.name().toLowerCase(Locale.ROOT);
  }

  /** {@code "q,v,down"} as linear layers. */
  public static Set<Linear> parseTargets(String spec) {
    Set<Linear> targets = EnumSet.noneOf(Linear.class);
    for (String part : spec.split(",", -1)) {
      String name = part.strip().toLowerCase(Locale.ROOT);
      if (!TARGET_NAMES.contains(name)) {
        throw new InvalidSettingException(
            "{loraTargets} '%s': give linear layers among %s",
            spec, String.join(",", TARGET_NAMES));
      }
      targets.add(Linear.values()[TARGET_NAMES.indexOf(name)]);
    }
    return targets;
  }

  /** The LoRA scale's numerator used: {@code loraAlpha}, or 2 {@code loraRank}. */
  public double loraAlphaUsed() {
    return loraAlpha != null ? loraAlpha : 2.0 * loraRank;
  }

  /** The adapters to train (A drawn from {@code seed}), or null to train every parameter. */
  public DifferentiableLlama.LoRA lora() {
    return loraRank == 0
        ? null
        : new DifferentiableLlama.LoRA(loraRank, loraAlphaUsed(), loraTargets, seed);
  }

  private static void positive(String setting, int value) {
    if (value < 1) {
      throw new InvalidSettingException("{" + setting + "} %s: give at least 1", value);
    }
  }

  @Override
  public int[] keepLayers() {
    return keepLayers == null ? null : keepLayers.clone();
  }

  @Override
  public int[] dropLayers() {
    return dropLayers == null ? null : dropLayers.clone();
  }

  /** The teacher's layers a cut student keeps (from {@code keepLayers} or {@code dropLayers}). */
  public int[] keptLayers(int teacherLayers) {
    if (keepLayers != null) {
      return keepLayers();
    }
    for (int d : dropLayers) {
      if (d < 0 || d >= teacherLayers) {
        throw new InvalidSettingException(
            "{dropLayers} %s: the teacher has layers 0..%s", d, teacherLayers - 1);
      }
    }
    return java.util.stream.IntStream.range(0, teacherLayers)
        .filter(i -> Arrays.stream(dropLayers).noneMatch(d -> d == i))
        .toArray();
  }

  /** The warm-up steps used. */
  public int warmupSteps() {
    return warmup != null ? warmup : steps / 10;
  }

  /** The work folder used. */
  public Path work() {
    if (workDir != null) {
      return workDir;
    }
    Path absolute = out.toAbsolutePath().normalize();
    return absolute.resolveSibling(absolute.getFileName() + ".work");
  }

  public LearningRate learningRate() {
    return new LearningRate(lr, steps, warmupSteps(), schedule, minLrRatio);
  }

  /** {@code "0:0,1:2"} as pairs. */
  public static List<int[]> parsePairs(String spec) {
    List<int[]> pairs = new ArrayList<>();
    if (spec == null || spec.isBlank()) {
      return pairs;
    }
    for (String part : spec.split(",")) {
      String[] st = part.strip().split(":", -1);
      try {
        if (st.length != 2) {
          throw new NumberFormatException();
        }
        pairs.add(new int[] {Integer.parseInt(st[0].strip()), Integer.parseInt(st[1].strip())});
      } catch (NumberFormatException e) {
        throw new InvalidSettingException(
            "{hiddenPairs} '%s': give student:teacher layer pairs, e.g. 0:0,1:2,2:4", spec);
      }
    }
    return pairs;
  }

  public static Builder builder(Path teacher, Path out, Path data) {
    return new Builder(teacher, out, data);
  }

  /** Defaults as the record's description says. */
  public static final class Builder {
    private final Path teacher;
    private final Path out;
    private final Path data;
    private boolean overwrite;
    private Path student;
    private int[] keepLayers;
    private int[] dropLayers;
    private String field = "text";
    private Path eval;
    private int evalMaxWindows;
    private int steps = 500;
    private int batchSize = 8;
    private int seqLen = 256;
    private double lr = 3e-3;
    private Integer warmup;
    private LearningRate.Schedule schedule = LearningRate.Schedule.COSINE;
    private double minLrRatio = 0.1;
    private double weightDecay = 0.01;
    private double gradClip = 1.0;
    private int gradAccum = 1;
    private double temperature = 2;
    private double alpha = 0.5;
    private double beta;
    private List<int[]> hiddenPairs = List.of();
    private Divergence divergence = Divergence.FORWARD_KL;
    private double jsdBeta = 0.5;
    private long seed;
    private int loraRank;
    private Double loraAlpha;
    private Set<Linear> loraTargets;
    private int checkpointEvery;
    private int evalEvery;
    private Path workDir;
    private boolean resume;
    private Path teacherCache;
    private int cacheTopK = 64;

    private Builder(Path teacher, Path out, Path data) {
      this.teacher = teacher;
      this.out = out;
      this.data = data;
    }

    public Builder overwrite(boolean v) {
      overwrite = v;
      return this;
    }

    public Builder student(Path v) {
      student = v;
      return this;
    }

    public Builder keepLayers(int... v) {
      keepLayers = v;
      return this;
    }

    public Builder dropLayers(int... v) {
      dropLayers = v;
      return this;
    }

    public Builder field(String v) {
      field = v;
      return this;
    }

    public Builder eval(Path v) {
      eval = v;
      return this;
    }

    public Builder evalMaxWindows(int v) {
      evalMaxWindows = v;
      return this;
    }

    public Builder steps(int v) {
      steps = v;
      return this;
    }

    public Builder batchSize(int v) {
      batchSize = v;
      return this;
    }

    public Builder seqLen(int v) {
      seqLen = v;
      return this;
    }

    public Builder lr(double v) {
      lr = v;
      return this;
    }

    public Builder warmup(Integer v) {
      warmup = v;
      return this;
    }

    public Builder schedule(LearningRate.Schedule v) {
      schedule = v;
      return this;
    }

    public Builder minLrRatio(double v) {
      minLrRatio = v;
      return this;
    }

    public Builder weightDecay(double v) {
      weightDecay = v;
      return this;
    }

    public Builder gradClip(double v) {
      gradClip = v;
      return this;
    }

    public Builder gradAccum(int v) {
      gradAccum = v;
      return this;
    }

    public Builder temperature(double v) {
      temperature = v;
      return this;
    }

    public Builder alpha(double v) {
      alpha = v;
      return this;
    }

    public Builder beta(double v) {
      beta = v;
      return this;
    }

    public Builder hiddenPairs(List<int[]> v) {
      hiddenPairs = v;
      return this;
    }

    public Builder divergence(Divergence v) {
      divergence = v;
      return this;
    }

    public Builder jsdBeta(double v) {
      jsdBeta = v;
      return this;
    }

    public Builder seed(long v) {
      seed = v;
      return this;
    }

    /** Trains rank-{@code v} LoRA adapters only (0: every parameter). */
    public Builder loraRank(int v) {
      loraRank = v;
      return this;
    }

    /** LoRA's alpha (null: 2 {@code loraRank}). */
    public Builder loraAlpha(Double v) {
      loraAlpha = v;
      return this;
    }

    /** The linear layers with LoRA adapters (null: all seven). */
    public Builder loraTargets(Set<Linear> v) {
      loraTargets = v;
      return this;
    }

    public Builder checkpointEvery(int v) {
      checkpointEvery = v;
      return this;
    }

    public Builder evalEvery(int v) {
      evalEvery = v;
      return this;
    }

    public Builder workDir(Path v) {
      workDir = v;
      return this;
    }

    public Builder resume(boolean v) {
      resume = v;
      return this;
    }

    public Builder teacherCache(Path v) {
      teacherCache = v;
      return this;
    }

    public Builder cacheTopK(int v) {
      cacheTopK = v;
      return this;
    }

    public DistillSettings build() {
      return new DistillSettings(
          teacher,
          out,
          overwrite,
          student,
          keepLayers,
          dropLayers,
          data,
          field,
          eval,
          evalMaxWindows,
          steps,
          batchSize,
          seqLen,
          lr,
          warmup,
          schedule,
          minLrRatio,
          weightDecay,
          gradClip,
          gradAccum,
          temperature,
          alpha,
          beta,
          hiddenPairs,
          divergence,
          jsdBeta,
          seed,
          loraRank,
          loraAlpha,
          loraTargets,
          checkpointEvery,
          evalEvery,
          workDir,
          resume,
          teacherCache,
          cacheTopK);
    }
  }
}
