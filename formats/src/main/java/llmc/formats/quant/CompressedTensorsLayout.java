package llmc.formats.quant;

import static llmc.formats.quant.StoredTensor.When.ACT_ORDER;
import static llmc.formats.quant.StoredTensor.When.ALWAYS;
import static llmc.formats.quant.StoredTensor.When.ASYMMETRIC;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;
import java.util.regex.PatternSyntaxException;
import llmc.formats.BadInputException;
import llmc.formats.Checkpoint;
import llmc.formats.DType;
import llmc.formats.Json;
import llmc.formats.QuantizedTensor;
import llmc.formats.SafetensorsWriter;
import llmc.formats.TensorInfo;
import llmc.formats.quant.StoredTensor.Dims;

/**
 * vLLM llm-compressor's compressed-tensors {@code pack-quantized} layout, per linear layer P with N
 * outputs, K inputs, b bits (2..8), {@code f = 32 / b} whole codes per int32 and G groups. Follows
 * compressed-tensors' PackedQuantizationCompressor and {@code pack_to_int32}
 * (src/compressed_tensors/compressors/quantized_compressors/pack_quantized.py): its quantizer
 * produces signed {@code q in [-2^(b-1), 2^(b-1))} and signed zero points, and {@code
 * pack_to_int32} adds {@code 2^(b-1)} before packing. Our codes and zeros are those unsigned values
 * ({@code code = q + 2^(b-1)}, {@code zero = zp + 2^(b-1)}, so {@code code - zero = q - zp}) and
 * are packed as they are: {@link BitPacking#WHOLE_CODES}.
 */
public final class CompressedTensorsLayout {

  public static final String QUANT_METHOD = "compressed-tensors";
  public static final String FORMAT = "pack-quantized";

  // One row per stored tensor; shapes from the layer's Dims (N rows, K cols, G groups, b bits, f =
  // 32 / b).
  static final StoredTensor WEIGHT_PACKED =
      new StoredTensor(
          ".weight_packed",
          DType.I32,
          d -> new long[] {d.rows(), ceilDiv(d.cols(), d.perWord())},
          ALWAYS, // [N, ceil(K/f)]
          "codes, f whole codes a word along K");
  static final StoredTensor WEIGHT_SCALE =
      new StoredTensor(
          ".weight_scale",
          null,
          d -> new long[] {d.rows(), d.groups()},
          ALWAYS,
          "scales in the model dtype"); // [N, G]
  static final StoredTensor WEIGHT_ZERO_POINT =
      new StoredTensor(
          ".weight_zero_point",
          DType.I32,
          d -> new long[] {ceilDiv(d.rows(), d.perWord()), d.groups()},
          ASYMMETRIC, // [ceil(N/f), G]
          "zero points, f whole values a word along N");
  static final StoredTensor WEIGHT_G_IDX =
      new StoredTensor(
          ".weight_g_idx",
          DType.I32,
          d -> new long[] {d.cols()},
          ACT_ORDER,
          "group of each input column"); // [K]
  static final StoredTensor WEIGHT_SHAPE =
      new StoredTensor(".weight_shape", DType.I64, d -> new long[] {2}, ALWAYS, "(N, K)"); // [2]

  /** The layout. */
  static final List<StoredTensor> TENSORS =
      List.of(WEIGHT_PACKED, WEIGHT_SCALE, WEIGHT_ZERO_POINT, WEIGHT_G_IDX, WEIGHT_SHAPE);

  /** The weight quantization of one config group ({@code "weights"} of QuantizationArgs). */
  record WeightArgs(int bits, int groupSize, boolean symmetric, boolean actOrder) {}

  private CompressedTensorsLayout() {}

  /**
   * {@code weight_packed [N][ceil(K / (32 / b))]}: each row's codes, {@code 32 / b} whole codes per
   * int32 word from the lowest bits ({@link BitPacking#WHOLE_CODES}). {@code name} is named when a
   * code does not fit.
   */
  public static int[] packedWeights(QuantizedTensor q, String name) {
    return BitPacking.WHOLE_CODES.pack(q.bits(), q.rows(), q.cols(), q.codes(), false, name);
  }

