package llmc.formats.quant;

import com.code_intelligence.jazzer.junit.DictionaryEntries;
import com.code_intelligence.jazzer.junit.FuzzTest;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.function.Consumer;
import llmc.formats.Checkpoint;
import llmc.formats.DType;
import llmc.formats.FuzzFiles;
import llmc.formats.Json;
import llmc.formats.QuantizedTensor;
import llmc.formats.SafetensorsWriter;
import llmc.formats.quant.QuantFixtures.Grouping;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.condition.EnabledIfSystemProperty;

/**
 * Fuzzes the quantized and sparse layouts (GPTQ, compressed-tensors pack-quantized,
 * sparse-24-bitmask) as a model folder is read for evaluation: {@link QuantizedCheckpoint#open}
 * with a quantization_config, then every visible tensor's shape and floats and every quantized
 * layer. One input holds both files: u32 LE length n | n bytes of the quantization_config JSON |
 * model.safetensors. A config that is not a JSON object is skipped (that is config.json's target,
 * {@code ModelConfigFuzzTest}). Without JAZZER_FUZZ the method runs its corpus under {@code
 * src/test/resources/llmc/formats/quant/QuantizedCheckpointFuzzTestInputs/open}.
 */
@Timeout(10)
class QuantizedCheckpointFuzzTest {

  @DictionaryEntries({
    "\"quant_method\"",
    "\"gptq\"",
    "\"compressed-tensors\"",
    "\"bits\"",
    "\"group_size\"",
    "\"desc_act\"",
    "\"sym\"",
    "\"checkpoint_format\"",
    "\"gptq_v2\"",
    "\"format\"",
    "\"pack-quantized\"",
    "\"config_groups\"",
    "\"weights\"",
    "\"num_bits\"",
    "\"symmetric\"",
    "\"strategy\"",
    "\"group\"",
    "\"channel\"",
    "\"actorder\"",
    "\"targets\"",
    "\"ignore\"",
    "\"Linear\"",
    "\"re:.*\"",
    "\"sparsity_config\"",
    "\"sparse-24-bitmask\"",
    "\"dense\"",
    ".qweight",
    ".qzeros",
    ".scales",
    ".g_idx",
    ".bias",
    ".weight",
    ".weight_packed",
    ".weight_scale",
    ".weight_zero_point",
    ".weight_g_idx",
    ".weight_shape",
    ".compressed",
    ".bitmask",
    ".shape",
    "\"dtype\"",
    "\"shape\"",
    "\"data_offsets\"",
    "\"I32\"",
    "\"I64\"",
    "\"U8\"",
    "\"F16\"",
    "\"BF16\"",
    "\"F32\"",
    "-1",
    "0",
    "null",
    "[]",
    "{}"
  })
  @FuzzTest(maxDuration = "60s")
  void open(byte[] data) {
    if (data.length < 4) {
      return;
    }
    ByteBuffer in = ByteBuffer.wrap(data).order(ByteOrder.LITTLE_ENDIAN);
    long configLength = Integer.toUnsignedLong(in.getInt());
    if (configLength > data.length - 4) {
      return;
    }
    ObjectNode config;
    try {
      JsonNode node =
          Json.mapper().readTree(new String(data, 4, (int) configLength, StandardCharsets.UTF_8));
      if (node != null && !node.isNull() && !node.isObject()) {
        return;
      }
      config = node == null || node.isNull() ? null : (ObjectNode) node;
    } catch (JsonProcessingException e) {
      return;
    }
    Path dir = FuzzFiles.folder("quant");
    FuzzFiles.write(
        "quant",
        Checkpoint.SINGLE_FILE,
        Arrays.copyOfRange(data, 4 + (int) configLength, data.length));
    FuzzFiles.expectBadInputOrSuccess(
        dir,
        () -> {
          try (Checkpoint checkpoint = Checkpoint.open(dir)) {
            QuantizedCheckpoint model = QuantizedCheckpoint.open(checkpoint, config);
            for (String name : model.names()) {
              model.shape(name);
              model.floats(name);
            }
            for (String layer : model.quantizedLayers()) {
              model.quantized(layer).dequantize();
            }
            model.sparseLayers();
          }
        });
  }

