package llmc.formats.quant;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.Random;
import llmc.formats.BadInputException;
import llmc.formats.Floats;
import org.junit.jupiter.api.Test;

/**
 * The KV cache's rounding: static FP8 is E4M3 of {@code x / scale}, saturating; dynamic int8 has a
 * scale per token and head; the schemes' configs parse back, other schemes are refused.
 */
class KvCacheQuantizationTest {

  @Test
  void fp8UsesTheLayersScalesAndSaturates() {
    float[] k = {0.5f, -1f, 100f, 0.0001f};
    float[] v = {0.25f, 3f, -0.1f, 0f};
    new KvCacheQuantization(KvCacheQuantization.Type.FP8_STATIC, 0.01f, 0.02f).apply(k, v, 1, 2, 2);
    float[] ks = {0.5f, -1f, 100f, 0.0001f};
    for (int i = 0; i < 4; i++) {
      float expected =
          Math.min(Floats.f8e4m3ToF32(Floats.f32ToF8e4m3(ks[i] / 0.01f)), 448f) * 0.01f;
      assertEquals(expected, k[i], "key " + i);
    }
    assertEquals(4.48f, k[2], 1e-6f, "100 / 0.01 saturates at 448");
    assertEquals(144 * 0.02f, v[1], 1e-6f, "3 / 0.02 = 150 lies between 144 and 160: 144");
  }

  @Test
  void int8HasAScalePerTokenAndHead() {
    Random random = new Random(4);
    int rows = 3;
    int heads = 2;
    int d = 4;
    float[] k = new float[rows * heads * d];
    for (int i = 0; i < k.length; i++) {
      k[i] = (float) random.nextGaussian() * (i < d ? 100 : 1); // token 0, head 0 is large
    }
    float[] v = k.clone();
    float[] before = k.clone();
    KvCacheQuantization.int8Dynamic().apply(k, v, rows, heads, d);
    for (int run = 0; run < rows * heads; run++) {
      float max = 0;
      for (int j = 0; j < d; j++) {
        max = Math.max(max, Math.abs(before[run * d + j]));
      }
      float s = max / 127f;
      for (int j = 0; j < d; j++) {
        int i = run * d + j;
        assertEquals((float) Math.rint(before[i] / s) * s, k[i], "run " + run);
      }
    }
    assertEquals(k[d], v[d]);
  }

  @Test
  void schemesParseBackAndOthersAreRefused() {
    for (KvCacheQuantization.Type t : KvCacheQuantization.Type.values()) {
      assertEquals(t, KvCacheQuantization.parse(KvCacheQuantization.config(t), "config.json"));
    }
    assertNull(KvCacheQuantization.parse(null, "config.json"));
    ObjectNode perChannel = KvCacheQuantization.config(KvCacheQuantization.Type.FP8_STATIC);
    perChannel.put("strategy", "channel");
    assertThrows(BadInputException.class, () -> KvCacheQuantization.parse(perChannel, "x"));
  }
}
