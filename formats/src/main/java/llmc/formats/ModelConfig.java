package llmc.formats;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;

/**
 * config.json, typed for the Llama family; unknown keys are kept and written back unchanged, in
 * order.
 */
public final class ModelConfig {

  /**
   * "rope_scaling": llama3-style fields default to factor 1, low 1, high 4, original = max
   * positions.
   */
  public record RopeScaling(
      String type,
      double factor,
      double lowFreqFactor,
      double highFreqFactor,
      int originalMaxPositionEmbeddings) {}

  private final ObjectNode json;
  private final String source;
  private final List<String> architectures;
  private final int hiddenSize;
  private final int intermediateSize;
  private final int numHiddenLayers;
  private final int numAttentionHeads;
  private final int numKeyValueHeads;
  private final int headDim;
  private final int vocabSize;
  private final int maxPositionEmbeddings;
  private final double rmsNormEps;
  private final double ropeTheta;
  private final RopeScaling ropeScaling;

  private ModelConfig(ObjectNode json, String source) {
    this.json = json;
    this.source = source;
    this.architectures = readArchitectures();
    this.hiddenSize = requiredInt("hidden_size");
    this.intermediateSize = requiredInt("intermediate_size");
    this.numHiddenLayers = requiredInt("num_hidden_layers");
    this.numAttentionHeads = requiredInt("num_attention_heads");
    this.vocabSize = requiredInt("vocab_size");
    this.numKeyValueHeads = optionalInt(json, "num_key_value_heads", numAttentionHeads);
    this.headDim = optionalInt(json, "head_dim", hiddenSize / numAttentionHeads);
    this.maxPositionEmbeddings = optionalInt(json, "max_position_embeddings", 2048);
    this.rmsNormEps = optionalDouble(json, "rms_norm_eps", 1e-6);
    ObjectNode ropeParameters = json.get("rope_parameters") instanceof ObjectNode o ? o : null;
    this.ropeTheta =
        optionalDouble(
            json,
            "rope_theta",
            ropeParameters == null ? 10000 : optionalDouble(ropeParameters, "rope_theta", 10000));
    this.ropeScaling = readRopeScaling(ropeParameters);
    checkBounds();
  }

  /**
   * Every size within what any released model uses, many times over (so that a hostile value is
   * refused before anything is allocated or looped over), and every real number finite.
   */
  private void checkBounds() {
    JsonNode quantization = json.get("quantization_config");
    if (quantization != null && !quantization.isNull() && !quantization.isObject()) {
      throw new BadInputException(
          source
              + ": \"quantization_config\" is "
              + quantization
              + "; expected an object (GPTQ's or compressed-tensors' settings)");
    }
    atMost("hidden_size", hiddenSize, 1 << 18);
    atMost("intermediate_size", intermediateSize, 1 << 20);
    atMost("num_hidden_layers", numHiddenLayers, 1 << 10);
    atMost("num_attention_heads", numAttentionHeads, 1 << 12);
    atMost("vocab_size", vocabSize, 1 << 24);
    if (numKeyValueHeads < 1 || numKeyValueHeads > numAttentionHeads) {
      throw new BadInputException(
          source
              + ": \"num_key_value_heads\" is "
              + numKeyValueHeads
              + "; expected 1 to num_attention_heads ("
              + numAttentionHeads
              + ")");
    }
    if (headDim < 1) {
      throw new BadInputException(
          source + ": \"head_dim\" is " + headDim + "; expected a positive integer");
    }
    atMost("head_dim", headDim, 1 << 12);
    if (maxPositionEmbeddings < 1) {
      throw new BadInputException(
          source
              + ": \"max_position_embeddings\" is "
              + maxPositionEmbeddings
              + "; expected a positive integer");
    }
    if (!(rmsNormEps > 0 && rmsNormEps < 1)) {
      throw new BadInputException(
          source + ": \"rms_norm_eps\" is " + rmsNormEps + "; expected a small positive number");
    }
    if (!(ropeTheta > 0 && Double.isFinite(ropeTheta))) {
      throw new BadInputException(
          source + ": \"rope_theta\" is " + ropeTheta + "; expected a positive finite number");
    }
    if (ropeScaling != null
        && !(ropeScaling.factor() > 0
            && Double.isFinite(ropeScaling.factor())
            && Double.isFinite(ropeScaling.lowFreqFactor())
            && Double.isFinite(ropeScaling.highFreqFactor()))) {
      throw new BadInputException(
          source + ": \"rope_scaling\" holds a factor that is not a positive finite number");
    }
  }

