package llmc.formats.quant;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;
import llmc.formats.BadInputException;
import llmc.formats.Checkpoint;
import llmc.formats.DType;
import llmc.formats.Floats;
import llmc.formats.QuantizedTensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * compressed-tensors' int-quantized (W8A8) and float-quantized (FP8) layouts: the bytes written
 * (int8 {@code q = code - 128}; the float8 bytes), the scales as {@code [N, 1]}, an exact read-back
 * through {@link QuantizedCheckpoint} with the activation scheme of the config, the config's fields
 * as compressed-tensors' QuantizationConfig / QuantizationArgs name them, and the runtime's
 * per-token activation quantization.
 */
class ByteQuantizedLayoutTest {
  private static final String P = "model.layers.0.mlp.down_proj";
  @TempDir Path dir;

  private static QuantizedTensor int8(int rows, int cols, long seed) {
    Random random = new Random(seed);
    byte[] codes = new byte[rows * cols];
    random.nextBytes(codes);
    float[] scales = new float[rows];
    for (int i = 0; i < rows; i++) {
      scales[i] = QuantFixtures.round(0.001f + random.nextFloat() * 0.01f, DType.F16);
    }
    int[] zeros = new int[rows];
    java.util.Arrays.fill(zeros, 128);
    return new QuantizedTensor(
        rows, cols, 8, -1, true, codes, scales, zeros, new int[cols], DType.F16);
  }

  private static QuantizedTensor fp8(int rows, int cols, long seed) {
    Random random = new Random(seed);
    byte[] codes = new byte[rows * cols];
    for (int i = 0; i < codes.length; i++) {
      int b = random.nextInt(256);
      codes[i] = (byte) ((b & 0x7F) == 0x7F ? b - 1 : b); // no NaN
    }
    float[] scales = new float[rows];
    for (int i = 0; i < rows; i++) {
      scales[i] = QuantFixtures.round(0.001f + random.nextFloat() * 0.01f, DType.BF16);
    }
    return QuantizedTensor.e4m3(rows, cols, -1, codes, scales, new int[cols], DType.BF16);
  }

  @Test
  void int8IsWrittenAsSignedBytesAndReadBackExactly() {
    QuantizedTensor q = int8(6, 40, 1);
    ObjectNode config =
        ByteQuantizedLayout.quantizationConfig(
            false, -1, new InputQuantization(InputQuantization.Type.INT8), List.of("lm_head"));
    QuantFixtures.write(dir, out -> ByteQuantizedLayout.write(out, P, q, DType.F16));
    try (Checkpoint in = Checkpoint.open(dir)) {
      assertEquals(DType.I8, in.info(P + ".weight").dtype());
      assertArrayEquals(new long[] {6, 40}, in.info(P + ".weight").shape());
      assertArrayEquals(new long[] {6, 1}, in.info(P + ".weight_scale").shape());
      byte[] stored = in.bytes(P + ".weight").toArray(ValueLayout.JAVA_BYTE);
      for (int i = 0; i < stored.length; i++) {
        assertEquals(Byte.toUnsignedInt(q.codes()[i]) - 128, stored[i]);
      }
      QuantizedCheckpoint model = QuantizedCheckpoint.open(in, config);
      QuantFixtures.assertSameQuantized(q, model.quantized(P));
      assertArrayEquals(q.dequantize(), model.floats(P + ".weight"));
      assertEquals(
          new InputQuantization(InputQuantization.Type.INT8),
          model.inputQuantization(P + ".weight"));
      assertArrayEquals(new long[] {6, 40}, model.shape(P + ".weight"));
    }
  }

  @Test
  void fp8IsWrittenAsItsBytesAndReadBackExactly() {
    QuantizedTensor q = fp8(5, 24, 2);
    ObjectNode config = ByteQuantizedLayout.quantizationConfig(true, -1, null, List.of());
    QuantFixtures.write(dir, out -> ByteQuantizedLayout.write(out, P, q, DType.BF16));
    try (Checkpoint in = Checkpoint.open(dir)) {
      assertEquals(DType.F8_E4M3, in.info(P + ".weight").dtype());
      assertArrayEquals(q.codes(), in.bytes(P + ".weight").toArray(ValueLayout.JAVA_BYTE));
      QuantizedCheckpoint model = QuantizedCheckpoint.open(in, config);
      QuantizedTensor back = model.quantized(P);
      assertTrue(back.isFloat8());
      QuantFixtures.assertSameQuantized(q, back);
      float[] w = model.floats(P + ".weight");
      for (int n = 0; n < 5; n++) {
        for (int k = 0; k < 24; k++) {
          assertEquals(q.scale(0, n) * Floats.f8e4m3ToF32(q.codes()[n * 24 + k]), w[n * 24 + k]);
        }
      }
      assertNull(model.inputQuantization(P + ".weight"), "W8A16: weight-only");
    }
  }

