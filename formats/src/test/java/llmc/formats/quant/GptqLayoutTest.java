package llmc.formats.quant;

import static llmc.formats.quant.QuantFixtures.assertSameQuantized;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
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
 * Expected words come from AutoGPTQ's {@code QuantLinear.pack}
 * (auto_gptq/nn_modules/qlinear/qlinear_cuda_old.py), transcribed to numpy and run on the same
 * codes, and are derived by hand in the comments.
 */
class GptqLayoutTest {

  private static final String P = "model.layers.0.self_attn.q_proj";

  @TempDir Path dir;

  /**
   * One output column (N = f so that qzeros fill a word) whose codes along k are {@code column}.
   */
  private int[] qweightOfColumn(int bits, int[] column, int n) {
    int k = column.length;
    int[] codes = new int[n * k];
    for (int row = 0; row < n; row++) {
      System.arraycopy(column, 0, codes, row * k, k);
    }
    int[] zeros = new int[n];
    Arrays.fill(zeros, 1 << (bits - 1));
    QuantizedTensor q = QuantFixtures.of(n, k, bits, -1, true, codes, zeros);
    QuantFixtures.write(
        dir, out -> GptqLayout.write(out, P, q, null, CheckpointFormat.V1, new ArrayList<>()));
    try (Checkpoint in = Checkpoint.open(dir)) {
      assertArrayEquals(new long[] {(long) k * bits / 32, n}, in.info(P + ".qweight").shape());
      int[] words = in.fileOf(P + ".qweight").ints(P + ".qweight"); // [K*b/32][N]
      int[] firstColumn = new int[k * bits / 32];
      for (int w = 0; w < firstColumn.length; w++) {
        firstColumn[w] = words[w * n];
      }
      return firstColumn;
    }
  }

  private static int[] repeat(int[] pattern, int times) {
    int[] out = new int[pattern.length * times];
    for (int i = 0; i < out.length; i++) {
      out[i] = pattern[i % pattern.length];
    }
    return out;
  }

  @Test
  void fourBitQweightWordOfCodes0To7AlongKIs0x76543210() {
    // code k at bits 4k upward: nibbles 7,6,...,0 read from the top
    assertArrayEquals(
        new int[] {0x76543210}, qweightOfColumn(4, new int[] {0, 1, 2, 3, 4, 5, 6, 7}, 8));
  }

  @Test
  void twoBitQweightWordOfCodes0To3RepeatedIs0xE4E4E4E4() {
    // byte = codes 0,1,2,3 at bits 0,2,4,6 = 0b11_10_01_00 = 0xE4
    assertArrayEquals(
        new int[] {0xE4E4E4E4}, qweightOfColumn(2, repeat(new int[] {0, 1, 2, 3}, 4), 16));
  }

  @Test
  void eightBitQweightWordHoldsFourCodesLeastSignificantFirst() {
    assertArrayEquals(
        new int[] {0xFFAB3412}, qweightOfColumn(8, new int[] {0x12, 0x34, 0xAB, 0xFF}, 4));
  }

  @Test
  void threeBitColumnOf32CodesStraddlesIntoExactlyThreeWords() {
    // Only codes 10 and 21 set (0b111): code 10 is bits 30..32 of the stream = bits 30, 31 of word
    // 0 and
    // bit 0 of word 1; code 21 is bits 63..65 = bit 31 of word 1 and bits 0, 1 of word 2.
    int[] straddlers = new int[32];
    straddlers[10] = 7;
    straddlers[21] = 7;
    assertArrayEquals(
        new int[] {0xC0000000, 0x80000001, 0x00000003}, qweightOfColumn(3, straddlers, 32));

    // Codes k % 8 (octal digits 0..7, 0..7, ...): word 0 = octal 1076543210 (codes 0..9) | (2 & 3)
    // << 30;
    // word 1 = (2 >> 2) | octal 4321076543 << 1 | (5 & 1) << 31; word 2 = (5 >> 1) | octal
    // 7654321076 << 2.
    int[] octal = new int[32];
    for (int k = 0; k < 32; k++) {
      octal[k] = k % 8;
    }
    assertEquals(0x88FAC688, 01076543210 | 2 << 30);
    assertEquals(0xC688FAC6, 04321076543 << 1 | 1 << 31);
    assertEquals(0xFAC688FA, 2 | 07654321076 << 2);
    assertArrayEquals(
        new int[] {0x88FAC688, 0xC688FAC6, 0xFAC688FA}, qweightOfColumn(3, octal, 32));
  }

  @Test
  void symmetricFourBitV1QzerosAre0x77777777InEveryWord() {
    QuantizedTensor q =
        QuantFixtures.random(64, 128, 4, true, Grouping.GROUPS_OF_32, DType.F16, 0, 1);
    List<String> warnings = new ArrayList<>();
    QuantFixtures.write(
        dir, out -> GptqLayout.write(out, P, q, null, CheckpointFormat.V1, warnings));
    try (Checkpoint in = Checkpoint.open(dir)) {
      assertArrayEquals(new long[] {4, 8}, in.info(P + ".qzeros").shape()); // [G, N/8]
      int[] qzeros = in.fileOf(P + ".qzeros").ints(P + ".qzeros");
      assertEquals(32, qzeros.length);
      for (int word : qzeros) {
        assertEquals(0x77777777, word);
      }
    }
    assertEquals(List.of(), warnings);
  }