  /**
   * Stores {@code q} as P.weight_packed, P.weight_scale (in {@code scaleDtype}, the model dtype),
   * P.weight_zero_point (asymmetric only), P.weight_g_idx (act-order only) and P.weight_shape.
   */
  public static void write(
      SafetensorsWriter out,
      String prefix,
      QuantizedTensor q,
      DType scaleDtype,
      List<String> warnings) {
    if (scaleDtype != DType.F32 && scaleDtype != DType.F16 && scaleDtype != DType.BF16) {
      throw new IllegalArgumentException(
          "layer '"
              + prefix
              + "': compressed-tensors scales are stored in the"
              + " model dtype F32, F16 or BF16, not "
              + scaleDtype);
    }
    if (q.mins() != null) {
      throw new IllegalArgumentException(
          "layer '"
              + prefix
              + "': float group offsets (ggml's _1 grids) have no"
              + " place in this layout; store them as GGUF");
    }
    if (q.isFloat8()) {
      throw new IllegalArgumentException(
          "layer '" + prefix + "': FP8 codes are stored as " + ByteQuantizedLayout.FLOAT);
    }
    int bits = q.bits();
    int n = q.rows();
    int k = q.cols();
    int groups = q.groups();
    int expectedGroups = q.groupSize() > 0 ? ceilDiv(k, q.groupSize()) : 1;
    if (groups != expectedGroups) {
      throw new IllegalArgumentException(
          "layer '"
              + prefix
              + "': "
              + groups
              + " groups, but group size "
              + q.groupSize()
              + " with K="
              + k
              + " makes "
              + expectedGroups);
    }
    if (q.symmetric()) {
      int middle = 1 << (bits - 1);
      for (int zero : q.zeros()) {
        if (zero != middle) {
          throw new IllegalArgumentException(
              "layer '"
                  + prefix
                  + "': symmetric, but a zero point is "
                  + zero
                  + " instead of "
                  + middle
                  + "; compressed-tensors stores no zero points then");
        }
      }
    }
    Layouts.checkGroupIndex(prefix, q);
    Layouts.warnIfRounded(WEIGHT_SCALE.name(prefix), q.scales(), scaleDtype, warnings);

    Dims dims = new Dims(n, k, groups, bits);
    int[] packed = packedWeights(q, WEIGHT_PACKED.name(prefix));
    float[] scales = new float[n * groups]; // [N][G] from our [G][N]
    for (int g = 0; g < groups; g++) {
      for (int row = 0; row < n; row++) {
        scales[row * groups + g] = q.scale(g, row);
      }
    }
    out.writeInts(WEIGHT_PACKED.name(prefix), DType.I32, WEIGHT_PACKED.shape().apply(dims), packed);
    out.writeFloats(
        WEIGHT_SCALE.name(prefix), scaleDtype, WEIGHT_SCALE.shape().apply(dims), scales);
    if (!q.symmetric()) {
      int[] zeroPoints =
          BitPacking.WHOLE_CODES.pack(
              bits, groups, n, q::zero, true, WEIGHT_ZERO_POINT.name(prefix));
      out.writeInts(
          WEIGHT_ZERO_POINT.name(prefix),
          DType.I32,
          WEIGHT_ZERO_POINT.shape().apply(dims),
          zeroPoints);
    }
    if (!q.hasTrivialGroupIndex()) {
      out.writeInts(
          WEIGHT_G_IDX.name(prefix), DType.I32, WEIGHT_G_IDX.shape().apply(dims), q.gIdx());
    }
    out.writeInts(
        WEIGHT_SHAPE.name(prefix), DType.I64, WEIGHT_SHAPE.shape().apply(dims), new int[] {n, k});
  }

