package llmc.formats.quant;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.function.BiFunction;
import llmc.formats.BadInputException;
import llmc.formats.Checkpoint;
import llmc.formats.QuantizedTensor;
import llmc.formats.quant.StoredTensor.Dims;
import llmc.formats.quant.StoredTensor.When;

/**
 * A quantized or sparse-compressed model folder's weights seen as a dense float32 checkpoint, for
 * evaluation. Every quantized linear layer P shows a virtual {@code P.weight} [N, K] = {@link
 * QuantizedTensor#dequantize()} in place of its stored tensors (P.qweight, P.qzeros, P.scales,
 * P.g_idx, or P.weight_packed, P.weight_scale, ...), and every 2:4-compressed one ({@link
 * Sparse24BitmaskLayout}: P.compressed, P.bitmask, P.shape) its dense weight; every other tensor
 * (P.bias, and layers stored densely such as the sparsity config's ignored ones) is passed through
 * as float32. The caller keeps closing the {@link Checkpoint}.
 *
 * <p>A compressed-tensors {@code quantization_config} carries the sparsity next to the
 * quantization, as compressed-tensors' ModelCompressor writes and parses it: {@code
 * "sparsity_config"} sits inside it, and when every key other than {@code quant_method}, {@code
 * version}, {@code sparsity_config} and {@code transform_config} is absent the model is sparse only
 * (not quantized).
 */
public final class QuantizedCheckpoint {

  /** How one method finds, checks and reads its layers. */
  private record Method(
      String markerSuffix,
      List<StoredTensor> tensors,
      BiFunction<Checkpoint, String, Dims> check,
      BiFunction<Checkpoint, String, QuantizedTensor> read) {}

  private static final String SUPPORTED_METHODS = "gptq, compressed-tensors";

  /** The key of the sparsity config inside {@code quantization_config}. */
  static final String SPARSITY_CONFIG = "sparsity_config";

  /**
   * Keys of a compressed-tensors config that say nothing about quantization (ModelCompressor's
   * list).
   */
  private static final Set<String> NOT_QUANTIZATION =
      Set.of("quant_method", "version", SPARSITY_CONFIG, "transform_config");

  private final Checkpoint checkpoint;
  private final Method method; // null: not quantized
  private ObjectNode byteQuantized; // the config of int-/float-quantized layers, else null
  private final Map<String, String> layerOfWeight; // "P.weight" -> "P", quantized layers
  private final Map<String, String> sparseLayerOfWeight; // "P.weight" -> "P", 2:4-compressed layers
  private final Map<String, long[]> weightShapes; // "P.weight" -> [N, K], both kinds
  private final Set<String> names;

  /**
   * @param sparse24 whether layers stored as {@link Sparse24BitmaskLayout} are expected
   */
  private QuantizedCheckpoint(Checkpoint checkpoint, Method method, boolean sparse24) {
    this.checkpoint = checkpoint;
    this.method = method;
    TreeMap<String, String> layers = new TreeMap<>();
    TreeMap<String, String> sparseLayers = new TreeMap<>();
    TreeMap<String, long[]> shapes = new TreeMap<>();
    TreeSet<String> visible = new TreeSet<>(checkpoint.names());
    if (method != null) {
      for (String name : checkpoint.names()) {
        if (name.endsWith(method.markerSuffix())) {
          String layer = name.substring(0, name.length() - method.markerSuffix().length());
          Dims dims = method.check().apply(checkpoint, layer);
          present(layer, name, dims, method.tensors(), visible, shapes);
          layers.put(layer + ".weight", layer);
        }
      }
    }
    if (sparse24) {
      String marker = Sparse24BitmaskLayout.COMPRESSED.suffix();
      for (String name : checkpoint.names()) {
        if (name.endsWith(marker)) {
          String layer = name.substring(0, name.length() - marker.length());
          if (layers.containsKey(layer + ".weight")) {
            throw new BadInputException(
                checkpoint.folder()
                    + ": layer '"
                    + layer
                    + "' is stored both"
                    + " quantized and as "
                    + Sparse24BitmaskLayout.FORMAT
                    + " ('"
                    + name
                    + "')");
          }
          Dims dims = Sparse24BitmaskLayout.checkLayer(checkpoint, layer);
          present(layer, name, dims, Sparse24BitmaskLayout.TENSORS, visible, shapes);
          sparseLayers.put(layer + ".weight", layer);
        }
      }
    }
    this.layerOfWeight = layers;
    this.sparseLayerOfWeight = sparseLayers;
    this.weightShapes = shapes;
    this.names = Collections.unmodifiableSet(visible);
  }

