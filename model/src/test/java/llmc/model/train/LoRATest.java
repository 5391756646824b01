package llmc.model.train;

import static llmc.model.train.TinyModels.PLAIN_ROPE;
import static llmc.model.train.TinyModels.tiny;
import static llmc.model.train.TinyModels.windows;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.stream.Stream;
import llmc.model.Engines;
import llmc.model.Linear;
import llmc.model.LlamaFamily;
import llmc.model.LlamaFamily.Variant;
import llmc.model.LlamaRuntime;
import llmc.model.MemoryWeights;
import llmc.model.TensorNames;
import llmc.model.Weights;
import llmc.model.train.DifferentiableLlama.LoRA;
import llmc.model.train.DifferentiableLlama.Trainable;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * LoRA in the differentiable forward: untrained adapters give the base model bit for bit; {@code
 * current()} is {@code W + (alpha / r) B A} and the runtime on it gives the forward's logits; the
 * gradients w.r.t. A and B agree with finite differences of the runtime's loss on merged weights.
 */
class LoRATest {

  static Stream<Arguments> families() {
    LlamaFamily llama = tiny(Variant.LLAMA, 4, PLAIN_ROPE, false, 0);
    LlamaFamily qwen2 = tiny(Variant.QWEN2, 4, PLAIN_ROPE, true, 0);
    LlamaFamily qwen3 = tiny(Variant.QWEN3, 8, PLAIN_ROPE, false, 0); // q width 32 != hidden 16
    return Stream.of(
        Arguments.of("llama", llama, MemoryWeights.random(llama, 41, 0.3, false)),
        Arguments.of("qwen2 tied, biases", qwen2, MemoryWeights.random(qwen2, 42, 0.3, true)),
        Arguments.of("qwen3 qk-norm", qwen3, MemoryWeights.random(qwen3, 43, 0.3, false)));
  }

