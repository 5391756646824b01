package llmc.distill;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.training.GradientCollector;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.List;
import java.util.Map;
import java.util.function.IntFunction;
import llmc.model.Engines;
import llmc.model.LlamaFamily;
import llmc.model.Weights;
import llmc.model.kernels.Tensors;
import llmc.model.train.DifferentiableLlama;

/**
 * Teacher-student training: each step draws {@code batch} windows (protocol D1) per accumulation
 * micro-batch, runs the teacher without gradients and the student with them, back-propagates the
 * {@link DistillLoss}, clips the global gradient norm and takes one AdamW step at the scheduled
 * learning rate. The student's parameters and the optimizer state live in DJL arrays (float32) for
 * the trainer's lifetime; {@link #current()} reads them as {@link Weights}.
 *
 * <p>The student trains every parameter (a full fine-tune), or with {@link Settings#lora()} only
 * LoRA adapters on its linear layers, everything else frozen: then the optimizer's state, the
 * checkpoints and {@link #trainableParameters()} are the adapters', and {@link #current()} the
 * merged model (see {@link DifferentiableLlama}). AdamW's weight decay applies to the adapters
 * (they are 2-D, as the Hugging Face Trainer decays them when it trains a PEFT model): it pulls
 * {@code B A}, and so the merged weights, towards the student's starting weights.
 */
public final class Trainer implements AutoCloseable {

  /**
   * How to train.
   *
   * @param steps optimizer steps
   * @param batch windows per micro-batch
   * @param gradAccum micro-batches per step
   * @param checkpointEvery steps between checkpoints (0: none)
   * @param evalEvery steps between evaluations (0: only at the end)
   * @param lora train low-rank adapters only, or null to train every parameter
   */
  public record Settings(
      int steps,
      int batch,
      int gradAccum,
      LearningRate learningRate,
      double beta1,
      double beta2,
      double eps,
      double weightDecay,
      double gradClip,
      DistillLoss loss,
      int evalEvery,
      int checkpointEvery,
      DifferentiableLlama.LoRA lora) {}

  /** One optimizer step: the rate used, the loss and its terms (means over the step's batches). */
  public record StepLog(
      int step,
      double learningRate,
      double loss,
      double divergence,
      double crossEntropy,
      double hiddenMse,
      double gradNorm) {}

  /** An evaluation of the student after {@code step} steps. */
  public record EvalPoint(int step, double perplexity, double meanNll) {}

  /** Evaluates a student (P1 perplexity of its current weights). */
  public interface Evaluation {
    EvalPoint evaluate(int step, LlamaFamily family, Weights weights);
  }

  /** Told of each step and evaluation as they happen. */
  public interface Listener {
    void step(StepLog log);

    default void evaluated(EvalPoint point) {}
  }

  private final Settings settings;
  private final NDManager manager;
  private final DifferentiableLlama teacher; // null when the loss does not need it
  private final DifferentiableLlama student;
  private final Map<String, NDArray> parameters;
  private final AdamW optimizer;
  private final TrainingWindows windows;
  private final TeacherCache cache; // null: the live teacher
  private final List<StepLog> log = new ArrayList<>();
  private final List<EvalPoint> evals = new ArrayList<>();
  private int step;

  public Trainer(
      Settings settings,
      LlamaFamily teacherFamily,
      Weights teacherWeights,
      Student studentModel,
      TrainingWindows windows,
      TeacherCache cache) {
    this.settings = settings;
    this.windows = windows;
    this.cache = cache;
    this.manager = Engines.newManager();
    try {
      this.teacher =
          settings.loss().needsTeacher() && cache == null
              ? new DifferentiableLlama(
                  teacherFamily,
                  teacherWeights,
                  manager,
                  EnumSet.noneOf(DifferentiableLlama.Trainable.class))
              : null;
      this.student =
          settings.lora() == null
              ? new DifferentiableLlama(
                  studentModel.family(),
                  studentModel.weights(),
                  manager,
                  EnumSet.allOf(DifferentiableLlama.Trainable.class))
              : new DifferentiableLlama(
                  studentModel.family(), studentModel.weights(), manager, settings.lora());
      this.parameters = student.parameters();
      this.optimizer =
          new AdamW(
              parameters,
              manager,
              settings.beta1(),
              settings.beta2(),
              settings.eps(),
              settings.weightDecay());
    } catch (RuntimeException e) {
      manager.close();
      throw e;
    }
  }

  /** Trainable parameters: every parameter of the student, or with LoRA its adapters. */
  public long trainableParameters() {
    return parameters.values().stream().mapToLong(NDArray::size).sum();
  }

  /** The student's own parameters, what a full fine-tune trains (adapters not counted). */
  public long modelParameters() {
    return student.modelParameters();
  }

  /** Bytes of the optimizer's state (two moments per parameter, float32). */
  public long optimizerBytes() {
    return 2 * 4 * trainableParameters();
  }

  /** The student's current weights. */
  public Weights current() {
    return student.current();
  }

  public LlamaFamily studentFamily() {
    return student.family();
  }

  /** Steps taken so far. */
  public int step() {
    return step;
  }

  public List<StepLog> log() {
    return List.copyOf(log);
  }