  /** Reads layer P back, with the weight arguments of the config group that targets it. */
  public static QuantizedTensor read(Checkpoint in, String prefix, ObjectNode quantizationConfig) {
    String source = in.folder().resolve("config.json").toString();
    requirePackQuantized(quantizationConfig, source);
    WeightArgs args = weightArgs(quantizationConfig, prefix, source);
    int bits = args.bits();
    Dims dims = checkLayer(in, prefix, args);
    boolean hasGroupIndex = in.contains(WEIGHT_G_IDX.name(prefix));
    int n = dims.rows();
    int k = dims.cols();
    int groups = dims.groups();
    int[] codes =
        BitPacking.WHOLE_CODES.unpack(
            bits, n, k, Layouts.ints(in, WEIGHT_PACKED.name(prefix)), false);
    float[] stored = in.floats(WEIGHT_SCALE.name(prefix)); // [N][G]
    float[] scales = new float[groups * n]; // [G][N]
    for (int row = 0; row < n; row++) {
      for (int g = 0; g < groups; g++) {
        scales[g * n + row] = stored[row * groups + g];
      }
    }
    int[] zeros;
    if (args.symmetric()) {
      zeros = new int[groups * n];
      java.util.Arrays.fill(zeros, 1 << (bits - 1));
    } else {
      zeros =
          BitPacking.WHOLE_CODES.unpack(
              bits, groups, n, Layouts.ints(in, WEIGHT_ZERO_POINT.name(prefix)), true);
    }
    int[] gIdx =
        hasGroupIndex
            ? Layouts.ints(in, WEIGHT_G_IDX.name(prefix))
            : Layouts.trivialGroupIndex(k, args.groupSize());
    Layouts.checkGroupIndex(in, WEIGHT_G_IDX.name(prefix), gIdx, groups);
    return new QuantizedTensor(
        n,
        k,
        bits,
        args.groupSize(),
        args.symmetric(),
        Layouts.toBytes(codes),
        scales,
        zeros,
        gIdx,
        in.info(WEIGHT_SCALE.name(prefix)).dtype());
  }

  /** The dense [N, K] shape of layer P's weight: the content of P.weight_shape. */
  static long[] denseShape(Checkpoint in, String prefix) {
    String name = WEIGHT_SHAPE.name(prefix);
    TensorInfo info = Layouts.info(in, name, 1, "compressed-tensors " + FORMAT);
    // compressed-tensors writes torch.tensor(weight.shape), int64; its compression_param_info says
    // int32
    if ((info.dtype() != DType.I64 && info.dtype() != DType.I32) || info.dim(0) != 2) {
      throw new BadInputException(
          in.folder()
              + ": tensor '"
              + name
              + "' must be I64 [2] = (N, K), is "
              + info.dtype()
              + " "
              + java.util.Arrays.toString(info.shape()));
    }
    int[] shape = Layouts.ints(in, name);
    if (shape[0] <= 0 || shape[1] <= 0) {
      throw new BadInputException(
          in.folder()
              + ": tensor '"
              + name
              + "' holds ("
              + shape[0]
              + ", "
              + shape[1]
              + "), not a weight shape");
    }
    return new long[] {shape[0], shape[1]};
  }

  /** Checks every stored tensor of layer P against the table and gives its dimensions. */
  static Dims checkLayer(Checkpoint in, String prefix, WeightArgs args) {
    Dims dims = dims(in, prefix, args);
    String layout = "compressed-tensors " + args.bits() + "-bit " + FORMAT;
    WEIGHT_PACKED.check(in, prefix, dims, layout);
    WEIGHT_SCALE.check(in, prefix, dims, layout);
    if (!args.symmetric()) {
      WEIGHT_ZERO_POINT.check(in, prefix, dims, layout);
    }
    if (in.contains(WEIGHT_G_IDX.name(prefix))) {
      WEIGHT_G_IDX.check(in, prefix, dims, layout);
    }
    return dims;
  }

