package llmc.prune.grad;

import static llmc.model.train.TinyModels.PLAIN_ROPE;
import static llmc.model.train.TinyModels.tiny;
import static llmc.model.train.TinyModels.windows;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import llmc.formats.BadInputException;
import llmc.model.Linear;
import llmc.model.LlamaFamily;
import llmc.model.LlamaFamily.Variant;
import llmc.model.MemoryWeights;
import llmc.model.train.RuntimeLoss;
import org.junit.jupiter.api.Test;

/**
 * Gradients against central finite differences of the runtime's loss, and batching against one
 * batch. (The autograd forward itself is checked against the runtime in model's {@code
 * llmc.model.train.DifferentiableLlamaTest}.)
 */
class GradientsTest {

  /**
   * Central differences {@code (L(w + h) - L(w - h)) / 2h} of the runtime's loss at two entries of
   * every linear weight (the largest |g| and a random one of at least a quarter of it), h = 1e-2.
   * The difference's error is truncation, {@code h^2 / 6 * L'''}, measured here as 4.5e-4 at h =
   * 3e-2 and 4.7e-5 at h = 1e-2 (it scales as h^2), plus float32 noise of the loss (about 1.6e-7,
   * i.e. 8e-6 at h = 1e-2; it takes over below h = 3e-3: 7.9e-5 at h = 1e-3). Hence a tolerance of
   * 1e-4 on gradients of at least 1e-2: a transposed gradient, a wrong RoPE or a missing scale
   * misses by a good part of |g|.
   */
  @Test
  void gradientsAgreeWithCentralDifferencesOfTheRuntimeLoss() {
    LlamaFamily f = tiny(Variant.LLAMA, 4, PLAIN_ROPE, false, 0);
    MemoryWeights w = MemoryWeights.random(f, 11, 0.3, false);
    List<int[]> windows = windows(4, 12, f.vocab(), 12);
    Gradients g = Gradients.compute(f, w, windows, 2, done -> {});
    SplittableRandom random = new SplittableRandom(13);
    double step = 1e-2;
    double worst = 0;
    for (int layer = 0; layer < f.layers(); layer++) {
      for (Linear l : Linear.values()) {
        String name = l.weightName(layer);
        float[] grad = g.of(name);
        int largest = 0;
        for (int j = 0; j < grad.length; j++) {
          if (Math.abs(grad[j]) > Math.abs(grad[largest])) {
            largest = j;
          }
        }
        int other;
        do {
          other = random.nextInt(grad.length);
        } while (Math.abs(grad[other]) < 0.25 * Math.abs(grad[largest]));
        for (int j : new int[] {largest, other}) {
          float value = w.floats(name)[j];
          float plus = (float) (value + step);
          float minus = (float) (value - step);
          double fd =
              (RuntimeLoss.meanNll(f, w.with(name, j, plus), windows)
                      - RuntimeLoss.meanNll(f, w.with(name, j, minus), windows))
                  / ((double) plus - minus);
          double err = Math.abs(fd - grad[j]);
          worst = Math.max(worst, err);
          System.out.printf(
              "%s[%d][%d]: autograd %.6e finite difference %.6e, |diff| %.2e%n",
              name, j / l.inFeatures(f), j % l.inFeatures(f), grad[j], fd, err);
          assertTrue(Math.abs(grad[j]) >= 1e-2, name + ": gradient too small to check: " + grad[j]);
          assertEquals(fd, grad[j], 1e-4, name + "[" + j + "]: autograd vs central difference");
        }
      }
    }
    System.out.printf("worst |autograd - central difference| %.2e%n", worst);
  }

  @Test
  void oneWindowPerBatchGivesTheSameGradientAsOneBatchOfAll() {
    LlamaFamily f = tiny(Variant.MISTRAL, 4, PLAIN_ROPE, false, 6);
    MemoryWeights w = MemoryWeights.random(f, 21, 0.3, false);
    List<int[]> windows = windows(5, 14, f.vocab(), 22);
    List<Integer> progress = new ArrayList<>();
    Gradients single = Gradients.compute(f, w, windows, 1, progress::add);
    Gradients all = Gradients.compute(f, w, windows, windows.size(), done -> {});
    assertEquals(List.of(1, 2, 3, 4, 5), progress);
    assertEquals(single.loss(), all.loss(), 1e-6 * all.loss());
    double worst = 0;
    for (String name : all.names()) {
      float[] a = single.of(name);
      float[] b = all.of(name);
      double max = 0;
      double diff = 0;
      for (int j = 0; j < a.length; j++) {
        max = Math.max(max, Math.abs(b[j]));
        diff = Math.max(diff, Math.abs(a[j] - b[j]));
      }
      assertTrue(max > 0, name + " has a zero gradient");
      worst = Math.max(worst, diff / max);
    }
    System.out.printf("batch 1 vs batch 5: worst max|diff| / max|g| over matrices %.2e%n", worst);
    assertTrue(worst < 1e-5, "batch 1 vs batch 5: " + worst);
    assertEquals(14, all.names().size());
    assertEquals(4L * 2 * (16 * 16 + 8 * 16 * 2 + 16 * 16 + 24 * 16 * 3), all.bytes());
    assertEquals(5 * 13, all.scoredTokens());
  }

  @Test
  void windowsOfDifferentLengthsAndTokensOutsideTheVocabularyAreRefused() {
    LlamaFamily f = tiny(Variant.LLAMA, 4, PLAIN_ROPE, false, 0);
    MemoryWeights w = MemoryWeights.random(f, 1, 0.3, false);
    assertThrows(
        BadInputException.class,
        () ->
            Gradients.compute(f, w, List.of(new int[] {1, 2, 3}, new int[] {1, 2}), 1, done -> {}));
    assertThrows(
        BadInputException.class,
        () -> Gradients.compute(f, w, List.of(new int[] {1, 32}), 1, done -> {}));
  }
}
