package llmc.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import llmc.formats.ModelFolder;
import llmc.model.kernels.Attention;
import org.junit.jupiter.api.Test;

class KvCacheTest {

  /**
   * Positions {@code [from, from + count)} of one layer, width 3: value = 10 * position + column.
   */
  private static float[] rows(int from, int count, float offset) {
    float[] out = new float[count * 3];
    for (int p = 0; p < count; p++) {
      for (int c = 0; c < 3; c++) {
        out[p * 3 + c] = 10 * (from + p) + c + offset;
      }
    }
    return out;
  }

  private static float[] valid(float[] all, int length) {
    return java.util.Arrays.copyOf(all, length * 3);
  }

  @Test
  void truncatedCacheAppendsAtTheCutAndKeepsThePositionsBeforeIt() {
    KvCache cache = new KvCache(2);
    for (int layer = 0; layer < 2; layer++) {
      cache.append(layer, rows(0, 5, 0), rows(0, 5, 0.5f), 1, 5, 3);
    }
    cache.truncate(2);
    assertEquals(2, cache.length());
    for (int layer = 0; layer < 2; layer++) {
      // Two new positions overwrite the forgotten 2..3; the result is as if 0..1 then these.
      Attention.KeyValues kv = cache.append(layer, rows(2, 2, 100), rows(2, 2, 200), 1, 2, 3);
      assertEquals(4, kv.length());
      float[] expectedKeys = new float[12];
      System.arraycopy(rows(0, 2, 0), 0, expectedKeys, 0, 6);
      System.arraycopy(rows(2, 2, 100), 0, expectedKeys, 6, 6);
      float[] expectedValues = new float[12];
      System.arraycopy(rows(0, 2, 0.5f), 0, expectedValues, 0, 6);
      System.arraycopy(rows(2, 2, 200), 0, expectedValues, 6, 6);
      assertArrayEquals(expectedKeys, valid(kv.keys(), 4));
      assertArrayEquals(expectedValues, valid(kv.values(), 4));
    }
    assertEquals(4, cache.length());
  }

  @Test
  void truncatingToZeroEmptiesAndBeyondTheLengthIsRefused() {
    KvCache cache = new KvCache(1);
    cache.append(0, rows(0, 3, 0), rows(0, 3, 0), 1, 3, 3);
    assertThrows(IllegalArgumentException.class, () -> cache.truncate(4));
    assertThrows(IllegalArgumentException.class, () -> cache.truncate(-1));
    assertEquals(3, cache.length());
    cache.truncate(0);
    assertEquals(0, cache.length());
    Attention.KeyValues kv = cache.append(0, rows(0, 1, 7), rows(0, 1, 7), 1, 1, 3);
    assertEquals(1, kv.length());
    assertArrayEquals(rows(0, 1, 7), valid(kv.keys(), 1));
  }

  @Test
  void decodingAfterARollbackGivesTheBitsOfDecodingWithoutTheRejectedTokens() {
    // stories260K: run a, b, c, d; roll back to a, b; run e. The logits of e are those of a fresh
    // cache that ran a, b, then e: nothing of c and d is left.
    try (ModelFolder folder = ModelFolder.open(TestModels.stories260K());
        LlamaRuntime runtime =
            new LlamaRuntime(
                LlamaFamily.from(folder.config()), Weights.of(folder.checkpoint()), true)) {
      KvCache rolled = new KvCache(runtime.family().layers());
      runtime.decode(new int[] {1, 403, 407, 261}, 0, rolled);
      rolled.truncate(2);
      float[] afterRollback = runtime.logitsRows(runtime.decode(new int[] {500}, 2, rolled), 0, 1);
      assertEquals(3, rolled.length());

      KvCache fresh = new KvCache(runtime.family().layers());
      runtime.decode(new int[] {1, 403}, 0, fresh);
      float[] expected = runtime.logitsRows(runtime.decode(new int[] {500}, 2, fresh), 0, 1);
      assertArrayEquals(expected, afterRollback);
    }
  }
}