  private static Dims dims(Checkpoint in, String prefix, WeightArgs args) {
    long[] shape = denseShape(in, prefix);
    int n = (int) shape[0];
    int k = (int) shape[1];
    String scaleName = WEIGHT_SCALE.name(prefix);
    int groups =
        Layouts.toInt(Layouts.info(in, scaleName, 2, "compressed-tensors " + FORMAT).dim(1));
    int expectedGroups = args.groupSize() > 0 ? ceilDiv(k, args.groupSize()) : 1;
    if (groups != expectedGroups) {
      throw new BadInputException(
          in.folder()
              + ": tensor '"
              + scaleName
              + "' has "
              + groups
              + " groups but "
              + (args.groupSize() > 0 ? "group_size " + args.groupSize() : "strategy channel")
              + " with K="
              + k
              + " makes "
              + expectedGroups);
    }
    return new Dims(n, k, groups, args.bits());
  }

  /**
   * {@code "quantization_config"} for config.json: one config group targeting every Linear layer,
   * weight-only, static. Field names as compressed-tensors' QuantizationConfig / QuantizationScheme
   * / QuantizationArgs.
   *
   * @param groupSize -1 for per-channel (strategy "channel", group_size null)
   * @param actOrder group act-order ("actorder": "group"; only meaningful with groups)
   * @param ignore layers left dense, e.g. ["lm_head"]
   */
  public static ObjectNode quantizationConfig(
      int bits, int groupSize, boolean symmetric, boolean actOrder, List<String> ignore) {
    if (bits < 2 || bits > 8) {
      throw new IllegalArgumentException(
          "compressed-tensors pack-quantized holds 2..8 bits, not " + bits);
    }
    ObjectNode config = Json.mapper().createObjectNode();
    config.put("quant_method", QUANT_METHOD);
    config.put("format", FORMAT);
    config.put("quantization_status", "compressed");
    ObjectNode group = config.putObject("config_groups").putObject("group_0");
    group.putArray("targets").add("Linear");
    ObjectNode weights = group.putObject("weights");
    weights.put("num_bits", bits);
    weights.put("type", "int");
    weights.put("symmetric", symmetric);
    weights.put("strategy", groupSize > 0 ? "group" : "channel");
    if (groupSize > 0) {
      weights.put("group_size", groupSize);
    } else {
      weights.putNull("group_size");
    }
    if (actOrder && groupSize > 0) { // compressed-tensors refuses actorder "group" without groups
      weights.put("actorder", "group");
    } else {
      weights.putNull("actorder");
    }
    weights.put("dynamic", false);
    group.putNull("input_activations");
    group.putNull("output_activations");
    ArrayNode ignored = config.putArray("ignore");
    if (ignore != null) {
      ignore.forEach(ignored::add);
    }
    return config;
  }

  static void requirePackQuantized(ObjectNode config, String source) {
    String method = text(config, "quant_method");
    if (!QUANT_METHOD.equals(method)) {
      throw new BadInputException(
          source
              + ": quantization_config.quant_method is '"
              + method
              + "', expected '"
              + QUANT_METHOD
              + "'");
    }
    String format = text(config, "format");
    if (!FORMAT.equals(format)) {
      throw new BadInputException(
          source
              + ": compressed-tensors format '"
              + format
              + "' is not supported (supported: "
              + FORMAT
              + ")");
    }
  }

  /**
   * The weight arguments of the config group that targets {@code layer}: a target equal to the
   * layer name wins over a "re:" regular expression (matched at the start of the name, as Python's
   * re.match), which wins over a class name such as "Linear" (every layer that has a weight_packed
   * is a Linear).
   */
  static WeightArgs weightArgs(ObjectNode config, String layer, String source) {
    JsonNode weights = configGroup(config, layer, source).get("weights");
    if (weights == null || !weights.isObject()) {
      throw new BadInputException(
          source + ": the config group of layer '" + layer + "' quantizes no weights");
    }
    return parseWeights((ObjectNode) weights, layer, source);
  }