  /** The adapter names a LoRA model trains, layer by layer in {@link Linear} order, A then B. */
  private static List<String> adapterNames(LlamaFamily f, Set<Linear> targets) {
    List<String> names = new ArrayList<>();
    for (int i = 0; i < f.layers(); i++) {
      for (Linear l : targets) {
        names.add(LoRA.aName(l, i));
        names.add(LoRA.bName(l, i));
      }
    }
    return names;
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("families")
  void untrainedAdaptersGiveTheBaseModelExactly(String name, LlamaFamily f, Weights w) {
    int[][] tokens = windows(2, 10, f.vocab(), 5).toArray(int[][]::new);
    LoRA lora = LoRA.of(4, 7);
    try (NDManager manager = Engines.newManager();
        NDManager scope = manager.newSubManager()) {
      DifferentiableLlama base =
          new DifferentiableLlama(f, w, manager, EnumSet.noneOf(Trainable.class));
      DifferentiableLlama model = new DifferentiableLlama(f, w, manager, lora);
      assertEquals(8.0, lora.alpha());
      assertEquals(EnumSet.noneOf(Trainable.class), model.trainable());
      assertEquals(lora, model.lora());
      assertEquals(adapterNames(f, lora.targets()), List.copyOf(model.parameters().keySet()));
      long adapters = 0;
      for (int i = 0; i < f.layers(); i++) {
        for (Linear l : Linear.values()) {
          NDArray a = model.parameters().get(LoRA.aName(l, i));
          NDArray b = model.parameters().get(LoRA.bName(l, i));
          assertEquals(new Shape(4, l.inFeatures(f)), a.getShape());
          assertEquals(new Shape(l.outFeatures(f), 4), b.getShape());
          assertTrue(a.hasGradient() && b.hasGradient());
          adapters += a.size() + b.size();
          // B = 0; A Kaiming-uniform(a = sqrt 5): uniform in +-1/sqrt(in), not degenerate.
          for (float v : model.floats(LoRA.bName(l, i))) {
            assertEquals(0f, v);
          }
          float[] values = model.floats(LoRA.aName(l, i));
          double bound = 1 / Math.sqrt(l.inFeatures(f));
          double max = 0;
          for (float v : values) {
            assertTrue(Math.abs(v) <= bound, v + " within +-" + bound);
            max = Math.max(max, Math.abs(v));
          }
          assertTrue(max > 0.8 * bound, "A spans its range: " + max + " of " + bound);
        }
      }
      assertEquals(lora.parameters(f), adapters);

      DifferentiableLlama.Forward expected = base.forward(scope, tokens, true);
      DifferentiableLlama.Forward got = model.forward(scope, tokens, true);
      assertArrayEquals(expected.logits().toFloatArray(), got.logits().toFloatArray(), name);
      for (int i = 0; i < f.layers(); i++) {
        assertArrayEquals(
            expected.hidden().get(i).toFloatArray(), got.hidden().get(i).toFloatArray());
      }
      // Merged with B = 0, the current weights are the base weights, bit for bit.
      for (int i = 0; i < f.layers(); i++) {
        for (Linear l : Linear.values()) {
          assertArrayEquals(w.floats(l.weightName(i)), model.current().floats(l.weightName(i)));
        }
      }
    }
  }

  /**
   * A is drawn from the seed: the same seed gives the same adapters, another seed others, and one
   * linear layer's A does not depend on which others have adapters.
   */
  @Test
  void adaptersAreDrawnFromTheSeed() {
    LlamaFamily f = tiny(Variant.LLAMA, 4, PLAIN_ROPE, false, 0);
    MemoryWeights w = MemoryWeights.random(f, 1, 0.3, false);
    String a = LoRA.aName(Linear.UP, 1);
    try (NDManager manager = Engines.newManager()) {
      float[] first = new DifferentiableLlama(f, w, manager, LoRA.of(2, 3)).floats(a);
      assertArrayEquals(first, new DifferentiableLlama(f, w, manager, LoRA.of(2, 3)).floats(a));
      assertFalse(
          java.util.Arrays.equals(
              first, new DifferentiableLlama(f, w, manager, LoRA.of(2, 4)).floats(a)));
      DifferentiableLlama upOnly =
          new DifferentiableLlama(f, w, manager, new LoRA(2, 1, EnumSet.of(Linear.UP), 3));
      assertArrayEquals(first, upOnly.floats(a));
      assertEquals(
          List.of(
              LoRA.aName(Linear.UP, 0),
              LoRA.bName(Linear.UP, 0),
              LoRA.aName(Linear.UP, 1),
              LoRA.bName(Linear.UP, 1)),
          List.copyOf(upOnly.parameters().keySet()));
      assertThrows(
          IllegalArgumentException.class,
          () ->
              new DifferentiableLlama(f, w, manager, EnumSet.of(Trainable.LINEAR), LoRA.of(2, 0)));
      assertThrows(IllegalArgumentException.class, () -> LoRA.of(0, 0));
      assertThrows(
          IllegalArgumentException.class, () -> new LoRA(2, 0, EnumSet.allOf(Linear.class), 0));
      assertThrows(
          IllegalArgumentException.class, () -> new LoRA(2, 1, EnumSet.noneOf(Linear.class), 0));
    }
  }

  /** The model's own parameter count is what training every group trains. */
  @ParameterizedTest(name = "{0}")
  @MethodSource("families")
  void modelParametersCountEveryTensorOnce(String name, LlamaFamily f, Weights w) {
    try (NDManager manager = Engines.newManager()) {
      long all =
          new DifferentiableLlama(f, w, manager, EnumSet.allOf(Trainable.class))
              .parameters().values().stream().mapToLong(NDArray::size).sum();
      assertEquals(all, new DifferentiableLlama(f, w, manager, LoRA.of(2, 0)).modelParameters());
    }
  }

  /** Sets every adapter to N(0, std^2) values from {@code seed}; returns them by name. */
  private static Map<String, float[]> randomAdapters(
      DifferentiableLlama model, long seed, double std) {
    SplittableRandom random = new SplittableRandom(seed);
    Map<String, float[]> values = new LinkedHashMap<>();
    model
        .parameters()
        .forEach(
            (name, p) -> {
              float[] v = new float[Math.toIntExact(p.size())];
              for (int i = 0; i < v.length; i++) {
                v[i] = (float) (random.nextGaussian() * std);
              }
              p.set(v);
              values.put(name, v);
            });
    return values;
  }

  /**
   * {@code w} with each targeted linear weight replaced by {@code W + scale B A}, computed in
   * float64 from {@code adapters} (by adapter name).
   */
  private static Weights mergedInJava(
      LlamaFamily f, Weights w, LoRA lora, Map<String, float[]> adapters) {
    Map<String, float[]> merged = new HashMap<>();
    for (int i = 0; i < f.layers(); i++) {
      for (Linear l : lora.targets()) {
        int in = l.inFeatures(f);
        int out = l.outFeatures(f);
        int r = lora.rank();
        float[] a = adapters.get(LoRA.aName(l, i));
        float[] b = adapters.get(LoRA.bName(l, i));
        float[] weight = w.floats(l.weightName(i));
        float[] m = new float[out * in];
        for (int o = 0; o < out; o++) {
          for (int j = 0; j < in; j++) {
            double dot = 0;
            for (int k = 0; k < r; k++) {
              dot += (double) b[o * r + k] * a[k * in + j];
            }
            m[o * in + j] = (float) (weight[o * in + j] + lora.scale() * dot);
          }
        }
        merged.put(l.weightName(i), m);
      }
    }
    return new Weights() {
      @Override
      public boolean contains(String name) {
        return w.contains(name);
      }

      @Override
      public long[] shape(String name) {
        return w.shape(name);
      }

      @Override
      public float[] floats(String name) {
        float[] m = merged.get(name);
        return m != null ? m : w.floats(name);
      }
    };
  }

  private static double maxAbsDiff(float[] a, float[] b) {
    assertEquals(a.length, b.length);
    double worst = 0;
    for (int i = 0; i < a.length; i++) {
      worst = Math.max(worst, Math.abs(a[i] - b[i]));
    }
    return worst;
  }

  /**
   * With known A and B, {@code current()} is {@code W + (alpha / r) B A} for the targets (to 1e-6),
   * every other tensor as given, no adapter tensors; the runtime on it gives the LoRA forward's
   * logits to 1e-4.
   */
  @ParameterizedTest(name = "{0}")
  @MethodSource("families")
  void currentIsTheMergedModelTheForwardRuns(String name, LlamaFamily f, Weights w) {
    LoRA lora = new LoRA(3, 5, EnumSet.of(Linear.Q, Linear.V, Linear.O, Linear.DOWN), 11);
    int[][] tokens = windows(2, 12, f.vocab(), 6).toArray(int[][]::new);
    try (NDManager manager = Engines.newManager();
        NDManager scope = manager.newSubManager()) {
      DifferentiableLlama model = new DifferentiableLlama(f, w, manager, lora);
      Map<String, float[]> adapters = randomAdapters(model, 12, 0.3);
      Weights expected = mergedInJava(f, w, lora, adapters);
      Weights current = model.current();
      double mergeDiff = 0;
      for (int i = 0; i < f.layers(); i++) {
        for (Linear l : Linear.values()) {
          String weight = l.weightName(i);
          assertArrayEquals(w.shape(weight), current.shape(weight));
          if (lora.targets().contains(l)) {
            mergeDiff =
                Math.max(mergeDiff, maxAbsDiff(expected.floats(weight), current.floats(weight)));
            assertNotEquals(0, maxAbsDiff(w.floats(weight), current.floats(weight)));
          } else {
            assertArrayEquals(w.floats(weight), current.floats(weight), weight);
          }
          assertFalse(current.contains(LoRA.aName(l, i)));
          assertFalse(current.contains(LoRA.bName(l, i)));
        }
      }
      assertArrayEquals(w.floats(TensorNames.FINAL_NORM), current.floats(TensorNames.FINAL_NORM));
      assertTrue(mergeDiff < 1e-6, name + ": merged vs W + s B A " + mergeDiff);
      // The row reader (embedding lookups) reads the same merged values.
      String q = Linear.Q.weightName(1);
      float[] rows = current.rows(q, 2, 3);
      float[] all = current.floats(q);
      int in = Linear.Q.inFeatures(f);
      assertArrayEquals(java.util.Arrays.copyOfRange(all, 2 * in, 5 * in), rows);

      float[] logits = model.forward(scope, tokens).logits().toFloatArray();
      float[] runtimeLogits;
      try (LlamaRuntime runtime = new LlamaRuntime(f, current, true);
          NDManager runtimeScope = runtime.manager().newSubManager()) {
        runtimeLogits = runtime.forward(runtimeScope, tokens).toFloatArray();
      }
      double logitsDiff = maxAbsDiff(runtimeLogits, logits);
      System.out.printf(
          "%s: max |diff| merged vs float64 W + s B A %.2e, LoRA logits vs runtime on current()"
              + " %.2e%n",
          name, mergeDiff, logitsDiff);
      assertTrue(logitsDiff < 1e-4, name + ": logits vs runtime on current() " + logitsDiff);
    }
  }

  /**
   * dL/dA and dL/dB (L the mean next-token cross-entropy) at each checked adapter's largest |g|
   * entry against central differences of the runtime's loss on the merged weights (computed in
   * float64), at h = 1e-2 and 5e-3, extrapolated (Richardson). Tolerance 1e-4 on gradients of at
   * least 1e-2, as for the other parameters.
   */
  @Test
  void adapterGradientsAgreeWithCentralDifferences() {
    LlamaFamily f = tiny(Variant.LLAMA, 4, PLAIN_ROPE, false, 0);
    MemoryWeights w = MemoryWeights.random(f, 44, 0.3, false);
    LoRA lora = new LoRA(2, 3, EnumSet.allOf(Linear.class), 13);
    List<int[]> windows = windows(4, 12, f.vocab(), 14);
    int[][] tokens = windows.toArray(int[][]::new);
    Map<String, float[]> adapters;
    Map<String, float[]> gradients = new LinkedHashMap<>();
    try (NDManager manager = Engines.newManager()) {
      DifferentiableLlama model = new DifferentiableLlama(f, w, manager, lora);
      adapters = randomAdapters(model, 15, 0.3); // B != 0, so that A has a gradient
      try (GradientCollector collector = manager.getEngine().newGradientCollector();
          NDManager scope = manager.newSubManager()) {
        NDArray nll = model.nllSum(scope, tokens);
        collector.backward(nll.mul((float) (1.0 / (tokens.length * (tokens[0].length - 1)))));
      }
      for (Map.Entry<String, NDArray> e : model.parameters().entrySet()) {
        try (NDArray g = e.getValue().getGradient()) {
          gradients.put(e.getKey(), g.toFloatArray());
        }
      }
    }
    // The merged model's loss is the LoRA model's loss at these adapters.
    double loss = RuntimeLoss.meanNll(f, mergedInJava(f, w, lora, adapters), windows);
    assertTrue(loss > 0);
    for (String name :
        List.of(
            LoRA.aName(Linear.Q, 0),
            LoRA.bName(Linear.Q, 0),
            LoRA.aName(Linear.K, 1),
            LoRA.bName(Linear.O, 1),
            LoRA.aName(Linear.GATE, 0),
            LoRA.bName(Linear.UP, 1),
            LoRA.aName(Linear.DOWN, 1),
            LoRA.bName(Linear.DOWN, 0))) {
      float[] grad = gradients.get(name);
      int j = 0;
      for (int i = 0; i < grad.length; i++) {
        if (Math.abs(grad[i]) > Math.abs(grad[j])) {
          j = i;
        }
      }
      double fd =
          (4 * centralDifference(f, w, lora, adapters, windows, name, j, 5e-3)
                  - centralDifference(f, w, lora, adapters, windows, name, j, 1e-2))
              / 3;
      System.out.printf(
          "lora %s[%d]: autograd %.6e finite difference %.6e, |diff| %.2e%n",
          name, j, grad[j], fd, Math.abs(fd - grad[j]));
      assertTrue(Math.abs(grad[j]) >= 1e-2, name + ": gradient too small to check: " + grad[j]);
      assertEquals(fd, grad[j], 1e-4, name + "[" + j + "]");
    }
  }

  /** {@code (L(p + h) - L(p - h)) / 2h} of the runtime's loss on the merged weights. */
  private static double centralDifference(
      LlamaFamily f,
      Weights w,
      LoRA lora,
      Map<String, float[]> adapters,
      List<int[]> windows,
      String name,
      int index,
      double step) {
    float value = adapters.get(name)[index];
    float plus = (float) (value + step);
    float minus = (float) (value - step);
    return (RuntimeLoss.meanNll(
                f, mergedInJava(f, w, lora, with(adapters, name, index, plus)), windows)
            - RuntimeLoss.meanNll(
                f, mergedInJava(f, w, lora, with(adapters, name, index, minus)), windows))
        / ((double) plus - minus);
  }

  private static Map<String, float[]> with(
      Map<String, float[]> adapters, String name, int index, float value) {
    Map<String, float[]> copy = new HashMap<>(adapters);
    float[] changed = adapters.get(name).clone();
    changed[index] = value;
    copy.put(name, changed);
    return copy;
  }
}
