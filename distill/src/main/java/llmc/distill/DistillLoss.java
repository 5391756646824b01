package llmc.distill;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import java.util.List;
import llmc.model.train.DifferentiableLlama;

/**
 * The distillation loss of PROTOCOLS.md: {@code alpha T^2 D(teacher_T, student_T) + (1 - alpha)
 * CE(student, next token) + beta mean MSE(hidden pairs)}. Every term is a mean over the scored
 * positions of the batch (the {@code L - 1} positions of each window whose next token is in the
 * window); the MSE is a mean over all positions and hidden units, averaged over the pairs.
 *
 * @param hiddenPairs student layer {@code s} against teacher layer {@code t}, as {@code [s, t]}
 */
public record DistillLoss(
    double alpha,
    double temperature,
    double beta,
    Divergence divergence,
    double jsdBeta,
    List<int[]> hiddenPairs) {

  public DistillLoss {
    hiddenPairs = List.copyOf(hiddenPairs);
  }

  /** The loss and its terms (the terms as plain numbers, for the report). */
  public record Terms(NDArray loss, double divergence, double crossEntropy, double hiddenMse) {}

  /**
   * A cached teacher ({@link TeacherCache}) for the scored positions of a batch: its top-k token
   * ids {@code [N, k]} (int64), their logits {@code [N, k]}, and {@code log sum_v exp(z_v / T)}
   * over the whole vocabulary {@code [N, 1]}.
   */
  public record CachedTeacher(NDArray ids, NDArray logits, NDArray logSumExp) {}

  /** Whether the teacher is needed at all (not for hard labels alone). */
  public boolean needsTeacher() {
    return alpha > 0 || (beta > 0 && !hiddenPairs.isEmpty());
  }

  /** Whether the layers' outputs are needed. */
  public boolean needsHidden() {
    return beta > 0 && !hiddenPairs.isEmpty();
  }

  /**
   * @param teacher the teacher's forward on the same windows (constants), or null when {@link
   *     #needsTeacher} is false
   * @param student the student's forward (differentiable)
   * @param tokens the windows {@code [B][T]}
   */
  public Terms of(
      NDManager scope,
      DifferentiableLlama.Forward teacher,
      DifferentiableLlama.Forward student,
      int[][] tokens) {
    return of(scope, teacher, null, student, tokens);
  }

  /**
   * As {@link #of(NDManager, DifferentiableLlama.Forward, DifferentiableLlama.Forward, int[][])}
   * with the teacher from a cache: the divergence over k + 1 buckets, the teacher's top k tokens
   * and the rest of the vocabulary (exact for the top k, the tail lumped together).
   */
  public Terms of(
      NDManager scope,
      DifferentiableLlama.Forward teacher,
      CachedTeacher cached,
      DifferentiableLlama.Forward student,
      int[][] tokens) {
    int batch = tokens.length;
    int count = tokens[0].length;
    long vocab = student.logits().getShape().get(2);
    long scored = (long) batch * (count - 1);
    NDArray zs = scoredRows(student.logits(), count, vocab); // [N, V]
    // Hard labels: the mean next-token cross-entropy.
    int[] next = new int[Math.toIntExact(scored)];
    for (int b = 0; b < batch; b++) {
      System.arraycopy(tokens[b], 1, next, b * (count - 1), count - 1);
    }
    NDArray targets = scope.create(next, new Shape(scored, 1));
    NDArray ce = zs.logSoftmax(-1).gather(targets, -1).mean().neg();
    NDArray loss = ce.mul((float) (1 - alpha));
    double divergenceValue = 0;
    if (alpha > 0) {
      float t = (float) temperature;
      NDArray logPs = zs.div(t).logSoftmax(-1); // [N, V]
      NDArray d;
      if (cached == null) {
        NDArray zt = scoredRows(teacher.logits(), count, vocab);
        d = divergence.of(zt.div(t).logSoftmax(-1), logPs, jsdBeta).mean();
      } else {
        // k + 1 buckets: the teacher's top k tokens, then the rest of the vocabulary.
        NDArray logPtTop = cached.logits().div(t).sub(cached.logSumExp()); // [N, k]
        NDArray logPsTop = logPs.gather(cached.ids(), -1); // [N, k]
        d =
            divergence
                .of(withRest(logPtTop), withRest(logPsTop), jsdBeta)
                .mean(); // mean over the scored positions
      }
      loss = loss.add(d.mul((float) (alpha * temperature * temperature)));
      divergenceValue = d.getFloat();
    }
    double mseValue = 0;
    if (needsHidden()) {
      NDArray mse = null;
      for (int[] pair : hiddenPairs) {
        NDArray diff = student.hidden().get(pair[0]).sub(teacher.hidden().get(pair[1]));
        NDArray m = diff.mul(diff).mean();
        mse = mse == null ? m : mse.add(m);
      }
      mse = mse.div((float) hiddenPairs.size());
      loss = loss.add(mse.mul((float) beta));
      mseValue = mse.getFloat();
    }
    return new Terms(loss, divergenceValue, ce.getFloat(), mseValue);
  }

  /** {@code [N, k]} log-probabilities and the log of the mass they leave: {@code [N, k + 1]}. */
  private static NDArray withRest(NDArray logTop) {
    NDArray rest = logTop.exp().sum(new int[] {-1}, true).neg().add(1f).maximum(1e-12f).log();
    return logTop.concat(rest, 1);
  }

  /** The logits of the scored positions, {@code [B, T, V] -> [B (T-1), V]}. */
  private static NDArray scoredRows(NDArray logits, int count, long vocab) {
    return logits.split(new long[] {count - 1}, 1).get(0).reshape(-1, vocab);
  }
}