  /** The config group that targets {@code layer}, by the rules of {@link #weightArgs}. */
  static JsonNode configGroup(ObjectNode config, String layer, String source) {
    JsonNode groups = config.get("config_groups");
    if (groups == null || !groups.isObject() || groups.isEmpty()) {
      throw new BadInputException(source + ": quantization_config has no config_groups");
    }
    JsonNode best = null;
    int bestRank = 0; // 3 = exact name, 2 = regex, 1 = class name
    for (Map.Entry<String, JsonNode> group : groups.properties()) {
      JsonNode targets = group.getValue().get("targets");
      if (targets == null || !targets.isArray()) {
        continue;
      }
      for (JsonNode target : targets) {
        int rank = matchRank(target.asText(), layer, source);
        if (rank > bestRank) {
          bestRank = rank;
          best = group.getValue();
        }
      }
    }
    if (best == null) {
      throw new BadInputException(
          source + ": no config_groups entry targets layer '" + layer + "'");
    }
    return best;
  }

  private static int matchRank(String target, String layer, String source) {
    if (target.equals(layer)) {
      return 3;
    }
    if (target.startsWith("re:")) {
      try {
        return Pattern.compile(target.substring(3)).matcher(layer).lookingAt() ? 2 : 0;
      } catch (PatternSyntaxException e) {
        throw new BadInputException(
            source
                + ": config_groups target '"
                + target
                + "' is not a valid"
                + " regular expression: "
                + e.getDescription());
      }
    }
    return target.equals("Linear") ? 1 : 0;
  }

  private static WeightArgs parseWeights(ObjectNode weights, String layer, String source) {
    String where = source + ": config_groups weights of layer '" + layer + "': ";
    JsonNode bitsNode = weights.get("num_bits");
    int bits = bitsNode == null ? 8 : bitsNode.asInt(-1); // QuantizationArgs default: 8
    if ((bitsNode != null && !bitsNode.canConvertToExactIntegral()) || bits < 2 || bits > 8) {
      throw new BadInputException(
          where + "num_bits " + bitsNode + " is not supported (supported: 2..8)");
    }
    String type = weights.has("type") ? weights.get("type").asText() : "int";
    if (!type.equalsIgnoreCase("int")) {
      throw new BadInputException(where + "type '" + type + "' is not supported (supported: int)");
    }
    boolean symmetric = !weights.has("symmetric") || weights.get("symmetric").asBoolean(true);
    JsonNode groupSizeNode = weights.get("group_size");
    Integer groupSize =
        groupSizeNode == null || groupSizeNode.isNull() ? null : groupSizeNode.asInt();
    String strategy =
        weights.hasNonNull("strategy")
            ? weights.get("strategy").asText().toLowerCase()
            : groupSize == null
                ? "tensor"
                : groupSize > 0 ? "group" : "channel"; // as QuantizationArgs infers
    int size =
        switch (strategy) {
          case "group" -> {
            if (groupSize == null || groupSize <= 0) {
              throw new BadInputException(
                  where + "strategy group needs a positive group_size, got " + groupSizeNode);
            }
            yield groupSize;
          }
          case "channel" -> -1;
          default ->
              throw new BadInputException(
                  where
                      + "strategy '"
                      + strategy
                      + "' is not supported for "
                      + FORMAT
                      + " (supported: group, channel)");
        };
    JsonNode actorderNode = weights.get("actorder");
    boolean actOrder =
        actorderNode != null
            && (actorderNode.isBoolean()
                ? actorderNode.booleanValue()
                : actorderNode.isTextual()
                    && List.of("group", "dynamic").contains(actorderNode.asText()));
    return new WeightArgs(bits, size, symmetric, actOrder);
  }

  private static String text(ObjectNode config, String field) {
    JsonNode node = config.get(field);
    return node == null || node.isNull() ? null : node.asText();
  }

  private static int ceilDiv(int a, int b) {
    return (a + b - 1) / b;
  }
}