  private void atMost(String key, int value, int most) {
    if (value > most) {
      throw new BadInputException(
          source
              + ": \""
              + key
              + "\" is "
              + value
              + "; llmc accepts at most "
              + most
              + " (no model comes near it: is the file damaged?)");
    }
  }

  public static ModelConfig read(Path configJson) {
    JsonNode root;
    try {
      root = Json.mapper().readTree(Files.readString(configJson));
    } catch (JsonProcessingException e) {
      throw new BadInputException(configJson + ": not valid JSON: " + Json.describe(e), e);
    } catch (IOException e) {
      throw new BadInputException(configJson + ": cannot read: " + e.getMessage(), e);
    }
    if (!(root instanceof ObjectNode object)) {
      throw new BadInputException(configJson + ": not a JSON object");
    }
    return new ModelConfig(object, configJson.toString());
  }

  /**
   * @param sourceName named in error messages
   */
  public static ModelConfig fromJson(ObjectNode json, String sourceName) {
    return new ModelConfig(json.deepCopy(), sourceName);
  }

  private List<String> readArchitectures() {
    JsonNode node = json.get("architectures");
    if (node == null || node.isNull()) {
      throw missing("architectures");
    }
    if (!node.isArray() || node.isEmpty()) {
      throw new BadInputException(
          source + ": \"architectures\" must be a non-empty array of class names");
    }
    List<String> names = new ArrayList<>();
    for (JsonNode n : node) {
      if (!n.isTextual()) {
        throw new BadInputException(
            source + ": \"architectures\" holds " + n + ", not a class name");
      }
      names.add(n.textValue());
    }
    return List.copyOf(names);
  }

  private RopeScaling readRopeScaling(ObjectNode ropeParameters) {
    JsonNode node = json.get("rope_scaling");
    if (node == null || node.isNull()) {
      String type =
          ropeParameters == null ? null : optionalString(ropeParameters, "rope_type", null);
      if (type == null || type.equals("default")) {
        return null;
      }
      node = ropeParameters;
    }
    if (!(node instanceof ObjectNode scaling)) {
      throw new BadInputException(source + ": \"rope_scaling\" must be an object or null");
    }
    String type = optionalString(scaling, "rope_type", optionalString(scaling, "type", null));
    return new RopeScaling(
        type,
        optionalDouble(scaling, "factor", 1.0),
        optionalDouble(scaling, "low_freq_factor", 1.0),
        optionalDouble(scaling, "high_freq_factor", 4.0),
        optionalInt(scaling, "original_max_position_embeddings", maxPositionEmbeddings));
  }

  private BadInputException missing(String key) {
    return new BadInputException(source + ": missing required key \"" + key + "\"");
  }

  private int requiredInt(String key) {
    JsonNode node = json.get(key);
    if (node == null || node.isNull()) {
      throw missing(key);
    }
    int value = optionalInt(json, key, 0);
    if (value <= 0) {
      throw new BadInputException(
          source + ": \"" + key + "\" must be a positive integer, found " + value);
    }
    return value;
  }

  private int optionalInt(ObjectNode object, String key, int fallback) {
    JsonNode node = object.get(key);
    if (node == null || node.isNull()) {
      return fallback;
    }
    if (!node.isIntegralNumber() || !node.canConvertToInt()) {
      throw new BadInputException(source + ": \"" + key + "\" must be an integer, found " + node);
    }
    return node.intValue();
  }

  private double optionalDouble(ObjectNode object, String key, double fallback) {
    JsonNode node = object.get(key);
    if (node == null || node.isNull()) {
      return fallback;
    }
    if (!node.isNumber()) {
      throw new BadInputException(source + ": \"" + key + "\" must be a number, found " + node);
    }
    return node.doubleValue();
  }

