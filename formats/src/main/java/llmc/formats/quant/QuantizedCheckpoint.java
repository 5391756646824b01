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
 * A quantized model folder's weights seen as a dense float32 checkpoint, for evaluation. Every quantized
 * linear layer P shows a virtual {@code P.weight} [N, K] = {@link QuantizedTensor#dequantize()} in place of its
 * stored tensors (P.qweight, P.qzeros, P.scales, P.g_idx, or P.weight_packed, P.weight_scale, ...); every other
 * tensor (P.bias included) is passed through as float32. The caller keeps closing the {@link Checkpoint}.
 */
public final class QuantizedCheckpoint {

    /** How one method finds, checks and reads its layers. */
    private record Method(String markerSuffix, List<StoredTensor> tensors,
            BiFunction<Checkpoint, String, Dims> check, BiFunction<Checkpoint, String, QuantizedTensor> read) {
    }

    private static final String SUPPORTED_METHODS = "gptq, compressed-tensors";

    private final Checkpoint checkpoint;
    private final Method method;                      // null: not quantized
    private final Map<String, String> layerOfWeight;  // "P.weight" -> "P"
    private final Map<String, long[]> weightShapes;   // "P.weight" -> [N, K]
    private final Set<String> names;

    private QuantizedCheckpoint(Checkpoint checkpoint, Method method) {
        this.checkpoint = checkpoint;
        this.method = method;
        TreeMap<String, String> layers = new TreeMap<>();
        TreeMap<String, long[]> shapes = new TreeMap<>();
        TreeSet<String> visible = new TreeSet<>(checkpoint.names());
        if (method != null) {
            for (String name : checkpoint.names()) {
                if (!name.endsWith(method.markerSuffix())) {
                    continue;
                }
                String layer = name.substring(0, name.length() - method.markerSuffix().length());
                String weight = layer + ".weight";
                if (checkpoint.contains(weight)) {
                    throw new BadInputException(checkpoint.folder() + ": tensor '" + weight + "' is stored next to the"
                            + " quantized '" + name + "'; which one is the layer's weight?");
                }
                Dims dims = method.check().apply(checkpoint, layer);
                for (StoredTensor tensor : method.tensors()) {
                    if (tensor.when() != When.BIAS) {
                        visible.remove(tensor.name(layer));
                    }
                }
                visible.add(weight);
                layers.put(weight, layer);
                shapes.put(weight, new long[] {dims.rows(), dims.cols()});
            }
        }
        this.layerOfWeight = layers;
        this.weightShapes = shapes;
        this.names = Collections.unmodifiableSet(visible);
    }

    /**
     * @param quantizationConfig {@code "quantization_config"} of config.json; null for a model that is not
     *                           quantized (its tensors are then passed through)
     */
    public static QuantizedCheckpoint open(Checkpoint checkpoint, ObjectNode quantizationConfig) {
        String source = checkpoint.folder().resolve("config.json").toString();
        if (quantizationConfig == null) {
            for (String name : checkpoint.names()) {
                if (name.endsWith(GptqLayout.QWEIGHT.suffix())
                        || name.endsWith(CompressedTensorsLayout.WEIGHT_PACKED.suffix())) {
                    throw new BadInputException(source + " has no quantization_config, but the checkpoint holds the"
                            + " quantized tensor '" + name + "'");
                }
            }
            return new QuantizedCheckpoint(checkpoint, null);
        }
        JsonNode methodNode = quantizationConfig.get("quant_method");
        String method = methodNode == null || methodNode.isNull() ? null : methodNode.asText();
        if ("gptq".equals(method)) {
            return new QuantizedCheckpoint(checkpoint, gptq(quantizationConfig, source));
        }
        if (CompressedTensorsLayout.QUANT_METHOD.equals(method)) {
            CompressedTensorsLayout.requirePackQuantized(quantizationConfig, source);
            return new QuantizedCheckpoint(checkpoint, new Method(CompressedTensorsLayout.WEIGHT_PACKED.suffix(),
                    CompressedTensorsLayout.TENSORS,
                    (in, layer) -> CompressedTensorsLayout.checkLayer(in, layer,
                            CompressedTensorsLayout.weightArgs(quantizationConfig, layer, source)),
                    (in, layer) -> CompressedTensorsLayout.read(in, layer, quantizationConfig)));
        }
        throw new BadInputException(source + ": quantization_config.quant_method '" + method
                + "' is not supported (supported: " + SUPPORTED_METHODS + ")");
    }

    /** bits, group_size, sym and checkpoint_format (or GPTQModel's "format") of a GPTQ config. */
    private static Method gptq(ObjectNode config, String source) {
        JsonNode bitsNode = config.get("bits");
        if (bitsNode == null || !bitsNode.canConvertToExactIntegral() || !GptqLayout.BITS.contains(bitsNode.asInt())) {
            throw new BadInputException(source + ": quantization_config.bits " + bitsNode
                    + " is not supported for gptq (supported: " + GptqLayout.BITS + ")");
        }
        int bits = bitsNode.asInt();
        JsonNode groupNode = config.get("group_size");
        int groupSize = groupNode == null || groupNode.isNull() ? 128 : groupNode.asInt(); // AutoGPTQ's default
        if (groupSize == 0 || groupSize < -1) {
            throw new BadInputException(source + ": quantization_config.group_size " + groupSize
                    + " is not a group size (positive, or -1 for per-channel)");
        }
        boolean symmetric = !config.has("sym") || config.get("sym").asBoolean(true);
        JsonNode formatNode = config.hasNonNull("checkpoint_format") ? config.get("checkpoint_format")
                : config.get("format");
        String formatName = formatNode == null || formatNode.isNull() ? "gptq" : formatNode.asText();
        CheckpointFormat format = CheckpointFormat.fromConfigValue(formatName);
        if (format == null) {
            throw new BadInputException(source + ": gptq checkpoint_format '" + formatName
                    + "' is not supported (supported: gptq, gptq_v2)");
        }
        return new Method(GptqLayout.QWEIGHT.suffix(), GptqLayout.TENSORS,
                (in, layer) -> GptqLayout.checkLayer(in, layer, bits, groupSize),
                (in, layer) -> GptqLayout.read(in, layer, bits, groupSize, symmetric, format));
    }

    /** Sorted: the stored names, less the quantized layers' stored tensors, plus their virtual P.weight. */
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

    /** Float32, row-major; a quantized layer's weight dequantized exactly as {@link QuantizedTensor#dequantize()}. */
    public float[] floats(String name) {
        String layer = layerOfWeight.get(name);
        if (layer != null) {
            return method.read().apply(checkpoint, layer).dequantize();
        }
        return checkpoint.floats(visible(name));
    }

    /** The quantized layers' prefixes P, sorted. */
    public Set<String> quantizedLayers() {
        return Collections.unmodifiableSet(new TreeSet<>(layerOfWeight.values()));
    }

    /** Layer P as stored (codes, scales, zeros, group index). */
    public QuantizedTensor quantized(String layer) {
        if (!layerOfWeight.containsKey(layer + ".weight")) {
            throw new BadInputException(checkpoint.folder() + ": '" + layer + "' is not a quantized layer");
        }
        return method.read().apply(checkpoint, layer);
    }

    private String visible(String name) {
        if (!names.contains(name)) {
            String why = checkpoint.contains(name) ? " (it is stored for a quantized layer; read its weight)" : "";
            throw new BadInputException(checkpoint.folder() + ": checkpoint has no tensor '" + name + "'" + why);
        }
        return name;
    }
}
