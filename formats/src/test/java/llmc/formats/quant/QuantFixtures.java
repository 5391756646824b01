package llmc.formats.quant;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.nio.file.Path;
import java.util.Map;
import java.util.Random;
import java.util.function.Consumer;
import llmc.formats.DType;
import llmc.formats.Floats;
import llmc.formats.QuantizedTensor;
import llmc.formats.SafetensorsWriter;

/** Random quantized tensors and checkpoint helpers for the layout tests. */
final class QuantFixtures {

  /** How input columns map to groups. */
  enum Grouping {
    /** 32 columns a group, gIdx = k / 32. */
    GROUPS_OF_32,
    /** One group a row (group size -1). */
    PER_CHANNEL,
    /** Groups of 32 in a random processing order (GPTQ desc_act): gIdx[perm[i]] = i / 32. */
    ACT_ORDER
  }

  private QuantFixtures() {}

  /**
   * A random tensor whose scales are exact in {@code scaleDtype}; asymmetric zeros drawn from
   * {@code [minZero, 2^bits)}.
   */
  static QuantizedTensor random(
      int rows,
      int cols,
      int bits,
      boolean symmetric,
      Grouping grouping,
      DType scaleDtype,
      int minZero,
      long seed) {
    Random random = new Random(seed);
    int groupSize = grouping == Grouping.PER_CHANNEL ? -1 : 32;
    int groups = groupSize < 0 ? 1 : (cols + groupSize - 1) / groupSize;
    int[] gIdx = new int[cols];
    if (grouping != Grouping.PER_CHANNEL) {
      int[] order = new int[cols];
      for (int k = 0; k < cols; k++) {
        order[k] = k;
      }
      if (grouping == Grouping.ACT_ORDER) {
        for (int k = cols - 1; k > 0; k--) {
          int j = random.nextInt(k + 1);
          int t = order[k];
          order[k] = order[j];
          order[j] = t;
        }
      }
      for (int i = 0; i < cols; i++) {
        gIdx[order[i]] = i / groupSize;
      }
    }
    byte[] codes = new byte[rows * cols];
    for (int i = 0; i < codes.length; i++) {
      codes[i] = (byte) random.nextInt(1 << bits);
    }
    float[] scales = new float[groups * rows];
    int[] zeros = new int[groups * rows];
    for (int i = 0; i < scales.length; i++) {
      scales[i] = round(0.001f + (float) Math.abs(random.nextGaussian()) * 0.05f, scaleDtype);
      zeros[i] = symmetric ? 1 << (bits - 1) : minZero + random.nextInt((1 << bits) - minZero);
    }
    return new QuantizedTensor(
        rows, cols, bits, groupSize, symmetric, codes, scales, zeros, gIdx, scaleDtype);
  }

  static float round(float value, DType dtype) {
    return switch (dtype) {
      case F16 -> Floats.f16ToF32(Floats.f32ToF16(value));
      case BF16 -> Floats.bf16ToF32(Floats.f32ToBf16(value));
      default -> value;
    };
  }

  /**
   * A QuantizedTensor with the given codes [N][K] (as ints), unit scales and the given zeros
   * [G][N].
   */
  static QuantizedTensor of(
      int rows, int cols, int bits, int groupSize, boolean symmetric, int[] codes, int[] zeros) {
    byte[] bytes = new byte[codes.length];
    for (int i = 0; i < codes.length; i++) {
      bytes[i] = (byte) codes[i];
    }
    float[] scales = new float[zeros.length];
    java.util.Arrays.fill(scales, 1f);
    int[] gIdx = new int[cols];
    for (int k = 0; k < cols; k++) {
      gIdx[k] = groupSize < 0 ? 0 : k / groupSize;
    }
    return new QuantizedTensor(
        rows, cols, bits, groupSize, symmetric, bytes, scales, zeros, gIdx, DType.F16);
  }

  /** Writes a checkpoint into {@code dir} with whatever {@code body} puts there. */
  static Path write(Path dir, Consumer<SafetensorsWriter> body) {
    try (SafetensorsWriter writer = new SafetensorsWriter(dir, 0, Map.of("format", "pt"))) {
      body.accept(writer);
      writer.finish();
    }
    return dir;
  }

  /** Every field equal, arrays element by element. */
  static void assertSameQuantized(QuantizedTensor expected, QuantizedTensor actual) {
    assertEquals(expected.rows(), actual.rows(), "rows");
    assertEquals(expected.cols(), actual.cols(), "cols");
    assertEquals(expected.bits(), actual.bits(), "bits");
    assertEquals(expected.groupSize(), actual.groupSize(), "groupSize");
    assertEquals(expected.symmetric(), actual.symmetric(), "symmetric");
    assertArrayEquals(expected.codes(), actual.codes(), "codes");
    assertArrayEquals(expected.scales(), actual.scales(), "scales");
    assertArrayEquals(expected.zeros(), actual.zeros(), "zeros");
    assertArrayEquals(expected.gIdx(), actual.gIdx(), "gIdx");
    assertEquals(expected.scaleDtype(), actual.scaleDtype(), "scaleDtype");
  }
}