  private boolean optionalBoolean(String key, boolean fallback) {
    JsonNode node = json.get(key);
    if (node == null || node.isNull()) {
      return fallback;
    }
    if (!node.isBoolean()) {
      throw new BadInputException(
          source + ": \"" + key + "\" must be true or false, found " + node);
    }
    return node.booleanValue();
  }

  private String optionalString(ObjectNode object, String key, String fallback) {
    JsonNode node = object.get(key);
    if (node == null || node.isNull()) {
      return fallback;
    }
    if (!node.isTextual()) {
      throw new BadInputException(source + ": \"" + key + "\" must be a string, found " + node);
    }
    return node.textValue();
  }

  /** An int, or the first of an array of ints (eos_token_id may be either). */
  private Integer tokenId(String key) {
    JsonNode node = json.get(key);
    if (node != null && node.isArray()) {
      node = node.isEmpty() ? null : node.get(0);
    }
    if (node == null || node.isNull()) {
      return null;
    }
    if (!node.isIntegralNumber() || !node.canConvertToInt()) {
      throw new BadInputException(source + ": \"" + key + "\" must be a token id, found " + node);
    }
    return node.intValue();
  }

  public String source() {
    return source;
  }

  public List<String> architectures() {
    return architectures;
  }

  /** The first of architectures(). */
  public String architecture() {
    return architectures.getFirst();
  }

  /** "model_type", may be null. */
  public String modelType() {
    return optionalString(json, "model_type", null);
  }

  public int hiddenSize() {
    return hiddenSize;
  }

  public int intermediateSize() {
    return intermediateSize;
  }

  public int numHiddenLayers() {
    return numHiddenLayers;
  }

  public int numAttentionHeads() {
    return numAttentionHeads;
  }

  /** Defaults to numAttentionHeads (no grouped-query attention). */
  public int numKeyValueHeads() {
    return numKeyValueHeads;
  }

  /** "head_dim" when present, else hidden / heads. */
  public int headDim() {
    return headDim;
  }

  public int vocabSize() {
    return vocabSize;
  }

  public int maxPositionEmbeddings() {
    return maxPositionEmbeddings;
  }

  public double rmsNormEps() {
    return rmsNormEps;
  }

  public double ropeTheta() {
    return ropeTheta;
  }

  /** Null when absent or null. */
  public RopeScaling ropeScaling() {
    return ropeScaling;
  }

  public boolean tieWordEmbeddings() {
    return optionalBoolean("tie_word_embeddings", false);
  }

  /** Qwen2 has q/k/v biases without saying so in its config. */
  public boolean attentionBias() {
    boolean qwen2 = "qwen2".equals(modelType()) || "Qwen2ForCausalLM".equals(architecture());
    return optionalBoolean("attention_bias", qwen2);
  }

  public boolean mlpBias() {
    return optionalBoolean("mlp_bias", false);
  }

  public Integer bosTokenId() {
    return tokenId("bos_token_id");
  }

  /** The first one when the config lists several. */
  public Integer eosTokenId() {
    return tokenId("eos_token_id");
  }

  /** "torch_dtype" (or the newer "dtype"), may be null. */
  public String torchDtype() {
    return optionalString(json, "torch_dtype", optionalString(json, "dtype", null));
  }

  public String hiddenAct() {
    return optionalString(json, "hidden_act", "silu");
  }

  public Integer slidingWindow() {
    return json.has("sliding_window") && !json.get("sliding_window").isNull()
        ? optionalInt(json, "sliding_window", 0)
        : null;
  }

  /** A deep copy of the whole tree, free to edit. */
  public ObjectNode json() {
    return json.deepCopy();
  }

  /** A modified copy, validated like a read one. */
  public ModelConfig with(Consumer<ObjectNode> edit) {
    ObjectNode copy = json.deepCopy();
    edit.accept(copy);
    return new ModelConfig(copy, source);
  }

  /** Pretty-printed, key order preserved. */
  public void write(Path configJson) {
    Json.writePretty(configJson, json);
  }

  @Override
  public String toString() {
    return Json.pretty(json);
  }
}