  @Test
  void v2StoresZeroItselfSoSymmetricFourBitQzerosAre0x88888888() {
    QuantizedTensor q = QuantFixtures.random(8, 32, 4, true, Grouping.PER_CHANNEL, DType.F16, 0, 2);
    QuantFixtures.write(
        dir, out -> GptqLayout.write(out, P, q, null, CheckpointFormat.V2, new ArrayList<>()));
    try (Checkpoint in = Checkpoint.open(dir)) {
      assertArrayEquals(new int[] {0x88888888}, in.fileOf(P + ".qzeros").ints(P + ".qzeros"));
    }
  }

  static Stream<Arguments> roundTripCases() {
    List<Arguments> cases = new ArrayList<>();
    for (CheckpointFormat format : CheckpointFormat.values()) {
      for (int bits : GptqLayout.BITS) {
        for (boolean symmetric : new boolean[] {true, false}) {
          for (Grouping grouping : Grouping.values()) {
            cases.add(Arguments.of(format, bits, symmetric, grouping));
          }
        }
      }
    }
    return cases.stream();
  }

  @ParameterizedTest(name = "{0} {1}-bit symmetric={2} {3}")
  @MethodSource("roundTripCases")
  void writeThenReadGivesTheSameQuantizedTensor(
      CheckpointFormat format, int bits, boolean symmetric, Grouping grouping) {
    // v1 cannot hold an asymmetric zero of 0 (see the warning test); v2 can
    int minZero = format == CheckpointFormat.V1 ? 1 : 0;
    QuantizedTensor q =
        QuantFixtures.random(
            64, 96, bits, symmetric, grouping, DType.F16, minZero, bits * 31L + grouping.ordinal());
    float[] bias = new float[64];
    for (int n = 0; n < bias.length; n++) {
      bias[n] = QuantFixtures.round(n * 0.25f - 3, DType.F16);
    }
    List<String> warnings = new ArrayList<>();
    QuantFixtures.write(dir, out -> GptqLayout.write(out, P, q, bias, format, warnings));
    try (Checkpoint in = Checkpoint.open(dir)) {
      assertSameQuantized(q, GptqLayout.read(in, P, bits, q.groupSize(), symmetric, format));
      assertArrayEquals(bias, in.floats(P + ".bias"));
      assertEquals(DType.F16, in.info(P + ".scales").dtype());
      assertArrayEquals(new long[] {96}, in.info(P + ".g_idx").shape());
    }
    assertEquals(List.of(), warnings);
  }

  @Test
  void v1WarnsNamingTheTensorAndCountWhenAnAsymmetricZeroIsZero() {
    int[] zeros = new int[8];
    Arrays.fill(zeros, 5);
    zeros[1] = 0;
    zeros[6] = 0;
    QuantizedTensor q = QuantFixtures.of(8, 32, 4, -1, false, new int[8 * 32], zeros);
    List<String> warnings = new ArrayList<>();
    QuantFixtures.write(
        dir, out -> GptqLayout.write(out, P, q, null, CheckpointFormat.V1, warnings));
    assertEquals(1, warnings.size());
    assertTrue(warnings.getFirst().contains(P + ".qzeros"), warnings.getFirst());
    assertTrue(warnings.getFirst().contains("2 zero point(s) are 0"), warnings.getFirst());
    try (Checkpoint in = Checkpoint.open(dir)) {
      // z - 1 = -1 wraps to 0xF in its nibble, as AutoGPTQ writes it; readers add 1 and use 16
      assertArrayEquals(new int[] {0x4F44_44F4}, in.fileOf(P + ".qzeros").ints(P + ".qzeros"));
      int[] read = GptqLayout.read(in, P, 4, -1, false, CheckpointFormat.V1).zeros();
      assertArrayEquals(new int[] {5, 16, 5, 5, 5, 5, 16, 5}, read);
    }
  }

  @Test
  void v2RoundTripsAnAsymmetricZeroOfZeroWithoutWarning() {
    int[] zeros = {0, 15, 0, 3, 0, 7, 1, 0};
    QuantizedTensor q = QuantFixtures.of(8, 32, 4, -1, false, new int[8 * 32], zeros);
    List<String> warnings = new ArrayList<>();
    QuantFixtures.write(
        dir, out -> GptqLayout.write(out, P, q, null, CheckpointFormat.V2, warnings));
    assertEquals(List.of(), warnings);
    try (Checkpoint in = Checkpoint.open(dir)) {
      // nibble n holds zero n: 0, 15, 0, 3, 0, 7, 1, 0 from the bottom
      assertArrayEquals(new int[] {0x017030F0}, in.fileOf(P + ".qzeros").ints(P + ".qzeros"));
      assertSameQuantized(q, GptqLayout.read(in, P, 4, -1, false, CheckpointFormat.V2));
    }
  }