  /** Hides layer P's stored tensors (its bias stays) and shows its virtual P.weight instead. */
  private void present(
      String layer,
      String marker,
      Dims dims,
      List<StoredTensor> tensors,
      Set<String> visible,
      Map<String, long[]> shapes) {
    String weight = layer + ".weight";
    boolean storedAsWeight = tensors.stream().anyMatch(t -> t.suffix().equals(".weight"));
    if (checkpoint.contains(weight) && !storedAsWeight) {
      throw new BadInputException(
          checkpoint.folder()
              + ": tensor '"
              + weight
              + "' is stored next to the"
              + " compressed '"
              + marker
              + "'; which one is the layer's weight?");
    }
    for (StoredTensor tensor : tensors) {
      if (tensor.when() != When.BIAS) {
        visible.remove(tensor.name(layer));
      }
    }
    visible.add(weight);
    shapes.put(weight, new long[] {dims.rows(), dims.cols()});
  }

  /**
   * @param quantizationConfig {@code "quantization_config"} of config.json; null for a model that
   *     is neither quantized nor sparse-compressed (its tensors are then passed through)
   */
  public static QuantizedCheckpoint open(Checkpoint checkpoint, ObjectNode quantizationConfig) {
    String source = checkpoint.folder().resolve("config.json").toString();
    if (quantizationConfig == null) {
      refuseCompressedTensors(checkpoint, source + " has no quantization_config", null, false);
      return new QuantizedCheckpoint(checkpoint, null, false);
    }
    JsonNode methodNode = quantizationConfig.get("quant_method");
    String method = methodNode == null || methodNode.isNull() ? null : methodNode.asText();
    if ("gptq".equals(method)) {
      return new QuantizedCheckpoint(checkpoint, gptq(quantizationConfig, source), false);
    }
    if (CompressedTensorsLayout.QUANT_METHOD.equals(method)) {
      boolean sparse24 =
          Sparse24BitmaskLayout.isThisFormat(quantizationConfig.get(SPARSITY_CONFIG), source);
      if (!quantizes(quantizationConfig)) {
        refuseCompressedTensors(
            checkpoint,
            source + ": quantization_config quantizes nothing (it has no" + " config_groups)",
            null,
            sparse24);
        return new QuantizedCheckpoint(checkpoint, null, sparse24);
      }
      String format = quantizationConfig.path("format").asText();
      if (ByteQuantizedLayout.isThisFormat(format)) {
        Method bytes =
            new Method(
                ByteQuantizedLayout.WEIGHT_SCALE.suffix(),
                ByteQuantizedLayout.tensors(format),
                (in, layer) -> ByteQuantizedLayout.checkLayer(in, layer, quantizationConfig),
                (in, layer) -> ByteQuantizedLayout.read(in, layer, quantizationConfig));
        refuseCompressedTensors(
            checkpoint,
            source + ": quantization_config.sparsity_config is not " + Sparse24BitmaskLayout.FORMAT,
            bytes,
            sparse24);
        QuantizedCheckpoint q = new QuantizedCheckpoint(checkpoint, bytes, sparse24);
        q.byteQuantized = quantizationConfig;
        return q;
      }
      CompressedTensorsLayout.requirePackQuantized(quantizationConfig, source);
      Method packQuantized =
          new Method(
              CompressedTensorsLayout.WEIGHT_PACKED.suffix(),
              CompressedTensorsLayout.TENSORS,
              (in, layer) ->
                  CompressedTensorsLayout.checkLayer(
                      in,
                      layer,
                      CompressedTensorsLayout.weightArgs(quantizationConfig, layer, source)),
              (in, layer) -> CompressedTensorsLayout.read(in, layer, quantizationConfig));
      refuseCompressedTensors(
          checkpoint,
          source + ": quantization_config.sparsity_config is not " + Sparse24BitmaskLayout.FORMAT,
          packQuantized,
          sparse24);
      return new QuantizedCheckpoint(checkpoint, packQuantized, sparse24);
    }
    throw new BadInputException(
        source
            + ": quantization_config.quant_method '"
            + method
            + "' is not supported (supported: "
            + SUPPORTED_METHODS
            + ")");
  }

