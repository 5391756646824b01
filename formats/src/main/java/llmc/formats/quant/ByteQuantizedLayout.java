package llmc.formats.quant;

import static llmc.formats.quant.StoredTensor.When.ALWAYS;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.List;
import llmc.formats.BadInputException;
import llmc.formats.Checkpoint;
import llmc.formats.DType;
import llmc.formats.Json;
import llmc.formats.QuantizedTensor;
import llmc.formats.SafetensorsWriter;
import llmc.formats.TensorInfo;
import llmc.formats.quant.StoredTensor.Dims;

/**
 * compressed-tensors' {@code int-quantized} and {@code float-quantized} layouts (its
 * IntQuantizationCompressor and FloatQuantizationCompressor), what vLLM loads as W8A8 and FP8: one
 * byte per weight, unpacked, per linear layer P with N outputs, K inputs and G groups (one for
 * {@code strategy: channel}):
 *
 * <ul>
 *   <li>{@code P.weight [N][K]}: int8 {@code q in [-128, 127]} (our code is {@code q + 128}, zero
 *       128), or the float8 e4m3 bytes;
 *   <li>{@code P.weight_scale [N][G]} in the model dtype; value {@code s q}.
 * </ul>
 *
 * Symmetric only (no zero point is stored). The activation scheme ({@link InputQuantization}) is
 * the config group's {@code input_activations}.
 */
public final class ByteQuantizedLayout {
  public static final String INT = "int-quantized";
  public static final String FLOAT = "float-quantized";

  static final StoredTensor WEIGHT_INT8 =
      new StoredTensor(".weight", DType.I8, d -> new long[] {d.rows(), d.cols()}, ALWAYS, "int8");
  static final StoredTensor WEIGHT_FP8 =
      new StoredTensor(
          ".weight", DType.F8_E4M3, d -> new long[] {d.rows(), d.cols()}, ALWAYS, "float8 e4m3");
  static final StoredTensor WEIGHT_SCALE =
      new StoredTensor(
          ".weight_scale",
          null,
          d -> new long[] {d.rows(), d.groups()},
          ALWAYS,
          "scales in the model dtype");

  private ByteQuantizedLayout() {}

  /** Whether {@code format} is one of these layouts. */
  public static boolean isThisFormat(String format) {
    return INT.equals(format) || FLOAT.equals(format);
  }

  static List<StoredTensor> tensors(String format) {
    return List.of(FLOAT.equals(format) ? WEIGHT_FP8 : WEIGHT_INT8, WEIGHT_SCALE);
  }

  /**
   * Stores {@code q} (8-bit symmetric integer codes, or FP8 codes) as P.weight and P.weight_scale.
   */
  public static void write(
      SafetensorsWriter out, String prefix, QuantizedTensor q, DType scaleDtype) {
    if (q.bits() != 8 || !q.symmetric() || q.mins() != null || !q.hasTrivialGroupIndex()) {
      throw new IllegalArgumentException(
          "layer '"
              + prefix
              + "': "
              + INT
              + " and "
              + FLOAT
              + " hold 8-bit symmetric codes in order, not "
              + q.bits()
              + "-bit "
              + (q.symmetric() ? "symmetric" : "asymmetric"));
    }
    int n = q.rows();
    int k = q.cols();
    int groups = q.groups();
    byte[] bytes = new byte[n * k];
    byte[] codes = q.codes();
    for (int i = 0; i < bytes.length; i++) {
      bytes[i] = q.isFloat8() ? codes[i] : (byte) (Byte.toUnsignedInt(codes[i]) - 128);
    }
    if (!q.isFloat8()) {
      for (int zero : q.zeros()) {
        if (zero != 128) {
          throw new IllegalArgumentException("layer '" + prefix + "': a zero point is not 128");
        }
      }
    }
    float[] scales = new float[n * groups]; // [N][G] from our [G][N]
    for (int g = 0; g < groups; g++) {
      for (int row = 0; row < n; row++) {
        scales[row * groups + g] = q.scale(g, row);
      }
    }
    Dims dims = new Dims(n, k, groups, 8);
    StoredTensor weight = q.isFloat8() ? WEIGHT_FP8 : WEIGHT_INT8;
    out.write(
        weight.name(prefix),
        weight.dtype(),
        weight.shape().apply(dims),
        MemorySegment.ofArray(bytes));
    out.writeFloats(
        WEIGHT_SCALE.name(prefix), scaleDtype, WEIGHT_SCALE.shape().apply(dims), scales);
  }

  /** Checks layer P's tensors against the config group that targets it; returns its dims. */
  static Dims checkLayer(Checkpoint in, String prefix, ObjectNode config) {
    String source = in.folder().resolve("config.json").toString();
    String format = config.path("format").asText();
    int groupSize = groupSize(config, prefix, source);
    TensorInfo w = Layouts.info(in, prefix + ".weight", 2, "compressed-tensors " + format);
    int n = Layouts.toInt(w.shape()[0]);
    int k = Layouts.toInt(w.shape()[1]);
    int groups = groupSize < 0 ? 1 : (k + groupSize - 1) / groupSize;
    Dims dims = new Dims(n, k, groups, 8);
    String layout = "compressed-tensors " + format;
    for (StoredTensor t : tensors(format)) {
      t.check(in, prefix, dims, layout);
    }
    return dims;
  }

