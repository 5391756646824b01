package llmc.distill;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import java.util.ArrayList;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Set;
import llmc.model.kernels.Tensors;
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

  /**
   * The loss and its terms, and what to back-propagate.
   *
   * @param objective a scalar whose gradient with respect to the student's parameters is the loss's
   *     (its value is not the loss), or null when no gradient was asked for
   */
  public record Terms(
      NDArray objective, double loss, double divergence, double crossEntropy, double hiddenMse) {}

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
   * What the loss needs of the teacher for one batch, a constant: its log-probabilities at the
   * temperature over the scored rows {@code [N, V]} (null without a divergence term or with a
   * cache), or the cached top k ({@code null} with the live teacher), and the outputs of the paired
   * teacher layers, one per {@link #hiddenPairs() pair} (empty without hidden pairs). Far smaller
   * than the teacher's forward, which can be closed once these are made.
   */
  public record Teacher(NDArray logPt, CachedTeacher cached, List<NDArray> hidden)
      implements AutoCloseable {
    public Teacher {
      hidden = List.copyOf(hidden);
    }

    /** A cached teacher, which has no hidden states. */
    public static Teacher of(CachedTeacher cached) {
      return new Teacher(null, cached, List.of());
    }

    /** Moves these arrays to {@code manager}. */
    public void attach(NDManager manager) {
      arrays().forEach(a -> a.attach(manager));
    }

    /** Each array once (two pairs may read the same teacher layer). */
    private Set<NDArray> arrays() {
      Set<NDArray> all = Collections.newSetFromMap(new IdentityHashMap<>());
      all.addAll(hidden);
      if (logPt != null) {
        all.add(logPt);
      }
      if (cached != null) {
        all.addAll(List.of(cached.ids(), cached.logits(), cached.logSumExp()));
      }
      return all;
    }

    @Override
    public void close() {
      arrays().forEach(NDArray::close);
    }
  }

  /**
   * The part of the teacher's forward {@code teacher} on windows of {@code count} tokens that the
   * loss reads, in the manager of the teacher's arrays.
   */
  public Teacher teacher(DifferentiableLlama.Forward teacher, int count) {
    NDArray logPt = null;
    if (alpha > 0) {
      long vocab = teacher.logits().getShape().get(2);
      logPt = scoredRows(teacher.logits(), count, vocab).div((float) temperature).logSoftmax(-1);
    }
    List<NDArray> hidden = new ArrayList<>();
    if (needsHidden()) {
      for (int[] pair : hiddenPairs) {
        hidden.add(teacher.hidden().get(pair[1]));
      }
    }
    return new Teacher(logPt, null, hidden);
  }

  /**
   * The loss's value and terms (no gradient) of the student's forward against the teacher's on the
   * same windows.
   *
   * @param teacher the teacher's forward on the same windows (constants), or null when {@link
   *     #needsTeacher} is false
   * @param student the student's forward
   * @param tokens the windows {@code [B][T]}
   */
  public Terms of(
      NDManager scope,
      DifferentiableLlama.Forward teacher,
      DifferentiableLlama.Forward student,
      int[][] tokens) {
    return of(
        null, scope, teacher == null ? null : teacher(teacher, tokens[0].length), student, tokens);
  }

  /**
   * The loss of the student's forward against {@code teacher} ({@link #teacher(
   * DifferentiableLlama.Forward, int)}, or a cache: then the divergence is over k + 1 buckets, the
   * teacher's top k tokens and the rest of the vocabulary, exact for the top k, the tail lumped
   * together).
   *
   * <p>The vocabulary-sized part (cross-entropy and divergence) runs over a few rows of the logits
   * at a time, with its own small autograd graph: each chunk's gradient with respect to its logits
   * goes into {@code G [B, T, V]}, and {@link Terms#objective()} is {@code sum(logits * G) + beta
   * MSE}, whose gradient with respect to the student's parameters is the loss's. The backward then
   * keeps one {@code [B, T, V]} array alive, not the log-softmaxes and probabilities of the whole
   * batch that a single graph would save (three such arrays; 200 MB each for 4 windows of 256
   * tokens over a 49,152-token vocabulary).
   *
   * @param collector the active gradient collector, or null for the values alone (no objective)
   */
  public Terms of(
      GradientCollector collector,
      NDManager scope,
      Teacher teacher,
      DifferentiableLlama.Forward student,
      int[][] tokens) {
    return of(collector, scope, teacher, student, tokens, CHUNK_ELEMENTS);
  }

  /** As above, with chunks of at most {@code chunkElements} logits (at least one row). */
  Terms of(
      GradientCollector collector,
      NDManager scope,
      Teacher teacher,
      DifferentiableLlama.Forward student,
      int[][] tokens,
      long chunkElements) {
    int batch = tokens.length;
    int count = tokens[0].length;
    NDArray logits = student.logits(); // [B, T, V]
    long vocab = logits.getShape().get(2);
    long scored = (long) batch * (count - 1);
    int rowsPerChunk = (int) Math.max(1, Math.min(count - 1, chunkElements / vocab));
    float t = (float) temperature;
    double ceSum = 0;
    double divergenceSum = 0;
    try (NDManager work = scope.newSubManager()) {
      // Operations put their result in the manager of the array they are called on: the inputs
      // visit `work`, so every temporary is closed with it, and return to their managers after.
      Set<NDArray> inputs = Collections.newSetFromMap(new IdentityHashMap<>());
      inputs.add(logits);
      if (needsHidden()) {
        inputs.addAll(student.hidden());
      }
      if (teacher != null) {
        inputs.addAll(teacher.arrays());
      }
      inputs.forEach(a -> a.tempAttach(work));
      // The last position of a window predicts nothing that is scored: its gradient stays 0.
      NDArray gradient = collector == null ? null : work.zeros(logits.getShape()); // [B, T, V]
      for (int b = 0; b < batch; b++) {
        for (int from = 0; from < count - 1; from += rowsPerChunk) {
          int to = Math.min(count - 1, from + rowsPerChunk);
          long row = (long) b * (count - 1) + from; // first scored row of the chunk
          try (NDManager chunk = work.newSubManager()) {
            NDIndex rows = new NDIndex("{}, {}:{}", b, from, to);
            NDArray view = logits.get(rows);
            view.attach(chunk);
            NDArray z = view.stopGradient(); // [n, V], a leaf of the chunk's own graph
            if (collector != null) {
              z.setRequiresGradient(true);
            }
            int[] next = new int[to - from];
            System.arraycopy(tokens[b], from + 1, next, 0, next.length);
            NDArray targets = chunk.create(next, new Shape(next.length, 1));
            NDArray ce = z.logSoftmax(-1).gather(targets, -1).sum().neg();
            NDArray chunkLoss = ce.mul(Tensors.scalar(chunk, (float) ((1 - alpha) / scored)));
            ceSum += ce.getFloat();
            if (alpha > 0) {
              NDArray d =
                  chunkDivergence(
                      chunk,
                      teacher,
                      z.div(Tensors.scalar(chunk, t)).logSoftmax(-1),
                      row,
                      to - from);
              chunkLoss =
                  chunkLoss.add(d.mul(Tensors.scalar(chunk, (float) (alpha * t * t / scored))));
              divergenceSum += d.getFloat();
            }
            if (collector != null) {
              collector.backward(chunkLoss);
              try (NDArray g = z.getGradient()) {
                gradient.set(rows, g);
              }
            }
          }
        }
      }
      double ceValue = ceSum / scored;
      double divergenceValue = divergenceSum / scored;
      double loss = (1 - alpha) * ceValue + alpha * temperature * temperature * divergenceValue;
      NDArray objective = collector == null ? null : logits.mul(gradient).sum();
      double mseValue = 0;
      if (needsHidden()) {
        NDArray mse = null;
        for (int i = 0; i < hiddenPairs.size(); i++) {
          NDArray diff = student.hidden().get(hiddenPairs.get(i)[0]).sub(teacher.hidden().get(i));
          NDArray m = diff.mul(diff).mean();
          mse = mse == null ? m : mse.add(m);
        }
        mse = mse.div(Tensors.scalar(work, (float) hiddenPairs.size()));
        mseValue = mse.getFloat();
        loss += beta * mseValue;
        if (objective != null) {
          objective = objective.add(mse.mul(Tensors.scalar(work, (float) beta)));
        }
      }
      if (objective != null) {
        objective.attach(scope);
      }
      return new Terms(objective, loss, divergenceValue, ceValue, mseValue);
    }
  }

  /** Floats in one chunk of vocabulary-sized rows (16 MB). */
  private static final long CHUNK_ELEMENTS = 1L << 22;

  /**
   * The divergence summed over scored rows {@code [row, row + n)}, the student's log-probabilities
   * at the temperature {@code logPs [n, V]} given.
   */
  private NDArray chunkDivergence(
      NDManager chunk, Teacher teacher, NDArray logPs, long row, int n) {
    NDIndex rows = new NDIndex("{}:{}", row, row + n);
    CachedTeacher cached = teacher.cached();
    if (cached == null) {
      NDArray logPt = teacher.logPt().get(rows); // [n, V]
      logPt.attach(chunk);
      return divergence.of(logPt, logPs, jsdBeta).sum();
    }
    // k + 1 buckets: the teacher's top k tokens, then the rest of the vocabulary.
    NDArray ids = cached.ids().get(rows); // [n, k]
    NDArray top = cached.logits().get(rows);
    NDArray logSumExp = cached.logSumExp().get(rows); // [n, 1]
    chunk.attachAll(ids, top, logSumExp);
    NDArray logPtTop = top.div((float) temperature).sub(logSumExp); // [n, k]
    NDArray logPsTop = logPs.gather(ids, -1); // [n, k]
    return divergence.of(withRest(logPtTop), withRest(logPsTop), jsdBeta).sum();
  }

  /** {@code [N, k]} log-probabilities and the log of the mass they leave: {@code [N, k + 1]}. */
  private static NDArray withRest(NDArray logTop) {
    NDArray rest =
        logTop
            .exp()
            .sum(new int[] {-1}, true)
            .neg()
            .add(1f)
            .maximum(Tensors.scalar(logTop.getManager(), 1e-12f))
            .log();
    return logTop.concat(rest, 1);
  }

  /** The logits of the scored positions, {@code [B, T, V] -> [B (T-1), V]}. */
  private static NDArray scoredRows(NDArray logits, int count, long vocab) {
    return logits.split(new long[] {count - 1}, 1).get(0).reshape(-1, vocab);
  }
}
