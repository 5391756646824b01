package llmc.distill;

import static llmc.model.train.TinyModels.PLAIN_ROPE;
import static llmc.model.train.TinyModels.tiny;
import static llmc.model.train.TinyModels.windows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.training.GradientCollector;
import java.util.EnumSet;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import llmc.model.Engines;
import llmc.model.LlamaFamily;
import llmc.model.LlamaFamily.Variant;
import llmc.model.MemoryWeights;
import llmc.model.kernels.Tensors;
import llmc.model.train.DifferentiableLlama;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The distillation loss's gradient by autograd equals finite differences of the loss itself, for
 * every divergence, the hard labels and the hidden-state MSE, on a tiny random teacher and student
 * (every parameter group trainable).
 */
class DistillLossGradientTest {

  static Stream<Arguments> losses() {
    List<int[]> pairs = List.of(new int[] {0, 0}, new int[] {1, 1});
    return Stream.of(
        Arguments.of(
            "forward KL, T 2", new DistillLoss(1, 2, 0, Divergence.FORWARD_KL, 0.5, List.of())),
        Arguments.of(
            "reverse KL, T 1.5", new DistillLoss(1, 1.5, 0, Divergence.REVERSE_KL, 0.5, List.of())),
        Arguments.of("JSD b 0.3", new DistillLoss(1, 2, 0, Divergence.JSD, 0.3, List.of())),
        Arguments.of(
            "hard labels", new DistillLoss(0, 2, 0, Divergence.FORWARD_KL, 0.5, List.of())),
        Arguments.of(
            "KD + CE + hidden MSE",
            new DistillLoss(0.5, 2, 0.7, Divergence.FORWARD_KL, 0.5, pairs)));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("losses")
  void autogradGradientEqualsFiniteDifferencesOfTheLoss(String name, DistillLoss loss) {
    Engines.configure(1);
    LlamaFamily f = tiny(Variant.LLAMA, 4, PLAIN_ROPE, false, 0);
    MemoryWeights teacherWeights = MemoryWeights.random(f, 11, 0.3, false);
    MemoryWeights studentWeights = MemoryWeights.random(f, 12, 0.3, false);
    int[][] tokens = windows(3, 9, f.vocab(), 5).toArray(int[][]::new);
    try (NDManager manager = Engines.newManager()) {
      DifferentiableLlama teacher =
          new DifferentiableLlama(
              f, teacherWeights, manager, EnumSet.noneOf(DifferentiableLlama.Trainable.class));
      DifferentiableLlama student =
          new DifferentiableLlama(
              f, studentWeights, manager, EnumSet.allOf(DifferentiableLlama.Trainable.class));
      Map<String, NDArray> parameters = student.parameters();
      try (GradientCollector collector = manager.getEngine().newGradientCollector();
          NDManager scope = manager.newSubManager()) {
        collector.backward(objective(loss, collector, teacher, student, scope, tokens));
      }
      double worst = 0;
      String[] probed = {
        "model.layers.0.self_attn.q_proj.weight",
        "model.layers.1.mlp.down_proj.weight",
        "model.layers.0.input_layernorm.weight",
        "model.norm.weight",
        "model.embed_tokens.weight",
        "lm_head.weight"
      };
      for (String parameter : probed) {
        NDArray p = parameters.get(parameter);
        float[] grad = new float[Math.toIntExact(p.size())];
        try (NDArray g = p.getGradient()) {
          Tensors.read(g, grad);
        }
        float[] values = new float[grad.length];
        Tensors.read(p, values);
        for (int index : new int[] {0, grad.length / 3, grad.length - 1}) {
          double numeric = richardson(loss, teacher, student, manager, tokens, p, values, index);
          double error = Math.abs(numeric - grad[index]);
          worst = Math.max(worst, error);
          assertTrue(
              error <= 2e-4 + 2e-2 * Math.abs(numeric),
              name
                  + " "
                  + parameter
                  + "["
                  + index
                  + "]: autograd "
                  + grad[index]
                  + ", finite"
                  + " differences "
                  + numeric);
        }
      }
      System.out.printf("%s: worst |autograd - finite differences| %.2e%n", name, worst);
    }
  }

  /** The loss's value, no gradient. */
  private static double value(
      DistillLoss loss,
      DifferentiableLlama teacher,
      DifferentiableLlama student,
      NDManager scope,
      int[][] tokens) {
    return loss.of(
            scope,
            teacher.forward(scope, tokens, loss.needsHidden()),
            student.forward(scope, tokens, loss.needsHidden()),
            tokens)
        .loss();
  }

  /**
   * What the trainer back-propagates, with chunks of two rows so that windows split into several
   * (the trainer's chunks hold a few rows of a real vocabulary).
   */
  static NDArray objective(
      DistillLoss loss,
      GradientCollector collector,
      DifferentiableLlama teacher,
      DifferentiableLlama student,
      NDManager scope,
      int[][] tokens) {
    DistillLoss.Teacher t =
        loss.needsTeacher()
            ? loss.teacher(teacher.forward(scope, tokens, loss.needsHidden()), tokens[0].length)
            : null;
    DifferentiableLlama.Forward s = student.forward(scope, tokens, loss.needsHidden());
    long vocab = s.logits().getShape().get(2);
    return loss.of(collector, scope, t, s, tokens, 2 * vocab).objective();
  }

  /** Central differences at h and h/2, extrapolated: the h^2 error term cancels. */
  private static double richardson(
      DistillLoss loss,
      DifferentiableLlama teacher,
      DifferentiableLlama student,
      NDManager manager,
      int[][] tokens,
      NDArray p,
      float[] values,
      int index) {
    double h = 2e-2;
    double d1 = central(loss, teacher, student, manager, tokens, p, values, index, h);
    double d2 = central(loss, teacher, student, manager, tokens, p, values, index, h / 2);
    return (4 * d2 - d1) / 3;
  }

  private static double central(
      DistillLoss loss,
      DifferentiableLlama teacher,
      DifferentiableLlama student,
      NDManager manager,
      int[][] tokens,
      NDArray p,
      float[] values,
      int index,
      double h) {
    double[] at = new double[2];
    for (int side = 0; side < 2; side++) {
      float[] changed = values.clone();
      changed[index] = (float) (values[index] + (side == 0 ? h : -h));
      p.set(changed);
      try (NDManager scope = manager.newSubManager()) {
        at[side] = value(loss, teacher, student, scope, tokens);
      }
    }
    p.set(values);
    return (at[0] - at[1]) / (2 * h);
  }
}
