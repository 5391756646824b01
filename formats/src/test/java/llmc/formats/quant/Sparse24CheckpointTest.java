package llmc.formats.quant;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import llmc.formats.BadInputException;
import llmc.formats.Checkpoint;
import llmc.formats.DType;
import llmc.formats.Json;
import llmc.formats.ModelFolder;
import llmc.formats.QuantizedTensor;
import llmc.formats.quant.QuantFixtures.Grouping;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A 2:4 folder as llm-compressor leaves it: {@code sparsity_config} inside {@code
 * quantization_config}, with no quantization keys for a sparse-only model; read the way {@code
 * Weights.of(ModelFolder)} reads a folder ({@link QuantizedCheckpoint#open} with config.json's
 * quantization_config).
 */
class Sparse24CheckpointTest {

  private static final String UP = "model.layers.0.mlp.up_proj";
  private static final String DOWN = "model.layers.0.mlp.down_proj";
  private static final String LM_HEAD = "lm_head.weight";
  private static final String NORM = "model.norm.weight";

  @TempDir Path dir;

  private final float[] up = Sparse24BitmaskLayoutTest.random24(16, 8, 3);
  private final float[] down = Sparse24BitmaskLayoutTest.random24(8, 16, 4);
  private final float[] lmHead = {
    1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16
  }; // dense, ignored

  /** config.json of a tiny Llama with the given quantization_config. */
  private void writeConfig(ObjectNode quantizationConfig) throws IOException {
    ObjectNode config = Json.mapper().createObjectNode();
    config.putArray("architectures").add("LlamaForCausalLM");
    config
        .put("model_type", "llama")
        .put("hidden_size", 8)
        .put("intermediate_size", 16)
        .put("num_hidden_layers", 1)
        .put("num_attention_heads", 2)
        .put("vocab_size", 2);
    config.set("quantization_config", quantizationConfig);
    Files.writeString(
        dir.resolve("config.json"),
        Json.mapper().writerWithDefaultPrettyPrinter().writeValueAsString(config));
  }

  private void writeSparseModel() {
    QuantFixtures.write(
        dir,
        out -> {
          Sparse24BitmaskLayout.write(out, UP, up, 16, 8, DType.BF16);
          out.writeFloats(UP + ".bias", DType.BF16, new long[] {16}, new float[16]);
          Sparse24BitmaskLayout.write(out, DOWN, down, 8, 16, DType.BF16);
          out.writeFloats(LM_HEAD, DType.BF16, new long[] {2, 8}, lmHead);
          out.writeFloats(NORM, DType.BF16, new long[] {8}, new float[] {1, 1, 1, 1, 2, 2, 2, 2});
        });
  }

  private static float[] bf16(float[] w) {
    float[] rounded = new float[w.length];
    for (int i = 0; i < w.length; i++) {
      rounded[i] = QuantFixtures.round(w[i], DType.BF16);
    }
    return rounded;
  }

  @Test
  void sparseOnlyFolderReadsAsTheDenseMatricesThroughItsConfig() throws IOException {
    writeSparseModel();
    // as ModelCompressor.update_config writes it for a model without quantization (plus the version
    // it adds)
    ObjectNode quantizationConfig =
        Sparse24BitmaskLayout.config(List.of("Linear"), List.of("lm_head"), 0.5);
    quantizationConfig.put("version", "0.9.1");
    quantizationConfig.putObject("transform_config");
    writeConfig(quantizationConfig);
    assertFalse(QuantizedCheckpoint.quantizes(quantizationConfig));
    try (ModelFolder folder = ModelFolder.open(dir)) {
      QuantizedCheckpoint model =
          QuantizedCheckpoint.open(
              folder.checkpoint(), (ObjectNode) folder.config().json().get("quantization_config"));
      assertEquals(
          List.of(LM_HEAD, DOWN + ".weight", UP + ".bias", UP + ".weight", NORM),
          List.copyOf(model.names()));
      assertEquals(List.of(DOWN, UP), List.copyOf(model.sparseLayers()));
      assertEquals(List.of(), List.copyOf(model.quantizedLayers()));
      assertArrayEquals(new long[] {16, 8}, model.shape(UP + ".weight"));
      assertArrayEquals(new long[] {8, 16}, model.shape(DOWN + ".weight"));
      assertArrayEquals(bf16(up), model.floats(UP + ".weight"));
      assertArrayEquals(bf16(down), model.floats(DOWN + ".weight"));
      assertArrayEquals(lmHead, model.floats(LM_HEAD)); // ignored: stored densely, read as it is
      assertArrayEquals(new float[16], model.floats(UP + ".bias"));
      BadInputException e =
          assertThrows(BadInputException.class, () -> model.floats(UP + ".bitmask"));
      assertTrue(e.getMessage().contains("2:4-compressed layer"), e.getMessage());
    }
  }

  @Test
  void packQuantizedLayersAndSparseLayersReadTogether() {
    QuantizedTensor q =
        QuantFixtures.random(8, 64, 4, true, Grouping.GROUPS_OF_32, DType.BF16, 0, 5);
    QuantFixtures.write(
        dir,
        out -> {
          CompressedTensorsLayout.write(
              out, "model.layers.0.self_attn.q_proj", q, DType.BF16, new ArrayList<>());
          Sparse24BitmaskLayout.write(out, UP, up, 16, 8, DType.F32);
        });
    ObjectNode config =
        CompressedTensorsLayout.quantizationConfig(4, 32, true, false, List.of("lm_head"));
    config.set(
        "sparsity_config",
        Sparse24BitmaskLayout.config(List.of("re:.*mlp.*"), List.of(), 0.5).get("sparsity_config"));
    assertTrue(QuantizedCheckpoint.quantizes(config));
    try (Checkpoint in = Checkpoint.open(dir)) {
      QuantizedCheckpoint model = QuantizedCheckpoint.open(in, config);
      assertEquals(
          List.of("model.layers.0.self_attn.q_proj"), List.copyOf(model.quantizedLayers()));
      assertEquals(List.of(UP), List.copyOf(model.sparseLayers()));
      assertArrayEquals(q.dequantize(), model.floats("model.layers.0.self_attn.q_proj.weight"));
      assertArrayEquals(up, model.floats(UP + ".weight"));
    }
  }

  @Test
  void denseSparsityFormatPassesTensorsThroughAndRefusesCompressedOnes() {
    writeSparseModel();
    ObjectNode config = Sparse24BitmaskLayout.config(List.of("Linear"), List.of(), 0.5);
    ((ObjectNode) config.get("sparsity_config")).put("format", "dense");
    try (Checkpoint in = Checkpoint.open(dir)) {
      BadInputException e =
          assertThrows(BadInputException.class, () -> QuantizedCheckpoint.open(in, config));
      assertTrue(
          e.getMessage().contains(".compressed") && e.getMessage().contains("sparse-24-bitmask"),
          e.getMessage());
      e = assertThrows(BadInputException.class, () -> QuantizedCheckpoint.open(in, null));
      assertTrue(
          e.getMessage().contains("no quantization_config")
              && e.getMessage().contains(".compressed"),
          e.getMessage());
    }
  }

  @Test
  void otherSparsityFormatsAreRefusedByName() {
    writeSparseModel();
    ObjectNode config = Sparse24BitmaskLayout.config(List.of("Linear"), List.of(), 0.5);
    ((ObjectNode) config.get("sparsity_config")).put("format", "sparse-bitmask");
    try (Checkpoint in = Checkpoint.open(dir)) {
      BadInputException e =
          assertThrows(BadInputException.class, () -> QuantizedCheckpoint.open(in, config));
      assertTrue(
          e.getMessage().contains("'sparse-bitmask'")
              && e.getMessage().contains("supported: sparse-24-bitmask, dense"),
          e.getMessage());
    }
  }

  @Test
  void quantizedAnd24CompressedValuesAreRefusedNamingTheTensor() {
    QuantFixtures.write(
        dir,
        out -> {
          out.writeInts(UP + ".compressed", DType.I8, new long[] {1, 4}, new int[] {1, 2, 3, 4});
          out.writeInts(UP + ".bitmask", DType.U8, new long[] {1, 1}, new int[] {0x69});
          out.writeInts(UP + ".shape", DType.I64, new long[] {2, 1}, new int[] {1, 8});
        });
    ObjectNode config = Sparse24BitmaskLayout.config(List.of("Linear"), List.of(), 0.5);
    try (Checkpoint in = Checkpoint.open(dir)) {
      BadInputException e =
          assertThrows(BadInputException.class, () -> QuantizedCheckpoint.open(in, config));
      assertTrue(
          e.getMessage().contains(UP + ".compressed") && e.getMessage().contains("I8"),
          e.getMessage());
    }
  }
}
