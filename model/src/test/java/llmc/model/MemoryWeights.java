package llmc.model;

import java.util.HashMap;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * Weights held in memory, for tests: random ones for a family, and copies with one value changed.
 * Shared with other modules' tests through model's test jar.
 */
public final class MemoryWeights implements Weights {
  private final Map<String, float[]> values;
  private final Map<String, long[]> shapes;

  private MemoryWeights(Map<String, float[]> values, Map<String, long[]> shapes) {
    this.values = values;
    this.shapes = shapes;
  }

  /**
   * Weights ~ N(0, std^2), norm weights 1 + N(0, 0.1^2), and with {@code biases} q/k/v biases ~
   * N(0, std^2) (Qwen2); the lm_head unless the family ties it to the embedding.
   */
  public static MemoryWeights random(LlamaFamily f, long seed, double std, boolean biases) {
    SplittableRandom random = new SplittableRandom(seed);
    MemoryWeights w = new MemoryWeights(new HashMap<>(), new HashMap<>());
    w.normal(random, TensorNames.EMBED, std, f.vocab(), f.hidden());
    for (int i = 0; i < f.layers(); i++) {
      w.norm(random, TensorNames.inputNorm(i), f.hidden());
      w.norm(random, TensorNames.postAttentionNorm(i), f.hidden());
      for (Linear l : Linear.values()) {
        w.normal(random, l.weightName(i), std, l.outFeatures(f), l.inFeatures(f));
        if (biases && l.input == Linear.Input.ATTN_IN) {
          w.normal(random, l.biasName(i), std, l.outFeatures(f));
        }
      }
      if (f.variant().hasQkNorm()) {
        w.norm(random, TensorNames.qNorm(i), f.headDim());
        w.norm(random, TensorNames.kNorm(i), f.headDim());
      }
    }
    w.norm(random, TensorNames.FINAL_NORM, f.hidden());
    if (!f.tiedEmbeddings()) {
      w.normal(random, TensorNames.LM_HEAD, std, f.vocab(), f.hidden());
    }
    return w;
  }

  /** A copy with {@code name[index]} set to {@code value} (the other tensors shared). */
  public MemoryWeights with(String name, int index, float value) {
    Map<String, float[]> copy = new HashMap<>(values);
    float[] changed = values.get(name).clone();
    changed[index] = value;
    copy.put(name, changed);
    return new MemoryWeights(copy, shapes);
  }

  private void normal(SplittableRandom random, String name, double std, long... shape) {
    float[] v = new float[Math.toIntExact(shape.length == 1 ? shape[0] : shape[0] * shape[1])];
    for (int i = 0; i < v.length; i++) {
      v[i] = (float) (random.nextGaussian() * std);
    }
    values.put(name, v);
    shapes.put(name, shape);
  }

  private void norm(SplittableRandom random, String name, long size) {
    float[] v = new float[Math.toIntExact(size)];
    for (int i = 0; i < v.length; i++) {
      v[i] = (float) (1 + random.nextGaussian() * 0.1);
    }
    values.put(name, v);
    shapes.put(name, new long[] {size});
  }

  @Override
  public boolean contains(String name) {
    return values.containsKey(name);
  }

  @Override
  public long[] shape(String name) {
    return shapes.get(name).clone();
  }

  @Override
  public float[] floats(String name) {
    return values.get(name);
  }
}
