package llmc.model.train;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import llmc.model.LlamaFamily;
import llmc.model.LlamaFamily.Variant;
import llmc.model.Rope;

/** Tiny model shapes and random token windows for gradient and training tests. */
public final class TinyModels {
  /** RoPE without scaling, theta 10000. */
  public static final Rope.Spec PLAIN_ROPE = new Rope.Spec(10000, "none", 1, 0, 0, 0);

  private TinyModels() {}

  /** A tiny family: hidden 16, 2 layers, 4 query heads, 2 key/value heads, vocab 32. */
  public static LlamaFamily tiny(
      Variant variant, int headDim, Rope.Spec rope, boolean tied, int window) {
    return new LlamaFamily(variant, 16, 2, 4, 2, headDim, 24, 32, 64, 1e-5, rope, tied, window);
  }

  /** {@code count} windows of {@code length} uniform random tokens. */
  public static List<int[]> windows(int count, int length, int vocab, long seed) {
    SplittableRandom random = new SplittableRandom(seed);
    List<int[]> windows = new ArrayList<>();
    for (int i = 0; i < count; i++) {
      windows.add(random.ints(length, 0, vocab).toArray());
    }
    return windows;
  }
}