  public List<EvalPoint> evals() {
    return List.copyOf(evals);
  }

  /**
   * Trains up to {@code settings.steps()}: evaluates every {@code evalEvery} steps and at the end,
   * checkpoints every {@code checkpointEvery} steps through {@code checkpoint} (step -> nothing).
   */
  public void train(Evaluation evaluation, IntFunction<Void> checkpoint, Listener listener) {
    while (step < settings.steps()) {
      StepLog s = takeStep();
      log.add(s);
      listener.step(s);
      boolean last = step == settings.steps();
      if (evaluation != null
          && (last || (settings.evalEvery() > 0 && step % settings.evalEvery() == 0))) {
        EvalPoint p = evaluation.evaluate(step, student.family(), student.current());
        evals.add(p);
        listener.evaluated(p);
      }
      if (checkpoint != null
          && settings.checkpointEvery() > 0
          && step % settings.checkpointEvery() == 0
          && !last) {
        checkpoint.apply(step);
      }
    }
  }

  /** Evaluates the student as it is now (step 0: before training). */
  public EvalPoint evaluateNow(Evaluation evaluation) {
    EvalPoint p = evaluation.evaluate(step, student.family(), student.current());
    evals.add(p);
    return p;
  }

  private StepLog takeStep() {
    int accum = settings.gradAccum();
    DistillLoss loss = settings.loss();
    double total = 0;
    double divergence = 0;
    double crossEntropy = 0;
    double mse = 0;
    try (GradientCollector collector = manager.getEngine().newGradientCollector()) {
      for (int micro = 0; micro < accum; micro++) {
        long first = windows.drawn();
        int[][] tokens = windows.next(settings.batch());
        try (NDManager scope = manager.newSubManager()) {
          DistillLoss.Teacher t = teacher(scope, tokens, first);
          DifferentiableLlama.Forward s = student.forward(scope, tokens, loss.needsHidden());
          DistillLoss.Terms terms = loss.of(collector, scope, t, s, tokens);
          // Autograd holds what the backward reads; the logits [B, T, V] and the teacher's
          // log-probabilities [N, V] are not among it and go before the backward allocates.
          s.logits().close();
          if (t != null) {
            t.close();
          }
          total += terms.loss() / accum;
          divergence += terms.divergence() / accum;
          crossEntropy += terms.crossEntropy() / accum;
          mse += terms.hiddenMse() / accum;
          collector.backward(
              accum == 1
                  ? terms.objective()
                  : terms.objective().div(Tensors.scalar(scope, (float) accum)));
        }
      }
    }
    double norm = AdamW.clipGradients(parameters, settings.gradClip());
    double lr = settings.learningRate().at(step);
    optimizer.step(parameters, lr);
    AdamW.zeroGradients(parameters);
    StepLog s = new StepLog(step + 1, lr, total, divergence, crossEntropy, mse, norm);
    step++;
    return s;
  }

  /**
   * The teacher's part of the loss for windows {@code tokens} drawn from {@code first}: from the
   * cache, or from a forward in a manager of its own, closed once the loss's inputs are taken from
   * it (a forward's logits and activations are many times what the loss reads), or null.
   */
  private DistillLoss.Teacher teacher(NDManager scope, int[][] tokens, long first) {
    DistillLoss loss = settings.loss();
    if (!loss.needsTeacher()) {
      return null;
    }
    if (cache != null) {
      return DistillLoss.Teacher.of(cache.read(scope, first, tokens.length));
    }
    try (NDManager forward = scope.newSubManager()) {
      DistillLoss.Teacher t =
          loss.teacher(teacher.forward(forward, tokens, loss.needsHidden()), tokens[0].length);
      t.attach(scope);
      return t;
    }
  }

  /** What a checkpoint holds beyond the files: the step, the data position, the logs so far. */
  public record State(int step, long windowsDrawn, List<StepLog> log, List<EvalPoint> evals) {}

  public State state() {
    return new State(step, windows.drawn(), log(), evals());
  }

  /** Parameters (with LoRA: the adapters) and optimizer moments, by name, for a checkpoint. */
  public Map<String, NDArray> parameterArrays() {
    return parameters;
  }

  public Map<String, NDArray> optimizerArrays() {
    return optimizer.state();
  }

  /** Continues from a checkpoint: parameters, optimizer moments, step, data position and logs. */
  public void restore(
      State state, Map<String, float[]> parameterValues, Map<String, float[]> optimizerValues) {
    parameters.forEach(
        (name, p) -> {
          float[] values = parameterValues.get(name);
          if (values == null || values.length != p.size()) {
            throw new IllegalStateException("checkpoint has no values for " + name);
          }
          p.set(values);
        });
    optimizer.restore(optimizerValues, state.step());
    windows.seek(state.windowsDrawn());
    step = state.step();
    log.clear();
    log.addAll(state.log());
    evals.clear();
    evals.addAll(state.evals());
  }

  @Override
  public void close() {
    manager.close();
  }

  /** Where checkpoints go; unused here but named for readers of the work folder. */
  static final String CHECKPOINT = "checkpoint";

  static Path checkpointDir(Path work) {
    return work.resolve(CHECKPOINT);
  }
}