  /**
   * Whether a {@code quantization_config} quantizes any layer: false for a compressed-tensors
   * config that only carries a {@code sparsity_config} (a 2:4-sparse model that is not quantized),
   * or whose config_groups are empty; true for every other config.
   */
  public static boolean quantizes(ObjectNode quantizationConfig) {
    JsonNode methodNode = quantizationConfig.get("quant_method");
    if (methodNode == null || !CompressedTensorsLayout.QUANT_METHOD.equals(methodNode.asText())) {
      return true;
    }
    // ModelCompressor.parse_quantization_config: no key besides these, no quantization config
    if (quantizationConfig.properties().stream()
        .allMatch(p -> NOT_QUANTIZATION.contains(p.getKey()))) {
      return false;
    }
    // keys such as "format", "ignore" or "quantization_status" quantize nothing without a config
    // group
    JsonNode groups = quantizationConfig.get("config_groups");
    return groups != null && !groups.isNull() && !groups.isEmpty();
  }

  /**
   * Refuses a checkpoint that holds the stored tensors of a layout its config does not announce
   * (which would otherwise be passed through as if they were plain tensors).
   */
  private static void refuseCompressedTensors(
      Checkpoint checkpoint, String why, Method method, boolean sparse24) {
    for (String name : checkpoint.names()) {
      boolean quantizedMarker =
          name.endsWith(GptqLayout.QWEIGHT.suffix())
              || name.endsWith(CompressedTensorsLayout.WEIGHT_PACKED.suffix());
      if (quantizedMarker && method == null) {
        throw new BadInputException(
            why + ", but the checkpoint holds the quantized tensor '" + name + "'");
      }
      String compressed = Sparse24BitmaskLayout.COMPRESSED.suffix();
      if (!sparse24
          && name.endsWith(compressed)
          && checkpoint.contains(
              name.substring(0, name.length() - compressed.length())
                  + Sparse24BitmaskLayout.BITMASK.suffix())) {
        throw new BadInputException(
            why
                + ", but the checkpoint holds the sparse-compressed tensor '"
                + name
                + "' ("
                + Sparse24BitmaskLayout.FORMAT
                + " layers need a sparsity_config of that format inside"
                + " quantization_config)");
      }
    }
  }

  /** bits, group_size, sym and checkpoint_format (or GPTQModel's "format") of a GPTQ config. */
  private static Method gptq(ObjectNode config, String source) {
    JsonNode bitsNode = config.get("bits");
    if (bitsNode == null
        || !bitsNode.canConvertToExactIntegral()
        || !GptqLayout.BITS.contains(bitsNode.asInt())) {
      throw new BadInputException(
          source
              + ": quantization_config.bits "
              + bitsNode
              + " is not supported for gptq (supported: "
              + GptqLayout.BITS
              + ")");
    }
    int bits = bitsNode.asInt();
    JsonNode groupNode = config.get("group_size");
    int groupSize =
        groupNode == null || groupNode.isNull() ? 128 : groupNode.asInt(); // AutoGPTQ's default
    if (groupSize == 0 || groupSize < -1) {
      throw new BadInputException(
          source
              + ": quantization_config.group_size "
              + groupSize
              + " is not a group size (positive, or -1 for per-channel)");
    }
    boolean symmetric = !config.has("sym") || config.get("sym").asBoolean(true);
    JsonNode formatNode =
        config.hasNonNull("checkpoint_format")
            ? config.get("checkpoint_format")
            : config.get("format");
    String formatName = formatNode == null || formatNode.isNull() ? "gptq" : formatNode.asText();
    CheckpointFormat format = CheckpointFormat.fromConfigValue(formatName);
    if (format == null) {
      throw new BadInputException(
          source
              + ": gptq checkpoint_format '"
              + formatName
              + "' is not supported (supported: gptq, gptq_v2)");
    }
    return new Method(
        GptqLayout.QWEIGHT.suffix(),
        GptqLayout.TENSORS,
        (in, layer) -> GptqLayout.checkLayer(in, layer, bits, groupSize),
        (in, layer) -> GptqLayout.read(in, layer, bits, groupSize, symmetric, format));
  }

