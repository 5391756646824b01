package llmc.pipeline;

import java.util.List;
import llmc.distill.Trainer;

/**
 * What a distillation run trained and what came of it; {@code llmc-report.json} is this without
 * wall times. Null parts are left out of the JSON.
 *
 * @param trainableParameters the parameters trained: the student's, or with LoRA the adapters'
 * @param optimizerBytes AdamW's state: two float32 moments per trainable parameter
 * @param lora the adapters when LoRA trained them, else null
 * @param teacherEval the teacher's P1 perplexity on the evaluation windows
 * @param studentBefore the student's before training (null for a resumed run)
 * @param studentAfter the student's after training
 * @param resumedFrom the checkpoint's step when resumed, else null
 * @param steps every optimizer step: rate, loss and terms, gradient norm
 * @param evals every evaluation of the student
 */
public record DistillReport(
    String command,
    String teacher,
    String student,
    String out,
    Training training,
    Loss loss,
    Data data,
    long trainableParameters,
    long optimizerBytes,
    Lora lora,
    Trainer.EvalPoint teacherEval,
    Trainer.EvalPoint studentBefore,
    Trainer.EvalPoint studentAfter,
    Integer resumedFrom,
    Cache teacherCache,
    String plot,
    Seconds seconds,
    List<Trainer.StepLog> steps,
    List<Trainer.EvalPoint> evals,
    List<String> warnings) {

  /** The optimizer and its schedule. */
  public record Training(
      int steps,
      int batchSize,
      int seqLen,
      int gradAccum,
      String optimizer,
      double lr,
      int warmup,
      String schedule,
      double minLrRatio,
      double weightDecay,
      double gradClip,
      long seed) {}

  /** The loss. */
  public record Loss(
      double alpha,
      double temperature,
      double beta,
      String divergence,
      Double jsdBeta,
      List<String> hiddenPairs) {}

  /**
   * LoRA's adapters: {@code W' = W + scale B A} on {@code targets} of every decoder layer.
   *
   * @param scale {@code alpha / rank}
   * @param trainableParameters the adapters' parameters, {@code rank (in + out)} per targeted
   *     linear layer
   * @param fullParameters the student's own parameters, what a full fine-tune would train
   * @param optimizerBytesSaved AdamW state not held against a full fine-tune: {@code 2 x 4 x
   *     (fullParameters - trainableParameters)}
   */
  public record Lora(
      int rank,
      double alpha,
      double scale,
      List<String> targets,
      long trainableParameters,
      long fullParameters,
      long optimizerBytesSaved) {}

  /** The training text (D1) and the evaluation text (P1). */
  public record Data(
      String file,
      String field,
      long streamTokens,
      long windowsDrawn,
      String eval,
      Integer evalSeqLen,
      Integer evalWindows) {}

  /** The teacher cache used: built by this run or reused, its size. */
  public record Cache(
      String dir,
      boolean built,
      int topK,
      long windows,
      long bytesPerToken,
      long bytes,
      Double buildSeconds) {}

  /**
   * Wall times, and training tokens per second (teacher and student forward, backward, step).
   *
   * @param training the training loop without evaluations (checkpoints included)
   * @param tokensPerSecond training tokens ({@code steps x gradAccum x batch x seqLen}) over {@code
   *     training}; the first step's one-time costs included
   * @param stepSeconds the wall time of each optimizer step of this run, in order, without
   *     evaluations and checkpoints (bench/distill-vs-pytorch.sh drops the first ones as warm-up)
   */
  public record Seconds(
      double training,
      double evaluation,
      double total,
      double tokensPerSecond,
      List<Double> stepSeconds) {}
}
