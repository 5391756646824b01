package llmc.formats.quant;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.node.ObjectNode;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;
import llmc.formats.BadInputException;
import llmc.formats.Checkpoint;
import llmc.formats.DType;
import llmc.formats.Json;
import llmc.formats.TensorInfo;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Expected bytes follow compressed-tensors' Sparse24BitMaskCompressor
 * (src/compressed_tensors/compressors/sparse_compressors/sparse_24_bitmask.py): {@code compressed}
 * = the 2 kept values of every block of 4 in row-major order, [N, K/2]; {@code bitmask} = {@code
 * numpy.packbits(mask, axis=-1, bitorder="little")}, [N, ceil(K/8)]; {@code shape} = {@code
 * torch.tensor([N, K]).reshape(-1, 1)}, I64 [2, 1].
 */
class Sparse24BitmaskLayoutTest {

  private static final String P = "model.layers.1.mlp.up_proj";

  @TempDir Path dir;

  /** 2 rows x 8 columns; row 1 has an all-zero block and a block with a single non-zero. */
  private static final float[] SMALL = {
    1, 0, 0, 2, /**/ 0, 3, 4, 0,
    0, 0, 0, 0, /**/ 0, -5, 0, 0,
  };

  @Test
  void smallMatrixHasHandComputedBitmaskValuesAndShape() {
    QuantFixtures.write(dir, out -> Sparse24BitmaskLayout.write(out, P, SMALL, 2, 8, DType.F32));
    try (Checkpoint in = Checkpoint.open(dir)) {
      TensorInfo compressed = in.info(P + ".compressed");
      assertEquals(DType.F32, compressed.dtype());
      assertArrayEquals(new long[] {2, 4}, compressed.shape());
      // row 0 keeps columns 0, 3 | 5, 6; row 1 keeps its first zeros: 0, 1 | 4 and the non-zero 5
      assertArrayEquals(new float[] {1, 2, 3, 4, 0, 0, 0, -5}, in.floats(P + ".compressed"));

      TensorInfo bitmask = in.info(P + ".bitmask");
      assertEquals(DType.U8, bitmask.dtype());
      assertArrayEquals(new long[] {2, 1}, bitmask.shape());
      byte[] bytes = in.bytes(P + ".bitmask").toArray(ValueLayout.JAVA_BYTE);
      // bits 0, 3, 5, 6 = 1 + 8 + 32 + 64; bits 0, 1, 4, 5 = 1 + 2 + 16 + 32
      assertArrayEquals(new byte[] {(byte) 0x69, (byte) 0x33}, bytes);

      TensorInfo shape = in.info(P + ".shape");
      assertEquals(DType.I64, shape.dtype());
      assertArrayEquals(new long[] {2, 1}, shape.shape());
      assertArrayEquals(
          new long[] {2, 8}, in.bytes(P + ".shape").toArray(ValueLayout.JAVA_LONG_UNALIGNED));

      assertArrayEquals(SMALL, Sparse24BitmaskLayout.read(in, P));
    }
  }

  @Test
  void lastBitmaskByteIsZeroPaddedWhenKIsNotAMultipleOf8() {
    float[] w = {0, 7, 0, 8, /**/ 9, 0, 0, 0, /**/ 0, 0, 1, 2};
    QuantFixtures.write(dir, out -> Sparse24BitmaskLayout.write(out, P, w, 1, 12, DType.F16));
    try (Checkpoint in = Checkpoint.open(dir)) {
      // columns 1, 3, 4, 5 | 10, 11: 0b0011_1010, then bits 2, 3 of the second byte
      assertArrayEquals(
          new byte[] {(byte) 0x3a, (byte) 0x0c},
          in.bytes(P + ".bitmask").toArray(ValueLayout.JAVA_BYTE));
      assertArrayEquals(new long[] {1, 6}, in.info(P + ".compressed").shape());
      assertEquals(DType.F16, in.info(P + ".compressed").dtype());
      assertArrayEquals(w, Sparse24BitmaskLayout.read(in, P));
    }
  }

  @Test
  void randomMatrixRoundTripsBitExactInF32() {
    float[] w = random24(24, 40, 1);
    QuantFixtures.write(dir, out -> Sparse24BitmaskLayout.write(out, P, w, 24, 40, DType.F32));
    try (Checkpoint in = Checkpoint.open(dir)) {
      assertArrayEquals(new long[] {24, 5}, in.info(P + ".bitmask").shape());
      assertArrayEquals(w, Sparse24BitmaskLayout.read(in, P));
    }
  }

  @Test
  void randomMatrixRoundTripsAfterRoundingInBf16() {
    float[] w = random24(16, 36, 2);
    float[] rounded = new float[w.length];
    for (int i = 0; i < w.length; i++) {
      rounded[i] = QuantFixtures.round(w[i], DType.BF16);
    }
    QuantFixtures.write(dir, out -> Sparse24BitmaskLayout.write(out, P, w, 16, 36, DType.BF16));
    try (Checkpoint in = Checkpoint.open(dir)) {
      assertEquals(DType.BF16, in.info(P + ".compressed").dtype());
      assertArrayEquals(rounded, Sparse24BitmaskLayout.read(in, P));
    }
  }