  /** Reads layer P back. */
  static QuantizedTensor read(Checkpoint in, String prefix, ObjectNode config) {
    String source = in.folder().resolve("config.json").toString();
    boolean fp8 = FLOAT.equals(config.path("format").asText());
    int groupSize = groupSize(config, prefix, source);
    Dims dims = checkLayer(in, prefix, config);
    int n = dims.rows();
    int k = dims.cols();
    int groups = dims.groups();
    byte[] codes = in.bytes(prefix + ".weight").toArray(ValueLayout.JAVA_BYTE);
    float[] stored = in.floats(WEIGHT_SCALE.name(prefix)); // [N][G]
    float[] scales = new float[groups * n]; // [G][N]
    for (int row = 0; row < n; row++) {
      for (int g = 0; g < groups; g++) {
        scales[g * n + row] = stored[row * groups + g];
      }
    }
    int[] gIdx = Layouts.trivialGroupIndex(k, groupSize);
    DType scaleDtype = in.info(WEIGHT_SCALE.name(prefix)).dtype();
    if (fp8) {
      return QuantizedTensor.e4m3(n, k, groupSize, codes, scales, gIdx, scaleDtype);
    }
    for (int i = 0; i < codes.length; i++) {
      codes[i] = (byte) (codes[i] + 128); // int8 q -> our code q + 128
    }
    int[] zeros = new int[scales.length];
    java.util.Arrays.fill(zeros, 128);
    return new QuantizedTensor(n, k, 8, groupSize, true, codes, scales, zeros, gIdx, scaleDtype);
  }

  /** The activation scheme of layer P's config group, or null (weight-only). */
  static InputQuantization inputQuantization(ObjectNode config, String prefix) {
    String source = config.path("format").asText() + " quantization_config";
    return InputQuantization.parse(
        CompressedTensorsLayout.configGroup(config, prefix, source).get("input_activations"),
        source + " of layer '" + prefix + "'");
  }

  private static int groupSize(ObjectNode config, String prefix, String source) {
    JsonNode weights = CompressedTensorsLayout.configGroup(config, prefix, source).get("weights");
    String where = source + ": config_groups weights of layer '" + prefix + "': ";
    if (weights == null || !weights.isObject()) {
      throw new BadInputException(where + "missing");
    }
    String type = weights.path("type").asText("int");
    boolean fp8 = FLOAT.equals(config.path("format").asText());
    if (weights.path("num_bits").asInt(8) != 8
        || !weights.path("symmetric").asBoolean(true)
        || !type.equals(fp8 ? "float" : "int")) {
      throw new BadInputException(
          where + weights + " is not supported (8-bit symmetric " + (fp8 ? "float" : "int") + ")");
    }
    String strategy = weights.path("strategy").asText("channel");
    return switch (strategy) {
      case "channel" -> -1;
      case "group" -> {
        int size = weights.path("group_size").asInt(-1);
        if (size <= 0) {
          throw new BadInputException(where + "strategy group needs a positive group_size");
        }
        yield size;
      }
      default ->
          throw new BadInputException(
              where + "strategy '" + strategy + "' is not supported (channel, group)");
    };
  }

  /**
   * {@code quantization_config}: one config group targeting every Linear layer, 8-bit symmetric
   * weights (per channel, or groups) and {@code input} as the activations (null: weight-only).
   */
  public static ObjectNode quantizationConfig(
      boolean fp8, int groupSize, InputQuantization input, List<String> ignore) {
    ObjectNode config = Json.mapper().createObjectNode();
    config.put("quant_method", CompressedTensorsLayout.QUANT_METHOD);
    config.put("format", fp8 ? FLOAT : INT);
    config.put("quantization_status", "compressed");
    ObjectNode group = config.putObject("config_groups").putObject("group_0");
    group.putArray("targets").add("Linear");
    ObjectNode weights = group.putObject("weights");
    weights.put("num_bits", 8);
    weights.put("type", fp8 ? "float" : "int");
    weights.put("symmetric", true);
    weights.put("strategy", groupSize > 0 ? "group" : "channel");
    if (groupSize > 0) {
      weights.put("group_size", groupSize);
    } else {
      weights.putNull("group_size");
    }
    weights.put("dynamic", false);
    weights.putNull("actorder");
    if (input == null) {
      group.putNull("input_activations");
    } else {
      group.set("input_activations", input.toConfig());
    }
    group.putNull("output_activations");
    ArrayNode ignored = config.putArray("ignore");
    if (ignore != null) {
      ignore.forEach(ignored::add);
    }
    return config;
  }
}