  /**
   * Sorted: the stored names, less the quantized layers' stored tensors, plus their virtual
   * P.weight.
   */
  public Set<String> names() {
    return names;
  }

  public boolean contains(String name) {
    return names.contains(name);
  }

  public long[] shape(String name) {
    long[] shape = weightShapes.get(name);
    if (shape != null) {
      return shape.clone();
    }
    return checkpoint.info(visible(name)).shape();
  }

  /**
   * Float32, row-major; a quantized layer's weight dequantized exactly as {@link
   * QuantizedTensor#dequantize()}, a 2:4-compressed one's as {@link Sparse24BitmaskLayout#read}.
   */
  public float[] floats(String name) {
    String layer = layerOfWeight.get(name);
    if (layer != null) {
      return method.read().apply(checkpoint, layer).dequantize();
    }
    String sparseLayer = sparseLayerOfWeight.get(name);
    if (sparseLayer != null) {
      return Sparse24BitmaskLayout.read(checkpoint, sparseLayer);
    }
    return checkpoint.floats(visible(name));
  }

  /** The codes of a quantized layer's virtual {@code P.weight}, or null for any other name. */
  public QuantizedTensor quantizedWeight(String name) {
    String layer = layerOfWeight.get(name);
    return layer == null ? null : method.read().apply(checkpoint, layer);
  }

  /**
   * How the runtime quantizes the input of the layer whose (virtual) weight is {@code name}: the
   * config group's {@code input_activations} of a W8A8 checkpoint, else null (weight-only).
   */
  public InputQuantization inputQuantization(String name) {
    String layer = layerOfWeight.get(name);
    return layer == null || byteQuantized == null
        ? null
        : ByteQuantizedLayout.inputQuantization(byteQuantized, layer);
  }

  /** The quantized layers' prefixes P, sorted. */
  public Set<String> quantizedLayers() {
    return Collections.unmodifiableSet(new TreeSet<>(layerOfWeight.values()));
  }

  /** The prefixes P of the layers stored as {@link Sparse24BitmaskLayout}, sorted. */
  public Set<String> sparseLayers() {
    return Collections.unmodifiableSet(new TreeSet<>(sparseLayerOfWeight.values()));
  }

  /** Layer P as stored (codes, scales, zeros, group index). */
  public QuantizedTensor quantized(String layer) {
    if (!layerOfWeight.containsKey(layer + ".weight")) {
      throw new BadInputException(
          checkpoint.folder() + ": '" + layer + "' is not a quantized layer");
    }
    return method.read().apply(checkpoint, layer);
  }

  private String visible(String name) {
    if (!names.contains(name)) {
      boolean sparse =
          Sparse24BitmaskLayout.TENSORS.stream()
              .anyMatch(
                  t ->
                      name.endsWith(t.suffix())
                          && sparseLayerOfWeight.containsValue(
                              name.substring(0, name.length() - t.suffix().length())));
      String why =
          !checkpoint.contains(name)
              ? ""
              : " (it is stored for a "
                  + (sparse ? "2:4-compressed" : "quantized")
                  + " layer; read its weight)";
      throw new BadInputException(
          checkpoint.folder() + ": checkpoint has no tensor '" + name + "'" + why);
    }
    return name;
  }
}
