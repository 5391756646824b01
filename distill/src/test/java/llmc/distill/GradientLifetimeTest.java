package llmc.distill;

import static llmc.model.train.TinyModels.PLAIN_ROPE;
import static llmc.model.train.TinyModels.tiny;
import static llmc.model.train.TinyModels.windows;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.training.GradientCollector;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import llmc.model.Engines;
import llmc.model.LlamaFamily;
import llmc.model.LlamaFamily.Variant;
import llmc.model.MemoryWeights;
import llmc.model.kernels.Tensors;
import llmc.model.train.DifferentiableLlama;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * A garbage collection between the forward and the backward pass changes no gradient bit. DJL's
 * {@code mul(Number)} / {@code div(Number)} / {@code maximum(Number)} wrap the scalar's Java direct
 * buffer without a copy and drop it at once, while autograd keeps the tensor for the backward: once
 * a GC freed the buffer, the backward read freed memory (attention's 1/sqrt(d) read as 0 zeroed
 * every q_proj gradient; the loss's weights read as garbage). That made distillation runs part now
 * and then. Every scalar autograd records is now a tensor PyTorch owns ({@link Tensors#scalar}).
 */
class GradientLifetimeTest {

  static java.util.stream.Stream<org.junit.jupiter.params.provider.Arguments> losses() {
    return DistillLossGradientTest.losses();
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("losses")
  void aCollectionBetweenForwardAndBackwardChangesNoGradient(String name, DistillLoss loss)
      throws InterruptedException {
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
      Map<String, float[]> quiet = gradients(loss, teacher, student, manager, tokens, false);
      Map<String, float[]> collected = gradients(loss, teacher, student, manager, tokens, true);
      for (String parameter : quiet.keySet()) {
        assertArrayEquals(
            quiet.get(parameter), collected.get(parameter), name + ": gradient of " + parameter);
      }
    }
  }

  private static Map<String, float[]> gradients(
      DistillLoss loss,
      DifferentiableLlama teacher,
      DifferentiableLlama student,
      NDManager manager,
      int[][] tokens,
      boolean collect)
      throws InterruptedException {
    Map<String, NDArray> parameters = student.parameters();
    try (GradientCollector collector = manager.getEngine().newGradientCollector();
        NDManager scope = manager.newSubManager()) {
      NDArray objective =
          DistillLossGradientTest.objective(loss, collector, teacher, student, scope, tokens);
      if (collect) {
        // What a young collection between forward and backward does: free unreachable direct
        // buffers, and hand their memory to new ones, which are then written.
        System.gc();
        Thread.sleep(20);
        List<ByteBuffer> reuse = new ArrayList<>();
        for (int i = 0; i < 256; i++) {
          ByteBuffer b = ByteBuffer.allocateDirect(4 + (i & 7));
          b.putInt(0, 0x7f7f7f7f);
          reuse.add(b);
        }
      }
      collector.backward(objective);
    }
    Map<String, float[]> out = new LinkedHashMap<>();
    for (Map.Entry<String, NDArray> p : parameters.entrySet()) {
      float[] g = new float[Math.toIntExact(p.getValue().size())];
      try (NDArray gradient = p.getValue().getGradient()) {
        Tensors.read(gradient, g);
        gradient.subi(gradient); // zeroed for the next pass (gradients accumulate)
      }
      out.put(p.getKey(), g);
    }
    return out;
  }
}