  @Test
  void seedsParse() {
    FuzzFiles.assertSeedsParse(getClass(), "open", this::open);
  }

  /** Writes the corpus's seeds (run once by hand: -Dllmc.fuzz.writeSeeds=true). */
  @Test
  @EnabledIfSystemProperty(named = "llmc.fuzz.writeSeeds", matches = "true")
  void writeSeeds() {
    String q = "model.layers.0.self_attn.q_proj";
    String up = "model.layers.0.mlp.up_proj";
    float[] embed = {0.1f, 0.2f, 0.3f, 0.4f, 0.5f, 0.6f};
    QuantizedTensor q4 =
        QuantFixtures.random(8, 32, 4, false, Grouping.GROUPS_OF_32, DType.F16, 1, 1);
    QuantizedTensor q8 = QuantFixtures.random(4, 64, 8, true, Grouping.ACT_ORDER, DType.F16, 0, 2);
    QuantizedTensor q3 =
        QuantFixtures.random(8, 32, 3, false, Grouping.PER_CHANNEL, DType.F16, 1, 3);
    seed(
        "gptq-v1-4bit",
        GptqLayout.quantizationConfig(4, 32, false, false, 0.01, true, false, CheckpointFormat.V1),
        out -> {
          out.writeFloats("model.embed_tokens.weight", DType.F32, new long[] {2, 3}, embed);
          GptqLayout.write(out, q, q4, new float[8], CheckpointFormat.V1, new ArrayList<>());
        });
    seed(
        "gptq-v2-8bit-act-order",
        GptqLayout.quantizationConfig(8, 32, true, true, 0.01, true, false, CheckpointFormat.V2),
        out -> GptqLayout.write(out, q, q8, null, CheckpointFormat.V2, new ArrayList<>()));
    seed(
        "compressed-tensors-4bit",
        CompressedTensorsLayout.quantizationConfig(4, 32, false, false, List.of("lm_head")),
        out -> {
          CompressedTensorsLayout.write(out, q, q4, DType.F16, new ArrayList<>());
          out.writeFloats("lm_head.weight", DType.BF16, new long[] {2, 3}, embed);
        });
    seed(
        "compressed-tensors-3bit-channel",
        CompressedTensorsLayout.quantizationConfig(3, -1, false, false, List.of()),
        out -> CompressedTensorsLayout.write(out, q, q3, DType.BF16, new ArrayList<>()));
    seed(
        "sparse-24-bitmask",
        Sparse24BitmaskLayout.config(List.of("Linear"), List.of("lm_head"), 0.5),
        out -> {
          Sparse24BitmaskLayout.write(
              out, up, Sparse24BitmaskLayoutTest.random24(8, 8, 3), 8, 8, DType.BF16);
          out.writeFloats(up + ".bias", DType.BF16, new long[] {8}, new float[8]);
        });
    seed(
        "unquantized",
        null,
        out -> out.writeFloats("model.norm.weight", DType.F32, new long[] {6}, embed));
  }

  private void seed(String name, ObjectNode config, Consumer<SafetensorsWriter> body) {
    Path dir = FuzzFiles.folder("seeds-quant-" + name);
    QuantFixtures.write(dir, body);
    byte[] json = String.valueOf(config).getBytes(StandardCharsets.UTF_8);
    byte[] tensors = FuzzFiles.read(dir.resolve(Checkpoint.SINGLE_FILE));
    ByteBuffer out =
        ByteBuffer.allocate(4 + json.length + tensors.length).order(ByteOrder.LITTLE_ENDIAN);
    out.putInt(json.length).put(json).put(tensors);
    FuzzFiles.seed(getClass(), "open", name, out.array());
  }
}