  @Test
  void refusesAMatrixThatIsNot24SparseNamingTheLayerRowAndColumns() {
    float[] w = SMALL.clone();
    w[8 + 6] = 0.5f; // row 1, block 4..7 now holds 2 non-zeros: still fine
    w[8 + 7] = 0.25f; // ... and now 3
    IllegalArgumentException e =
        assertThrows(
            IllegalArgumentException.class,
            () ->
                QuantFixtures.write(
                    dir, out -> Sparse24BitmaskLayout.write(out, P, w, 2, 8, DType.F32)));
    assertTrue(
        e.getMessage().contains(P)
            && e.getMessage().contains("row 1")
            && e.getMessage().contains("columns 4..7")
            && e.getMessage().contains("3 non-zeros"),
        e.getMessage());
  }

  @Test
  void refusesKNotAMultipleOf4AndNonFloatDtypes() {
    IllegalArgumentException e =
        assertThrows(
            IllegalArgumentException.class,
            () ->
                QuantFixtures.write(
                    dir,
                    out -> Sparse24BitmaskLayout.write(out, P, new float[6], 1, 6, DType.F32)));
    assertTrue(e.getMessage().contains(P) && e.getMessage().contains("K=6"), e.getMessage());
    e =
        assertThrows(
            IllegalArgumentException.class,
            () ->
                QuantFixtures.write(
                    dir, out -> Sparse24BitmaskLayout.write(out, P, new float[8], 1, 8, DType.I8)));
    assertTrue(e.getMessage().contains(P), e.getMessage());
  }

  @Test
  void readRefusesABitmaskThatDoesNotKeepExactly2Of4() {
    QuantFixtures.write(
        dir,
        out -> {
          out.writeFloats(
              P + ".compressed", DType.F32, new long[] {1, 4}, new float[] {1, 2, 3, 4});
          out.writeInts(
              P + ".bitmask", DType.U8, new long[] {1, 1}, new int[] {0b0111_0001}); // 1 + 3
          out.writeInts(P + ".shape", DType.I64, new long[] {2, 1}, new int[] {1, 8});
        });
    try (Checkpoint in = Checkpoint.open(dir)) {
      BadInputException e =
          assertThrows(BadInputException.class, () -> Sparse24BitmaskLayout.read(in, P));
      assertTrue(
          e.getMessage().contains(P + ".bitmask") && e.getMessage().contains("columns 0..3"),
          e.getMessage());
    }
  }

  @Test
  void readAcceptsAShapeTensorOfShape2AndRefusesAWrongCompressedShape() {
    QuantFixtures.write(
        dir,
        out -> {
          out.writeFloats(
              P + ".compressed", DType.F32, new long[] {1, 4}, new float[] {1, 2, 3, 4});
          out.writeInts(P + ".bitmask", DType.U8, new long[] {1, 1}, new int[] {0x69});
          out.writeInts(P + ".shape", DType.I64, new long[] {2}, new int[] {1, 8});
          out.writeFloats("q.compressed", DType.F32, new long[] {1, 3}, new float[] {1, 2, 3});
          out.writeInts("q.bitmask", DType.U8, new long[] {1, 1}, new int[] {0x69});
          out.writeInts("q.shape", DType.I64, new long[] {2, 1}, new int[] {1, 8});
        });
    try (Checkpoint in = Checkpoint.open(dir)) {
      assertArrayEquals(new float[] {1, 0, 0, 2, 0, 3, 4, 0}, Sparse24BitmaskLayout.read(in, P));
      BadInputException e =
          assertThrows(BadInputException.class, () -> Sparse24BitmaskLayout.read(in, "q"));
      assertTrue(
          e.getMessage().contains("q.compressed") && e.getMessage().contains("[1, 4]"),
          e.getMessage());
    }
  }

  @Test
  void configIsTheQuantizationConfigCompressedTensorsWritesForASparseOnlyModel() {
    ObjectNode config = Sparse24BitmaskLayout.config(List.of("Linear"), List.of("lm_head"), 0.4375);
    assertEquals(
        Json.mapper()
            .createObjectNode()
            .put("quant_method", "compressed-tensors")
            .set(
                "sparsity_config",
                Json.mapper()
                    .createObjectNode()
                    .put("format", "sparse-24-bitmask")
                    .put("global_sparsity", 0.4375)
                    .<ObjectNode>set("ignore", Json.mapper().createArrayNode().add("lm_head"))
                    .put("sparsity_structure", "2:4")
                    .set("targets", Json.mapper().createArrayNode().add("Linear"))),
        config);
    assertThrows(
        IllegalArgumentException.class,
        () -> Sparse24BitmaskLayout.config(List.of(), List.of(), 1.5));
  }

  /**
   * A random [n][k] matrix with exactly 2 random places of every 4 drawn (a few of them zero), the
   * rest 0.
   */
  static float[] random24(int n, int k, long seed) {
    Random random = new Random(seed);
    float[] w = new float[n * k];
    for (int block = 0; block < w.length; block += 4) {
      int first = random.nextInt(4);
      int second = (first + 1 + random.nextInt(3)) % 4;
      for (int j : new int[] {first, second}) {
        w[block + j] = random.nextInt(10) == 0 ? 0 : (float) random.nextGaussian();
      }
    }
    return w;
  }
}
