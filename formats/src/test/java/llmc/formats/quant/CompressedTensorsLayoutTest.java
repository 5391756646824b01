package llmc.formats.quant;

import static llmc.formats.quant.QuantFixtures.assertSameQuantized;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import llmc.formats.BadInputException;
import llmc.formats.Checkpoint;
import llmc.formats.DType;
import llmc.formats.QuantizedTensor;
import llmc.formats.quant.QuantFixtures.Grouping;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Expected words follow compressed-tensors' {@code pack_to_int32}
 * (src/compressed_tensors/compressors/quantized_compressors/pack_quantized.py): {@code 32 // b}
 * whole codes a word, least significant first, zero padded; zero points packed the same way along N
 * ({@code packed_dim=0}).
 */
class CompressedTensorsLayoutTest {

  private static final String P = "model.layers.3.mlp.down_proj";

  @TempDir Path dir;

  private static int[] ints(Checkpoint in, String name) {
    return in.fileOf(name).ints(name);
  }

  private static ObjectNode config(QuantizedTensor q) {
    return CompressedTensorsLayout.quantizationConfig(
        q.bits(), q.groupSize(), q.symmetric(), !q.hasTrivialGroupIndex(), List.of("lm_head"));
  }

  @Test
  void symmetricFourBitWeightPackedIsTheTransposeOfGptqQweight() {
    QuantizedTensor q =
        QuantFixtures.random(16, 64, 4, true, Grouping.GROUPS_OF_32, DType.F16, 0, 7);
    Path gptq = dir.resolve("gptq");
    Path compressed = dir.resolve("ct");
    gptq.toFile().mkdir();
    compressed.toFile().mkdir();
    QuantFixtures.write(
        gptq, out -> GptqLayout.write(out, P, q, null, CheckpointFormat.V1, new ArrayList<>()));
    QuantFixtures.write(
        compressed, out -> CompressedTensorsLayout.write(out, P, q, DType.F16, new ArrayList<>()));
    try (Checkpoint a = Checkpoint.open(gptq);
        Checkpoint b = Checkpoint.open(compressed)) {
      assertArrayEquals(new long[] {8, 16}, a.info(P + ".qweight").shape()); // [K/8, N]
      assertArrayEquals(new long[] {16, 8}, b.info(P + ".weight_packed").shape()); // [N, K/8]
      int[] qweight = ints(a, P + ".qweight");
      int[] packed = ints(b, P + ".weight_packed");
      for (int n = 0; n < 16; n++) {
        for (int w = 0; w < 8; w++) {
          assertEquals(qweight[w * 16 + n], packed[n * 8 + w], "n=" + n + " w=" + w);
        }
      }
    }
  }

  @Test
  void threeBitPacksTenWholeCodesAWordWithTheTopTwoBitsZero() {
    // codes k % 8 along K = 13: word 0 = octal 1076543210 (codes 0..9, bits 30, 31 unused, unlike
    // GPTQ's
    // 0x88FAC688 where code 10 straddles); word 1 = codes 10, 11, 12 = 2, 3, 4 = octal 432, zero
    // padded
    int[] codes = new int[13];
    for (int k = 0; k < 13; k++) {
      codes[k] = k % 8;
    }
    QuantizedTensor q = QuantFixtures.of(1, 13, 3, -1, true, codes, new int[] {4});
    QuantFixtures.write(
        dir, out -> CompressedTensorsLayout.write(out, P, q, DType.F16, new ArrayList<>()));
    try (Checkpoint in = Checkpoint.open(dir)) {
      assertEquals(0x08FAC688, 01076543210);
      assertArrayEquals(new int[] {0x08FAC688, 0432}, ints(in, P + ".weight_packed"));
      assertArrayEquals(new long[] {1, 2}, in.info(P + ".weight_packed").shape());
    }
  }

  @Test
  void asymmetricZeroPointsArePackedAlongNIntoCeilNOverFByG() {
    // 4 bits, N = 8, G = 2: zeros[0][n] = n, zeros[1][n] = 15 - n; one word per group along N
    int[] zeros = new int[16];
    for (int n = 0; n < 8; n++) {
      zeros[n] = n;
      zeros[8 + n] = 15 - n;
    }
    QuantizedTensor q = QuantFixtures.of(8, 64, 4, 32, false, new int[8 * 64], zeros);
    QuantFixtures.write(
        dir, out -> CompressedTensorsLayout.write(out, P, q, DType.BF16, new ArrayList<>()));
    try (Checkpoint in = Checkpoint.open(dir)) {
      assertEquals(DType.I32, in.info(P + ".weight_zero_point").dtype());
      assertArrayEquals(new long[] {1, 2}, in.info(P + ".weight_zero_point").shape());
      assertArrayEquals(new int[] {0x76543210, 0x89ABCDEF}, ints(in, P + ".weight_zero_point"));
      assertEquals(DType.BF16, in.info(P + ".weight_scale").dtype());
      assertArrayEquals(new long[] {8, 2}, in.info(P + ".weight_scale").shape());
    }
  }

  @Test
  void weightShapeIsI64HoldingNThenK() {
    QuantizedTensor q =
        QuantFixtures.random(24, 70, 5, true, Grouping.GROUPS_OF_32, DType.F32, 0, 8);
    QuantFixtures.write(
        dir, out -> CompressedTensorsLayout.write(out, P, q, DType.F32, new ArrayList<>()));
    try (Checkpoint in = Checkpoint.open(dir)) {
      assertEquals(DType.I64, in.info(P + ".weight_shape").dtype());
      assertArrayEquals(new long[] {2}, in.info(P + ".weight_shape").shape());
      assertArrayEquals(new int[] {24, 70}, ints(in, P + ".weight_shape"));
      assertArrayEquals(new long[] {24, 12}, in.info(P + ".weight_packed").shape()); // ceil(70 / 6)
      assertFalse(in.contains(P + ".weight_zero_point"), "symmetric: no zero points");
      assertFalse(in.contains(P + ".weight_g_idx"), "no act-order: no g_idx");
    }
  }

  static Stream<Arguments> roundTripCases() {
    List<Arguments> cases = new ArrayList<>();
    DType[] scaleDtypes = {DType.F16, DType.BF16, DType.F32};
    int i = 0;
    for (int bits = 2; bits <= 8; bits++) {
      for (boolean symmetric : new boolean[] {true, false}) {
        for (Grouping grouping : Grouping.values()) {
          cases.add(Arguments.of(bits, symmetric, grouping, scaleDtypes[i++ % 3]));
        }
      }
    }
    return cases.stream();
  }

  @ParameterizedTest(name = "{0}-bit symmetric={1} {2} scales {3}")
  @MethodSource("roundTripCases")
  void writeThenReadGivesTheSameQuantizedTensor(
      int bits, boolean symmetric, Grouping grouping, DType scaleDtype) {
    // N = 24 and K = 70 leave partial words (and a partial last group) for most widths
    QuantizedTensor q =
        QuantFixtures.random(
            24, 70, bits, symmetric, grouping, scaleDtype, 0, bits * 17L + grouping.ordinal());
    List<String> warnings = new ArrayList<>();
    QuantFixtures.write(dir, out -> CompressedTensorsLayout.write(out, P, q, scaleDtype, warnings));
    assertEquals(List.of(), warnings);
    try (Checkpoint in = Checkpoint.open(dir)) {
      assertSameQuantized(q, CompressedTensorsLayout.read(in, P, config(q)));
      assertEquals(!symmetric, in.contains(P + ".weight_zero_point"));
      assertEquals(grouping == Grouping.ACT_ORDER, in.contains(P + ".weight_g_idx"));
      assertEquals(scaleDtype, in.info(P + ".weight_scale").dtype());
    }
  }

  @Test
  void readRefusesPackedWeightsOfAnotherBitWidthNamingTheTensor() {
    QuantizedTensor q =
        QuantFixtures.random(16, 64, 8, true, Grouping.GROUPS_OF_32, DType.F16, 0, 9);
    QuantFixtures.write(
        dir, out -> CompressedTensorsLayout.write(out, P, q, DType.F16, new ArrayList<>()));
    try (Checkpoint in = Checkpoint.open(dir)) {
      ObjectNode fourBit =
          CompressedTensorsLayout.quantizationConfig(4, 32, true, false, List.of());
      BadInputException e =
          assertThrows(BadInputException.class, () -> CompressedTensorsLayout.read(in, P, fourBit));
      assertTrue(
          e.getMessage().contains("'" + P + ".weight_packed' has shape [16, 16]")
              && e.getMessage().contains("needs [16, 8]"),
          e.getMessage());
      ObjectNode groupsOf128 =
          CompressedTensorsLayout.quantizationConfig(8, 128, true, false, List.of());
      e =
          assertThrows(
              BadInputException.class, () -> CompressedTensorsLayout.read(in, P, groupsOf128));
      assertTrue(e.getMessage().contains("'" + P + ".weight_scale' has 2 groups"), e.getMessage());
    }
  }

  @Test
  void symmetricTensorWithOffCentreZeroIsRefusedBecauseNoZeroPointsAreStored() {
    QuantizedTensor q =
        QuantFixtures.of(8, 32, 4, -1, true, new int[8 * 32], new int[] {8, 8, 8, 7, 8, 8, 8, 8});
    IllegalArgumentException e =
        assertThrows(
            IllegalArgumentException.class,
            () ->
                QuantFixtures.write(
                    dir,
                    out -> CompressedTensorsLayout.write(out, P, q, DType.F16, new ArrayList<>())));
    assertTrue(e.getMessage().contains("zero point is 7 instead of 8"), e.getMessage());
  }

  @Test
  void quantizationConfigUsesCompressedTensorsFieldNames() {
    assertEquals(
        "{\"quant_method\":\"compressed-tensors\",\"format\":\"pack-quantized\","
            + "\"quantization_status\":\"compressed\",\"config_groups\":{\"group_0\":{\"targets\":[\"Linear\"],"
            + "\"weights\":{\"num_bits\":4,\"type\":\"int\",\"symmetric\":true,\"strategy\":\"group\","
            + "\"group_size\":128,\"actorder\":\"group\",\"dynamic\":false},\"input_activations\":null,"
            + "\"output_activations\":null}},\"ignore\":[\"lm_head\"]}",
        CompressedTensorsLayout.quantizationConfig(4, 128, true, true, List.of("lm_head"))
            .toString());
    ObjectNode channel = CompressedTensorsLayout.quantizationConfig(6, -1, false, true, List.of());
    ObjectNode weights = (ObjectNode) channel.get("config_groups").get("group_0").get("weights");
    assertEquals("channel", weights.get("strategy").asText());
    assertTrue(weights.get("group_size").isNull());
    assertTrue(
        weights.get("actorder").isNull(),
        "compressed-tensors refuses actorder group without groups");
  }

  @Test
  void configGroupTargetsPickTheLayersBitWidthExactNameOverRegexOverLinear() {
    ObjectNode config = CompressedTensorsLayout.quantizationConfig(4, 128, true, false, List.of());
    ObjectNode groups = (ObjectNode) config.get("config_groups");
    ObjectNode regex = groups.putObject("group_1");
    regex.putArray("targets").add("re:.*mlp\\.down_proj$");
    regex
        .putObject("weights")
        .put("num_bits", 8)
        .put("type", "int")
        .put("symmetric", false)
        .put("strategy", "channel");
    assertEquals(
        new CompressedTensorsLayout.WeightArgs(8, -1, false, false),
        CompressedTensorsLayout.weightArgs(config, P, "config.json"));
    assertEquals(
        new CompressedTensorsLayout.WeightArgs(4, 128, true, false),
        CompressedTensorsLayout.weightArgs(
            config, "model.layers.3.self_attn.o_proj", "config.json"));
  }
}
