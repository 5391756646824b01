package llmc.formats.quant;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import llmc.formats.BadInputException;
import llmc.formats.Checkpoint;
import llmc.formats.DType;
import llmc.formats.QuantizedTensor;
import llmc.formats.SafetensorsWriter;
import llmc.formats.quant.QuantFixtures.Grouping;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class QuantizedCheckpointTest {

  private static final String Q = "model.layers.0.self_attn.q_proj";
  private static final String K = "model.layers.0.self_attn.k_proj";
  private static final String EMBED = "model.embed_tokens.weight";
  private static final String NORM = "model.norm.weight";

  @TempDir Path dir;

  private final QuantizedTensor qProj4 =
      QuantFixtures.random(32, 64, 4, false, Grouping.GROUPS_OF_32, DType.F16, 1, 11);
  private final QuantizedTensor kProj4 =
      QuantFixtures.random(64, 64, 4, false, Grouping.ACT_ORDER, DType.F16, 1, 12);
  private final float[] bias = {
    1.5f, -0.25f, 3, 0.125f, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, -7
  };
  private final float[] embed = {0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f};

  /** An embedding (F32), a norm (BF16) and whatever layers {@code layers} adds. */
  private void writeModel(java.util.function.Consumer<SafetensorsWriter> layers) {
    QuantFixtures.write(
        dir,
        out -> {
          out.writeFloats(EMBED, DType.F32, new long[] {2, 3}, embed);
          out.writeFloats(NORM, DType.BF16, new long[] {4}, new float[] {1, 2, 0.5f, -1});
          layers.accept(out);
        });
  }

  @Test
  void gptqV1PresentsEachLayerWeightEqualToDequantizeAndHidesItsStoredTensors() {
    writeModel(
        out -> {
          GptqLayout.write(out, Q, qProj4, bias, CheckpointFormat.V1, new ArrayList<>());
          GptqLayout.write(out, K, kProj4, null, CheckpointFormat.V1, new ArrayList<>());
        });
    ObjectNode config =
        GptqLayout.quantizationConfig(4, 32, true, false, 0.01, true, false, CheckpointFormat.V1);
    try (Checkpoint in = Checkpoint.open(dir)) {
      QuantizedCheckpoint model = QuantizedCheckpoint.open(in, config);
      assertEquals(
          List.of(EMBED, K + ".weight", Q + ".bias", Q + ".weight", NORM),
          List.copyOf(model.names()));
      assertEquals(List.of(K, Q), List.copyOf(model.quantizedLayers()));
      assertArrayEquals(new long[] {32, 64}, model.shape(Q + ".weight"));
      assertArrayEquals(new long[] {64, 64}, model.shape(K + ".weight"));
      assertArrayEquals(qProj4.dequantize(), model.floats(Q + ".weight"));
      assertArrayEquals(kProj4.dequantize(), model.floats(K + ".weight"));
      assertArrayEquals(bias, model.floats(Q + ".bias"));
      assertArrayEquals(embed, model.floats(EMBED));
      assertArrayEquals(new float[] {1, 2, 0.5f, -1}, model.floats(NORM));
      assertArrayEquals(new long[] {2, 3}, model.shape(EMBED));
      assertFalse(model.contains(Q + ".qweight"));
      assertFalse(model.contains(K + ".g_idx"));
      BadInputException e =
          assertThrows(BadInputException.class, () -> model.floats(Q + ".scales"));
      assertTrue(e.getMessage().contains("stored for a quantized layer"), e.getMessage());
    }
  }

  @Test
  void gptqV2ThreeBitWithZeroPointZeroPresentsDequantizeExactly() {
    QuantizedTensor threeBit =
        QuantFixtures.random(32, 64, 3, false, Grouping.GROUPS_OF_32, DType.F16, 0, 13);
    assertTrue(
        java.util.Arrays.stream(threeBit.zeros()).anyMatch(z -> z == 0),
        "the case needs a zero of 0");
    List<String> warnings = new ArrayList<>();
    writeModel(out -> GptqLayout.write(out, Q, threeBit, null, CheckpointFormat.V2, warnings));
    assertEquals(List.of(), warnings);
    // GPTQModel's quantize_config spelling: "format" instead of "checkpoint_format"
    ObjectNode config =
        GptqLayout.quantizationConfig(3, 32, false, false, 0.01, true, false, CheckpointFormat.V2);
    config.remove("checkpoint_format");
    config.put("format", "gptq_v2");
    try (Checkpoint in = Checkpoint.open(dir)) {
      QuantizedCheckpoint model = QuantizedCheckpoint.open(in, config);
      assertArrayEquals(threeBit.dequantize(), model.floats(Q + ".weight"));
      QuantFixtures.assertSameQuantized(threeBit, model.quantized(Q));
    }
  }

  @Test
  void compressedTensorsPresentsEachLayerWeightEqualToDequantize() {
    QuantizedTensor fiveBit =
        QuantFixtures.random(24, 70, 5, false, Grouping.ACT_ORDER, DType.BF16, 0, 14);
    writeModel(
        out -> {
          CompressedTensorsLayout.write(out, Q, fiveBit, DType.BF16, new ArrayList<>());
          out.writeFloats(Q + ".bias", DType.BF16, new long[] {24}, new float[24]);
        });
    ObjectNode config =
        CompressedTensorsLayout.quantizationConfig(5, 32, false, true, List.of("lm_head"));
    try (Checkpoint in = Checkpoint.open(dir)) {
      QuantizedCheckpoint model = QuantizedCheckpoint.open(in, config);
      assertEquals(List.of(EMBED, Q + ".bias", Q + ".weight", NORM), List.copyOf(model.names()));
      assertArrayEquals(new long[] {24, 70}, model.shape(Q + ".weight"));
      assertArrayEquals(fiveBit.dequantize(), model.floats(Q + ".weight"));
      assertArrayEquals(new float[24], model.floats(Q + ".bias"));
    }
  }

  @Test
  void unknownQuantMethodNamesConfigJsonTheValueAndTheSupportedOnes() {
    writeModel(out -> {});
    ObjectNode awq =
        GptqLayout.quantizationConfig(4, 128, false, true, 0.01, true, false, CheckpointFormat.V1);
    awq.put("quant_method", "awq");
    try (Checkpoint in = Checkpoint.open(dir)) {
      BadInputException e =
          assertThrows(BadInputException.class, () -> QuantizedCheckpoint.open(in, awq));
      assertTrue(
          e.getMessage().contains("config.json")
              && e.getMessage().contains("'awq'")
              && e.getMessage().contains("supported: gptq, compressed-tensors"),
          e.getMessage());

      ObjectNode marlin =
          CompressedTensorsLayout.quantizationConfig(4, 128, true, false, List.of());
      marlin.put("format", "marlin-24");
      e = assertThrows(BadInputException.class, () -> QuantizedCheckpoint.open(in, marlin));
      assertTrue(
          e.getMessage().contains("config.json")
              && e.getMessage().contains("'marlin-24'")
              && e.getMessage().contains("supported: pack-quantized"),
          e.getMessage());

      ObjectNode exllama =
          GptqLayout.quantizationConfig(
              4, 128, false, true, 0.01, true, false, CheckpointFormat.V1);
      exllama.put("checkpoint_format", "marlin");
      e = assertThrows(BadInputException.class, () -> QuantizedCheckpoint.open(in, exllama));
      assertTrue(
          e.getMessage().contains("config.json")
              && e.getMessage().contains("'marlin'")
              && e.getMessage().contains("supported: gptq, gptq_v2"),
          e.getMessage());
    }
  }

  @Test
  void tensorsInconsistentWithTheConfigsBitsOrGroupSizeAreNamedAtOpen() {
    writeModel(
        out -> GptqLayout.write(out, Q, qProj4, null, CheckpointFormat.V1, new ArrayList<>()));
    try (Checkpoint in = Checkpoint.open(dir)) {
      ObjectNode eightBit =
          GptqLayout.quantizationConfig(8, 32, false, true, 0.01, true, false, CheckpointFormat.V1);
      BadInputException e =
          assertThrows(BadInputException.class, () -> QuantizedCheckpoint.open(in, eightBit));
      assertTrue(e.getMessage().contains("'" + Q + ".qweight' has shape [8, 32]"), e.getMessage());
      ObjectNode groupsOf16 =
          GptqLayout.quantizationConfig(4, 16, false, true, 0.01, true, false, CheckpointFormat.V1);
      e = assertThrows(BadInputException.class, () -> QuantizedCheckpoint.open(in, groupsOf16));
      assertTrue(e.getMessage().contains("'" + Q + ".scales' has 2 groups"), e.getMessage());
    }
  }

  @Test
  void withoutQuantizationConfigPlainTensorsPassThroughAndQuantizedOnesAreRefused() {
    writeModel(out -> {});
    try (Checkpoint in = Checkpoint.open(dir)) {
      QuantizedCheckpoint model = QuantizedCheckpoint.open(in, null);
      assertEquals(List.of(EMBED, NORM), List.copyOf(model.names()));
      assertArrayEquals(embed, model.floats(EMBED));
    }
    Path quantized = dir.resolve("quantized");
    quantized.toFile().mkdir();
    QuantFixtures.write(
        quantized,
        out -> GptqLayout.write(out, Q, qProj4, null, CheckpointFormat.V1, new ArrayList<>()));
    try (Checkpoint in = Checkpoint.open(quantized)) {
      BadInputException e =
          assertThrows(BadInputException.class, () -> QuantizedCheckpoint.open(in, null));
      assertTrue(
          e.getMessage().contains("no quantization_config")
              && e.getMessage().contains(Q + ".qweight"),
          e.getMessage());
    }
  }
}