  @Test
  void fiveSixAndSevenBitsAreRefusedNamingCompressedTensors() {
    for (int bits : new int[] {5, 6, 7}) {
      QuantizedTensor q =
          QuantFixtures.random(32, 32, bits, true, Grouping.PER_CHANNEL, DType.F16, 0, bits);
      IllegalArgumentException e =
          assertThrows(
              IllegalArgumentException.class,
              () ->
                  QuantFixtures.write(
                      dir,
                      out ->
                          GptqLayout.write(
                              out, P, q, null, CheckpointFormat.V1, new ArrayList<>())));
      assertTrue(e.getMessage().contains("2, 3, 4 or 8 bits, not " + bits), e.getMessage());
      assertTrue(e.getMessage().contains("compressed-tensors"), e.getMessage());
    }
  }

  @Test
  void dimensionsMustFillWholeWords16For2Bits32For3Bits8For4Bits4For8Bits() {
    assertEquals(
        List.of(16, 32, 8, 4),
        GptqLayout.BITS.stream().map(GptqLayout::dimensionMultiple).toList());
    QuantizedTensor threeBitK48 =
        QuantFixtures.random(32, 48, 3, true, Grouping.GROUPS_OF_32, DType.F16, 0, 3);
    IllegalArgumentException e =
        assertThrows(
            IllegalArgumentException.class,
            () ->
                QuantFixtures.write(
                    dir,
                    out ->
                        GptqLayout.write(
                            out, P, threeBitK48, null, CheckpointFormat.V1, new ArrayList<>())));
    assertTrue(
        e.getMessage().contains("multiples of 32") && e.getMessage().contains("K=48"),
        e.getMessage());
    QuantizedTensor fourBitN12 =
        QuantFixtures.random(12, 32, 4, true, Grouping.GROUPS_OF_32, DType.F16, 0, 4);
    e =
        assertThrows(
            IllegalArgumentException.class,
            () ->
                QuantFixtures.write(
                    dir,
                    out ->
                        GptqLayout.write(
                            out, P, fourBitN12, null, CheckpointFormat.V1, new ArrayList<>())));
    assertTrue(
        e.getMessage().contains("multiples of 8") && e.getMessage().contains("N=12"),
        e.getMessage());
  }

  @Test
  void scalesNotExactInF16AreWrittenWithAWarning() {
    QuantizedTensor exact =
        QuantFixtures.random(8, 32, 4, true, Grouping.PER_CHANNEL, DType.F16, 0, 5);
    float[] scales = exact.scales().clone();
    scales[3] += 1e-6f;
    QuantizedTensor q =
        new QuantizedTensor(
            8, 32, 4, -1, true, exact.codes(), scales, exact.zeros(), exact.gIdx(), DType.F32);
    List<String> warnings = new ArrayList<>();
    QuantFixtures.write(
        dir, out -> GptqLayout.write(out, P, q, null, CheckpointFormat.V1, warnings));
    assertEquals(1, warnings.size());
    assertTrue(warnings.getFirst().contains(P + ".scales': 1 of 8 scales"), warnings.getFirst());
  }

  @Test
  void readRefusesScalesWhoseGroupCountDisagreesWithGroupSizeNamingTheTensor() {
    QuantizedTensor q =
        QuantFixtures.random(32, 128, 4, true, Grouping.GROUPS_OF_32, DType.F16, 0, 6);
    QuantFixtures.write(
        dir, out -> GptqLayout.write(out, P, q, null, CheckpointFormat.V1, new ArrayList<>()));
    try (Checkpoint in = Checkpoint.open(dir)) {
      BadInputException e =
          assertThrows(
              BadInputException.class,
              () -> GptqLayout.read(in, P, 4, 64, true, CheckpointFormat.V1));
      assertTrue(
          e.getMessage().contains("'" + P + ".scales' has 4 groups but group_size 64"),
          e.getMessage());
      e =
          assertThrows(
              BadInputException.class,
              () -> GptqLayout.read(in, P, 8, 32, true, CheckpointFormat.V1));
      assertTrue(e.getMessage().contains("'" + P + ".qweight' has shape [16, 32]"), e.getMessage());
    }
  }

  @Test
  void quantizationConfigHasAutoGptqKeysInOrder() {
    assertEquals(
        "{\"quant_method\":\"gptq\",\"bits\":4,\"group_size\":128,\"desc_act\":true,\"sym\":true,"
            + "\"damp_percent\":0.01,\"true_sequential\":true,\"static_groups\":false,"
            + "\"checkpoint_format\":\"gptq\"}",
        GptqLayout.quantizationConfig(4, 128, true, true, 0.01, true, false, CheckpointFormat.V1)
            .toString());
    assertEquals(
        "gptq_v2",
        GptqLayout.quantizationConfig(3, -1, false, false, 0.1, true, false, CheckpointFormat.V2)
            .get("checkpoint_format")
            .asText());
    assertEquals(
        -1,
        GptqLayout.quantizationConfig(3, -1, false, false, 0.1, true, false, CheckpointFormat.V2)
            .get("group_size")
            .asInt());
  }
}
