package llmc.calibration;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.EnumMap;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import llmc.formats.DType;
import llmc.formats.ModelFolder;
import llmc.formats.QuantizedTensor;
import llmc.model.Evaluator;
import llmc.model.Linear;
import llmc.model.LlamaFamily;
import llmc.model.LlamaRuntime;
import llmc.model.TextDataset;
import llmc.model.TokenWindows;
import llmc.model.Tokenizer;
import llmc.model.Weights;
import org.junit.jupiter.api.Test;

/**
 * The fold of input scales into the operations before is exact: stories260K with every reader
 * stored as {@code W diag(s)} (random {@code s}, tied over the query heads sharing a key/value head
 * for o) and {@code 1/s} folded by {@link ScaleFold} into the norms and into {@code v_proj}'s and
 * {@code up_proj}'s rows computes the original model's logits (KL below 1e-7, every argmax the
 * same); scales for o that differ between query heads sharing a key/value head are refused.
 */
class ScaleFoldTest {
  private static final Path ROOT = Path.of(System.getProperty("llmc.root"));

  @Test
  void foldedModelComputesTheOriginal() {
    try (ModelFolder folder = ModelFolder.open(ROOT.resolve("samples/models/stories260K"));
        Tokenizer tokenizer = Tokenizer.open(folder)) {
      LlamaFamily f = LlamaFamily.from(folder.config());
      Weights base = Weights.of(folder.checkpoint());
      Random random = new Random(7);
      Map<String, float[]> changed = new HashMap<>();
      for (int layer = 0; layer < f.layers(); layer++) {
        Map<Linear.Input, float[]> scales = new EnumMap<>(Linear.Input.class);
        for (Linear.Input input : Linear.Input.values()) {
          float[] s = new float[input.width(f)];
          for (int j = 0; j < s.length; j++) {
            s[j] = (float) Math.exp(random.nextGaussian()); // 0.1 .. 10
          }
          if (input == Linear.Input.ATTN_OUT) { // one scale per v_proj row
            int group = f.heads() / f.kvHeads();
            for (int h = 0; h < f.heads(); h++) {
              System.arraycopy(
                  s, (h / group * group) * f.headDim(), s, h * f.headDim(), f.headDim());
            }
          }
          scales.put(input, s);
        }
        Map<Linear, CompressedMatrix> done = new LinkedHashMap<>();
        for (Linear linear : Linear.values()) {
          float[] w = base.floats(linear.weightName(layer));
          float[] s = scales.get(linear.input);
          int cols = s.length;
          for (int i = 0; i < w.length; i++) {
            w[i] *= s[i % cols];
          }
          done.put(linear, CompressedMatrix.values(w, 0, null));
        }
        Map<String, float[]> vectors = ScaleFold.fold(f, base, layer, scales, done);
        assertEquals(2, vectors.size());
        changed.putAll(vectors);
        for (Map.Entry<Linear, CompressedMatrix> e : done.entrySet()) {
          changed.put(e.getKey().weightName(layer), e.getValue().weight());
        }
      }
      int[] stream =
          TokenWindows.stream(
              tokenizer,
              TextDataset.read(ROOT.resolve("samples/data/tinystories/valid.jsonl"), "text"));
      List<int[]> windows = TokenWindows.first(stream, 256, 2);
      try (LlamaRuntime folded = new LlamaRuntime(f, with(base, changed), true);
          LlamaRuntime original = new LlamaRuntime(f, base, true)) {
        Evaluator.Result r = Evaluator.evaluate(folded, original, windows, 1, done -> {});
        assertTrue(r.meanKl() < 1e-7, "mean KL " + r.meanKl());
        assertEquals(1.0, r.top1Agreement());
      }
    }
  }

  @Test
  void untiedScalesForOAreRefused() {
    LlamaFamily f;
    try (ModelFolder folder = ModelFolder.open(ROOT.resolve("samples/models/stories260K"))) {
      f = LlamaFamily.from(folder.config());
    }
    float[] s = new float[f.qWidth()];
    java.util.Arrays.fill(s, 1f);
    s[f.headDim()] = 2f; // query head 1 shares key/value head 0 with head 0, which has 1
    assertThrows(IllegalArgumentException.class, () -> ScaleFold.valueRows(f, s));
  }

  @Test
  void dividingQuantizedRowsDividesTheirValues() {
    Random random = new Random(3);
    int rows = 6;
    int cols = 64;
    byte[] codes = new byte[rows * cols];
    random.nextBytes(codes);
    for (int i = 0; i < codes.length; i++) {
      codes[i] &= 15;
    }
    float[] scales = new float[2 * rows];
    int[] zeros = new int[2 * rows];
    for (int i = 0; i < scales.length; i++) {
      scales[i] = 0.01f + random.nextFloat();
      zeros[i] = random.nextInt(16);
    }
    int[] gIdx = new int[cols];
    for (int k = 0; k < cols; k++) {
      gIdx[k] = k / 32;
    }
    QuantizedTensor q =
        new QuantizedTensor(rows, cols, 4, 32, false, codes, scales, zeros, gIdx, DType.F32);
    float[] s = {1f, 2f, 0.5f, 3f, 0.25f, 1.5f};
    CompressedMatrix divided =
        ScaleFold.divideRows(CompressedMatrix.quantized(q, 0, null, null, null, false, null), s);
    float[] before = q.dequantize();
    float[] after = divided.weight();
    assertTrue(divided.valuesAreCodes());
    for (int i = 0; i < before.length; i++) {
      assertEquals(before[i] / s[i / cols], after[i], 1e-6f * Math.abs(before[i]) + 1e-12f);
    }
  }

  /** {@code base} with some tensors replaced (1-D norms and 2-D matrices alike). */
  private static Weights with(Weights base, Map<String, float[]> changed) {
    return new Weights() {
      @Override
      public boolean contains(String name) {
        return base.contains(name);
      }

      @Override
      public long[] shape(String name) {
        return base.shape(name);
      }

      @Override
      public float[] floats(String name) {
        float[] v = changed.get(name);
        return v != null ? v.clone() : base.floats(name);
      }
    };
  }
}
