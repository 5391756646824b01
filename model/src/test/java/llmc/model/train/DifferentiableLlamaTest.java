package llmc.model.train;

import static llmc.model.train.TinyModels.PLAIN_ROPE;
import static llmc.model.train.TinyModels.tiny;
import static llmc.model.train.TinyModels.windows;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Stream;
import llmc.formats.BadInputException;
import llmc.model.CaptureHook;
import llmc.model.Engines;
import llmc.model.Linear;
import llmc.model.LlamaFamily;
import llmc.model.LlamaFamily.Variant;
import llmc.model.LlamaRuntime;
import llmc.model.MemoryWeights;
import llmc.model.Rope;
import llmc.model.TensorNames;
import llmc.model.Weights;
import llmc.model.train.DifferentiableLlama.Forward;
import llmc.model.train.DifferentiableLlama.Trainable;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The differentiable forward against llmc's runtime (same loss, logits and layer outputs), its
 * gradients w.r.t. every group of trainable parameters against central finite differences of the
 * runtime's loss, and its parameter access.
 */
class DifferentiableLlamaTest {

  /** Every supported variant on a tiny family with random weights (std 0.3). */
  static Stream<Arguments> variants() {
    LlamaFamily llama = tiny(Variant.LLAMA, 4, PLAIN_ROPE, false, 0);
    // Tied head, and Llama-3 rope scaling with one frequency in the smooth band (theta 100, d 8).
    LlamaFamily llama3 = tiny(Variant.LLAMA, 8, new Rope.Spec(100, "llama3", 8, 1, 4, 32), true, 0);
    LlamaFamily linear =
        tiny(Variant.LLAMA, 4, new Rope.Spec(10000, "linear", 2, 0, 0, 0), false, 0);
    LlamaFamily mistral = tiny(Variant.MISTRAL, 4, PLAIN_ROPE, false, 5);
    LlamaFamily qwen2 = tiny(Variant.QWEN2, 4, PLAIN_ROPE, true, 0);
    LlamaFamily qwen3 = tiny(Variant.QWEN3, 8, PLAIN_ROPE, false, 0); // q width 32 != hidden 16
    return Stream.of(
        Arguments.of("llama", llama, MemoryWeights.random(llama, 1, 0.3, false)),
        Arguments.of("llama3 tied", llama3, MemoryWeights.random(llama3, 2, 0.3, false)),
        Arguments.of("linear rope", linear, MemoryWeights.random(linear, 3, 0.3, false)),
        Arguments.of("mistral window 5", mistral, MemoryWeights.random(mistral, 4, 0.3, false)),
        Arguments.of("qwen2 biases", qwen2, MemoryWeights.random(qwen2, 5, 0.3, true)),
        Arguments.of("qwen3 qk-norm", qwen3, MemoryWeights.random(qwen3, 6, 0.3, false)));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("variants")
  void nllSumGivesTheRuntimesCrossEntropy(String name, LlamaFamily f, Weights w) {
    List<int[]> windows = windows(3, 16, 32, 1);
    double expected = RuntimeLoss.meanNll(f, w, windows);
    double nll = 0;
    try (NDManager manager = Engines.newManager()) {
      DifferentiableLlama model = new DifferentiableLlama(f, w, manager);
      for (int from = 0; from < windows.size(); from += 2) {
        int[][] batch =
            windows.subList(from, Math.min(windows.size(), from + 2)).toArray(int[][]::new);
        try (NDManager scope = manager.newSubManager()) {
          NDArray sum = model.nllSum(scope, batch);
          assertEquals(DataType.FLOAT32, sum.getDataType());
          assertEquals(new Shape(), sum.getShape());
          nll += sum.getFloat();
        }
      }
    }
    double got = nll / (windows.size() * 15.0);
    double relative = Math.abs(got - expected) / expected;
    System.out.printf(
        "%s: loss autograd %.7f runtime %.7f, relative difference %.2e%n",
        name, got, expected, relative);
    assertTrue(relative < 1e-5, name + ": autograd loss " + got + " vs runtime " + expected);
  }

  /**
   * The logits match the runtime's to 1e-4, every layer's output the runtime's layer by layer to
   * 1e-4, and the last layer's output, RMS-normed and projected by the lm_head (in plain Java),
   * gives the forward's logits to 1e-5.
   */
  @ParameterizedTest(name = "{0}")
  @MethodSource("variants")
  void logitsAndLayerOutputsMatchTheRuntime(String name, LlamaFamily f, Weights w) {
    int[][] tokens = windows(2, 12, f.vocab(), 2).toArray(int[][]::new);
    int rows = 2 * 12;
    try (NDManager manager = Engines.newManager();
        LlamaRuntime runtime = new LlamaRuntime(f, w, true);
        NDManager scope = manager.newSubManager();
        NDManager runtimeScope = runtime.manager().newSubManager()) {
      DifferentiableLlama model = new DifferentiableLlama(f, w, manager);
      Forward forward = model.forward(scope, tokens, true);
      assertEquals(new Shape(2, 12, f.vocab()), forward.logits().getShape());
      assertEquals(DataType.FLOAT32, forward.logits().getDataType());
      float[] logits = forward.logits().toFloatArray();

      float[] expected = runtime.forward(runtimeScope, tokens).toFloatArray();
      double logitsDiff = maxAbsDiff(expected, logits);

      assertEquals(f.layers(), forward.hidden().size());
      float[] x = runtime.embedRows(tokens);
      double hiddenDiff = 0;
      for (int i = 0; i < f.layers(); i++) {
        x = runtime.runLayer(runtime.layer(i), x, 2, 12, 0, null, CaptureHook.NONE);
        NDArray h = forward.hidden().get(i);
        assertEquals(new Shape(2, 12, f.hidden()), h.getShape());
        assertEquals(DataType.FLOAT32, h.getDataType());
        hiddenDiff = Math.max(hiddenDiff, maxAbsDiff(x, h.toFloatArray()));
      }

      float[] last = forward.hidden().get(f.layers() - 1).toFloatArray();
      double headDiff = maxAbsDiff(head(f, w, last, rows), logits);
      System.out.printf(
          "%s: max |diff| logits vs runtime %.2e, layer outputs vs runtime %.2e,"
              + " head(last layer output) vs logits %.2e%n",
          name, logitsDiff, hiddenDiff, headDiff);
      assertTrue(logitsDiff < 1e-4, name + ": logits vs runtime " + logitsDiff);
      assertTrue(hiddenDiff < 1e-4, name + ": layer outputs vs runtime " + hiddenDiff);
      assertTrue(headDiff < 1e-5, name + ": head(last layer output) vs logits " + headDiff);
    }
  }

  /** Final RMSNorm and lm_head in plain Java (float64): {@code x [rows][H] -> [rows][V]}. */
  private static float[] head(LlamaFamily f, Weights w, float[] x, int rows) {
    int hidden = f.hidden();
    float[] norm = w.floats(TensorNames.FINAL_NORM);
    float[] head = w.floats(f.tiedEmbeddings() ? TensorNames.EMBED : TensorNames.LM_HEAD); // [V][H]
    float[] out = new float[rows * f.vocab()];
    double[] normed = new double[hidden];
    for (int r = 0; r < rows; r++) {
      double squares = 0;
      for (int j = 0; j < hidden; j++) {
        squares += (double) x[r * hidden + j] * x[r * hidden + j];
      }
      double scale = 1 / Math.sqrt(squares / hidden + f.rmsNormEps());
      for (int j = 0; j < hidden; j++) {
        normed[j] = x[r * hidden + j] * scale * norm[j];
      }
      for (int v = 0; v < f.vocab(); v++) {
        double dot = 0;
        for (int j = 0; j < hidden; j++) {
          dot += normed[j] * head[v * hidden + j];
        }
        out[r * f.vocab() + v] = (float) dot;
      }
    }
    return out;
  }

  private static double maxAbsDiff(float[] a, float[] b) {
    assertEquals(a.length, b.length);
    double worst = 0;
    for (int i = 0; i < a.length; i++) {
      worst = Math.max(worst, Math.abs(a[i] - b[i]));
    }
    return worst;
  }

  /** dL/dp of every trainable parameter, L the mean next-token cross-entropy of all windows. */
  private static Map<String, float[]> gradients(DifferentiableLlama model, List<int[]> windows) {
    int[][] tokens = windows.toArray(int[][]::new);
    NDManager manager = model.parameters().values().iterator().next().getManager();
    try (GradientCollector collector = manager.getEngine().newGradientCollector();
        NDManager scope = manager.newSubManager()) {
      NDArray nll = model.nllSum(scope, tokens);
      collector.backward(nll.mul((float) (1.0 / (tokens.length * (tokens[0].length - 1)))));
    }
    Map<String, float[]> out = new LinkedHashMap<>();
    for (Map.Entry<String, NDArray> e : model.parameters().entrySet()) {
      try (NDArray g = e.getValue().getGradient()) {
        out.put(e.getKey(), g.toFloatArray());
      }
    }
    return out;
  }

  /**
   * The autograd gradient of each named parameter at its largest |g| entry against finite
   * differences of the runtime's loss: central differences D(h) = {@code (L(p + h) - L(p - h)) /
   * 2h} at h = 1e-2 and 5e-3, extrapolated (Richardson) to cancel their h^2 error, which for the
   * embedding and lm_head is large (measured 5.6e-3 at h = 1e-2, 5.2e-4 at 3e-3). Tolerance 1e-4 on
   * gradients of at least 1e-2, as in prune's GradientsTest.
   */
  private static void assertGradientsAgreeWithCentralDifferences(
      String label,
      LlamaFamily f,
      MemoryWeights w,
      Set<Trainable> trainable,
      List<String> expectedNames,
      List<String> checked) {
    List<int[]> windows = windows(4, 12, f.vocab(), 12);
    Map<String, float[]> g;
    try (NDManager manager = Engines.newManager()) {
      DifferentiableLlama model = new DifferentiableLlama(f, w, manager, trainable);
      assertEquals(expectedNames, List.copyOf(model.parameters().keySet()), label);
      g = gradients(model, windows);
    }
    for (String name : checked) {
      float[] grad = g.get(name);
      int j = 0;
      for (int i = 0; i < grad.length; i++) {
        if (Math.abs(grad[i]) > Math.abs(grad[j])) {
          j = i;
        }
      }
      // Richardson: (4 D(h/2) - D(h)) / 3 cancels the h^2 error of the central differences D.
      double fd =
          (4 * centralDifference(f, w, windows, name, j, 5e-3)
                  - centralDifference(f, w, windows, name, j, 1e-2))
              / 3;
      System.out.printf(
          "%s %s[%d]: autograd %.6e finite difference %.6e, |diff| %.2e%n",
          label, name, j, grad[j], fd, Math.abs(fd - grad[j]));
      assertTrue(Math.abs(grad[j]) >= 1e-2, name + ": gradient too small to check: " + grad[j]);
      assertEquals(fd, grad[j], 1e-4, label + " " + name + "[" + j + "]");
    }
  }

  /** {@code (L(p + h) - L(p - h)) / 2h} of the runtime's loss at {@code name[index]}. */
  private static double centralDifference(
      LlamaFamily f, MemoryWeights w, List<int[]> windows, String name, int index, double step) {
    float value = w.floats(name)[index];
    float plus = (float) (value + step);
    float minus = (float) (value - step);
    return (RuntimeLoss.meanNll(f, w.with(name, index, plus), windows)
            - RuntimeLoss.meanNll(f, w.with(name, index, minus), windows))
        / ((double) plus - minus);
  }

  @Test
  void normsEmbeddingAndLmHeadGradientsAgreeWithCentralDifferences() {
    LlamaFamily f = tiny(Variant.LLAMA, 4, PLAIN_ROPE, false, 0);
    List<String> names = new ArrayList<>();
    names.add(TensorNames.EMBED);
    for (int i = 0; i < f.layers(); i++) {
      for (Linear l : Linear.values()) {
        names.add(l.weightName(i));
      }
      names.add(TensorNames.inputNorm(i));
      names.add(TensorNames.postAttentionNorm(i));
    }
    names.add(TensorNames.FINAL_NORM);
    names.add(TensorNames.LM_HEAD);
    assertGradientsAgreeWithCentralDifferences(
        "llama, all trainable",
        f,
        MemoryWeights.random(f, 31, 0.3, false),
        EnumSet.allOf(Trainable.class),
        names,
        List.of(
            TensorNames.EMBED,
            Linear.UP.weightName(0),
            TensorNames.inputNorm(0),
            TensorNames.postAttentionNorm(1),
            TensorNames.FINAL_NORM,
            TensorNames.LM_HEAD));
  }

  @Test
  void tiedEmbeddingAndBiasGradientsAgreeWithCentralDifferences() {
    // Tied: the lm_head is the embedding, one parameter that both uses train.
    LlamaFamily f = tiny(Variant.QWEN2, 4, PLAIN_ROPE, true, 0);
    List<String> names = new ArrayList<>();
    names.add(TensorNames.EMBED);
    for (int i = 0; i < f.layers(); i++) {
      for (Linear l : List.of(Linear.Q, Linear.K, Linear.V)) {
        names.add(l.biasName(i));
      }
    }
    assertGradientsAgreeWithCentralDifferences(
        "qwen2 tied, lm_head and biases",
        f,
        MemoryWeights.random(f, 32, 0.3, true),
        EnumSet.of(Trainable.LM_HEAD, Trainable.BIASES),
        names,
        List.of(TensorNames.EMBED, Linear.Q.biasName(0), Linear.V.biasName(1)));
  }

  @Test
  void qkNormGradientsAgreeWithCentralDifferences() {
    LlamaFamily f = tiny(Variant.QWEN3, 8, PLAIN_ROPE, false, 0);
    List<String> names = new ArrayList<>();
    for (int i = 0; i < f.layers(); i++) {
      names.add(TensorNames.qNorm(i));
      names.add(TensorNames.kNorm(i));
      names.add(TensorNames.inputNorm(i));
      names.add(TensorNames.postAttentionNorm(i));
    }
    names.add(TensorNames.FINAL_NORM);
    assertGradientsAgreeWithCentralDifferences(
        "qwen3, norms",
        f,
        MemoryWeights.random(f, 33, 0.3, false),
        EnumSet.of(Trainable.NORMS),
        names,
        List.of(TensorNames.qNorm(0), TensorNames.kNorm(1)));
  }

  @Test
  void byDefaultTheLinearWeightsTrainLayerByLayerInLinearOrder() {
    LlamaFamily f = tiny(Variant.QWEN2, 4, PLAIN_ROPE, false, 0);
    MemoryWeights w = MemoryWeights.random(f, 7, 0.3, true);
    try (NDManager manager = Engines.newManager()) {
      DifferentiableLlama model = new DifferentiableLlama(f, w, manager);
      assertEquals(EnumSet.of(Trainable.LINEAR), model.trainable());
      List<String> expected = new ArrayList<>();
      for (int i = 0; i < f.layers(); i++) {
        for (Linear l : Linear.values()) {
          expected.add(l.weightName(i));
        }
      }
      assertEquals(expected, List.copyOf(model.parameters().keySet()));
      for (Map.Entry<String, NDArray> e : model.parameters().entrySet()) {
        NDArray p = e.getValue();
        assertEquals(DataType.FLOAT32, p.getDataType());
        assertTrue(p.hasGradient(), e.getKey());
        assertEquals(new Shape(w.shape(e.getKey())), p.getShape());
      }
      assertTrue(
          new DifferentiableLlama(f, w, manager, EnumSet.noneOf(Trainable.class))
              .parameters()
              .isEmpty());
    }
  }

  /**
   * {@link DifferentiableLlama#floats} and {@link DifferentiableLlama#current} read a parameter as
   * it is now (here changed in place, as an optimizer step does), the rest from the source weights;
   * the runtime on {@code current()} runs the changed model.
   */
  @Test
  void currentWeightsReadTheParametersAsTheyAreNow() {
    LlamaFamily f = tiny(Variant.LLAMA, 4, PLAIN_ROPE, false, 0);
    MemoryWeights w = MemoryWeights.random(f, 8, 0.3, false);
    String q = Linear.Q.weightName(1);
    int[][] tokens = windows(1, 8, f.vocab(), 3).toArray(int[][]::new);
    try (NDManager manager = Engines.newManager()) {
      DifferentiableLlama model = new DifferentiableLlama(f, w, manager);
      assertArrayEquals(w.floats(q), model.floats(q));
      assertThrows(IllegalArgumentException.class, () -> model.floats(TensorNames.FINAL_NORM));
      NDArray p = model.parameters().get(q);
      try (NDArray delta = manager.ones(p.getShape()).mul(0.25f)) {
        p.subi(delta); // outside a gradient collector, as an optimizer updates
      }
      float[] changed = w.floats(q).clone();
      for (int i = 0; i < changed.length; i++) {
        changed[i] -= 0.25f;
      }
      assertArrayEquals(changed, model.floats(q));
      Weights current = model.current();
      assertArrayEquals(changed, current.floats(q));
      assertArrayEquals(w.shape(q), current.shape(q));
      assertArrayEquals(w.floats(TensorNames.EMBED), current.floats(TensorNames.EMBED));
      assertTrue(current.contains(TensorNames.LM_HEAD));
      try (NDManager scope = manager.newSubManager();
          LlamaRuntime runtime = new LlamaRuntime(f, current, true);
          NDManager runtimeScope = runtime.manager().newSubManager()) {
        float[] logits = model.forward(scope, tokens).logits().toFloatArray();
        float[] expected = runtime.forward(runtimeScope, tokens).toFloatArray();
        assertTrue(maxAbsDiff(expected, logits) < 1e-4);
        float[] before;
        try (LlamaRuntime original = new LlamaRuntime(f, w, true);
            NDManager originalScope = original.manager().newSubManager()) {
          before = original.forward(originalScope, tokens).toFloatArray();
        }
        assertNotEquals(0, maxAbsDiff(before, logits));
      }
    }
  }

  /** An embedding that trains is looked up in its array: the same forward, bit for bit. */
  @Test
  void aTrainableEmbeddingGivesTheSameForward() {
    int[][] tokens = windows(2, 10, 32, 4).toArray(int[][]::new);
    for (boolean tied : new boolean[] {false, true}) {
      LlamaFamily f = tiny(Variant.LLAMA, 4, PLAIN_ROPE, tied, 0);
      MemoryWeights w = MemoryWeights.random(f, 9, 0.3, false);
      try (NDManager manager = Engines.newManager();
          NDManager scope = manager.newSubManager()) {
        float[] rows =
            new DifferentiableLlama(f, w, manager).forward(scope, tokens).logits().toFloatArray();
        DifferentiableLlama trained =
            new DifferentiableLlama(f, w, manager, EnumSet.of(Trainable.EMBEDDING));
        assertEquals(List.of(TensorNames.EMBED), List.copyOf(trained.parameters().keySet()));
        assertArrayEquals(rows, trained.forward(scope, tokens).logits().toFloatArray());
      }
    }
  }

  @Test
  void windowsAreChecked() {
    LlamaFamily f = tiny(Variant.LLAMA, 4, PLAIN_ROPE, false, 0);
    MemoryWeights w = MemoryWeights.random(f, 1, 0.3, false);
    try (NDManager manager = Engines.newManager();
        NDManager scope = manager.newSubManager()) {
      DifferentiableLlama model = new DifferentiableLlama(f, w, manager);
      assertTrue(model.forward(scope, new int[][] {{1, 2, 3}}).hidden().isEmpty());
      assertEquals(
          new Shape(1, 1, f.vocab()), model.forward(scope, new int[][] {{1}}).logits().getShape());
      assertThrows(
          IllegalArgumentException.class, () -> model.nllSum(scope, new int[][] {{1}, {2}}));
      assertThrows(
          IllegalArgumentException.class, () -> model.forward(scope, new int[][] {{1, 2}, {1}}));
      assertThrows(IllegalArgumentException.class, () -> model.forward(scope, new int[0][]));
      assertThrows(BadInputException.class, () -> model.nllSum(scope, new int[][] {{1, 32}}));
      assertThrows(BadInputException.class, () -> model.forward(scope, new int[][] {{-1, 2}}));
    }
  }
}