  @Test
  void theConfigNamesCompressedTensorsFields() {
    JsonNode c =
        ByteQuantizedLayout.quantizationConfig(
            true, -1, new InputQuantization(InputQuantization.Type.FP8_E4M3), List.of("lm_head"));
    assertEquals("compressed-tensors", c.get("quant_method").asText());
    assertEquals("float-quantized", c.get("format").asText());
    assertEquals("compressed", c.get("quantization_status").asText());
    assertEquals("lm_head", c.get("ignore").get(0).asText());
    JsonNode g = c.get("config_groups").get("group_0");
    assertEquals("Linear", g.get("targets").get(0).asText());
    JsonNode w = g.get("weights");
    assertEquals(8, w.get("num_bits").asInt());
    assertEquals("float", w.get("type").asText());
    assertTrue(w.get("symmetric").asBoolean());
    assertEquals("channel", w.get("strategy").asText());
    assertTrue(w.get("group_size").isNull());
    assertTrue(!w.get("dynamic").asBoolean());
    JsonNode a = g.get("input_activations");
    assertEquals(8, a.get("num_bits").asInt());
    assertEquals("float", a.get("type").asText());
    assertEquals("token", a.get("strategy").asText());
    assertTrue(a.get("dynamic").asBoolean());
    assertTrue(a.get("symmetric").asBoolean());
    assertEquals(
        "int",
        ByteQuantizedLayout.quantizationConfig(false, -1, null, List.of())
            .get("config_groups")
            .get("group_0")
            .get("weights")
            .get("type")
            .asText());
  }

  @Test
  void staticOrPerTensorActivationsAreRefused() {
    ObjectNode config =
        ByteQuantizedLayout.quantizationConfig(
            false, -1, new InputQuantization(InputQuantization.Type.INT8), List.of());
    ((ObjectNode) config.get("config_groups").get("group_0").get("input_activations"))
        .put("dynamic", false);
    QuantizedTensor q = int8(2, 8, 3);
    QuantFixtures.write(dir, out -> ByteQuantizedLayout.write(out, P, q, DType.F16));
    try (Checkpoint in = Checkpoint.open(dir)) {
      QuantizedCheckpoint model = QuantizedCheckpoint.open(in, config);
      BadInputException e =
          assertThrows(BadInputException.class, () -> model.inputQuantization(P + ".weight"));
      assertTrue(e.getMessage().contains("dynamic"), e.getMessage());
    }
  }

  @Test
  void int8TokensAreRoundedOnTheirOwnScale() {
    float[] x = {1f, -0.5f, 0.3f, 127f / 100, 0f, 0f, 0f, 0f, -2f, 1f, 0.004f, 0.5f};
    float[] original = x.clone();
    new InputQuantization(InputQuantization.Type.INT8).apply(x, 3, 4);
    for (int r = 0; r < 3; r++) {
      float max = 0;
      for (int j = 0; j < 4; j++) {
        max = Math.max(max, Math.abs(original[r * 4 + j]));
      }
      for (int j = 0; j < 4; j++) {
        float s = max / 127f;
        float expected =
            max == 0 ? 0 : (float) Math.clamp(Math.rint(original[r * 4 + j] / s), -128, 127) * s;
        assertEquals(expected, x[r * 4 + j], "row " + r + " col " + j);
      }
    }
    assertEquals(-2f, x[8], 1e-6f, "the largest magnitude is kept");
    assertEquals(0f, x[10], "0.004 is below half a step of 2/127");
  }

  @Test
  void fp8TokensAreRoundedToE4m3OnTheirOwnScale() {
    float[] x = {448f, 1f, 300f, -3f, 1e-3f, 0f};
    new InputQuantization(InputQuantization.Type.FP8_E4M3).apply(x, 1, 6);
    assertEquals(448f, x[0], "scale 1: the maximum is E4M3's largest value");
    assertEquals(1f, x[1]);
    assertEquals(288f, x[2], "300 lies between 288 and 320: nearer 288");
    assertEquals(-3f, x[3]);
    assertEquals(Floats.f8e4m3ToF32(Floats.f32ToF8e4m3(1e-3f)), x[4]);
    assertEquals(0f, x[5]);
  }
}
