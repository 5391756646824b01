package llmc.quantize;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * RTN's vector loops give the bits of the scalar formulas: each code is {@link QuantScheme#code}
 * (ties to even, clamped), including quotients at exact halves, beyond 2^22 and at -0.0, and a
 * group's range is the scalar min and max, -0.0 and NaN included.
 */
class RtnVectorTest {

  @Test
  void codesAreTheScalarFormulaWeightByWeight() {
    Random random = new Random(23);
    for (int trial = 0; trial < 5_000; trial++) {
      int n = 1 + random.nextInt(70);
      float[] w = new float[n];
      int kind = trial % 5;
      for (int i = 0; i < n; i++) {
        w[i] =
            switch (kind) {
              case 0 -> (float) random.nextGaussian();
              case 1 -> (random.nextInt(41) - 20) / 2f; // quotients k + 1/2 with s = 1: ties
              case 2 -> (float) (random.nextGaussian() * 1e7); // quotients beyond 2^22
              case 3 -> random.nextBoolean() ? 0f : -0f;
              default -> (float) (random.nextGaussian() * Math.pow(10, random.nextInt(13) - 6));
            };
      }
      float s = kind == 1 ? 1f : (float) Math.abs(random.nextGaussian() * 0.1) + 1e-6f;
      int bits = 2 + random.nextInt(7);
      int maxq = (1 << bits) - 1;
      int z = random.nextInt(maxq + 1);
      float m = kind == 4 ? (float) random.nextGaussian() : 0f;
      QuantScheme scheme = new QuantScheme(bits, -1, false);
      byte[] codes = new byte[n];
      Rtn.codes(w, 0, n, s, z, m, scheme, codes);
      for (int i = 0; i < n; i++) {
        assertEquals(
            (byte) scheme.code(w[i], s, z, m), codes[i], "trial " + trial + ", weight " + w[i]);
      }
    }
  }

  @Test
  void rangeIsTheScalarMinAndMax() {
    Random random = new Random(29);
    for (int trial = 0; trial < 2_000; trial++) {
      int n = 1 + random.nextInt(70);
      float[] w = new float[n];
      for (int i = 0; i < n; i++) {
        w[i] =
            random.nextInt(4) == 0
                ? (random.nextBoolean() ? 0f : -0f)
                : (float) random.nextGaussian();
      }
      if (trial % 50 == 0) {
        w[random.nextInt(n)] = Float.NaN;
      }
      float min = Float.POSITIVE_INFINITY;
      float max = Float.NEGATIVE_INFINITY;
      for (float v : w) {
        min = Math.min(min, v);
        max = Math.max(max, v);
      }
      float[] range = Rtn.range(w, 0, n);
      assertArrayEquals(
          new int[] {Float.floatToRawIntBits(min), Float.floatToRawIntBits(max)},
          new int[] {Float.floatToRawIntBits(range[0]), Float.floatToRawIntBits(range[1])},
          "trial " + trial);
    }
  }
}
