package llmc.formats.quant;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import llmc.formats.BadInputException;
import llmc.formats.Floats;
import llmc.formats.Json;

/**
 * Dynamic per-token quantization of a linear layer's input, as vLLM applies it at run time to a
 * W8A8 checkpoint (compressed-tensors' {@code input_activations} with {@code strategy: token,
 * dynamic: true}). Each token's row {@code x} gets its own scale from its largest magnitude, is
 * rounded to 8 bits and multiplied back, so {@link #apply} gives the values the runtime's 8-bit
 * product sees:
 *
 * <ul>
 *   <li>{@link Type#INT8}: {@code s = max|x| / 127}, {@code q = clamp(rint(x / s), -128, 127)}
 *       (vLLM's {@code dynamic_scaled_int8_quant});
 *   <li>{@link Type#FP8_E4M3}: {@code s = max(max|x| / 448, 1 / (448 * 512))}, {@code q = e4m3(x /
 *       s)} rounded to nearest even and saturated (vLLM's {@code
 *       dynamic_per_token_scaled_fp8_quant}).
 * </ul>
 *
 * A row of zeros stays zeros.
 */
public record InputQuantization(InputQuantization.Type type) {

  public enum Type {
    INT8("int"),
    FP8_E4M3("float");

    /** compressed-tensors' {@code type} of the quantization arguments. */
    public final String configType;

    Type(String configType) {
      this.configType = configType;
    }
  }

  /** The smallest FP8 scale vLLM uses, {@code 1 / (448 * 512)}. */
  static final float MIN_FP8_SCALE = 1f / (Floats.E4M3_MAX * 512);

  /** Quantizes and dequantizes each row of {@code x [rows][cols]} in place. */
  public void apply(float[] x, int rows, int cols) {
    for (int r = 0; r < rows; r++) {
      int from = r * cols;
      float max = 0;
      for (int j = from; j < from + cols; j++) {
        max = Math.max(max, Math.abs(x[j]));
      }
      if (max == 0) {
        continue;
      }
      if (type == Type.INT8) {
        float s = max / 127f;
        for (int j = from; j < from + cols; j++) {
          x[j] = (float) Math.clamp(Math.rint(x[j] / s), -128.0, 127.0) * s;
        }
      } else {
        float s = Math.max(max / Floats.E4M3_MAX, MIN_FP8_SCALE);
        for (int j = from; j < from + cols; j++) {
          x[j] = Floats.f8e4m3ToF32(Floats.f32ToF8e4m3(x[j] / s)) * s;
        }
      }
    }
  }

  /** compressed-tensors' {@code input_activations} for this scheme. */
  public ObjectNode toConfig() {
    ObjectNode a = Json.mapper().createObjectNode();
    a.put("num_bits", 8);
    a.put("type", type.configType);
    a.put("symmetric", true);
    a.putNull("group_size");
    a.put("strategy", "token");
    a.putNull("block_structure");
    a.put("dynamic", true);
    a.putNull("actorder");
    a.putNull("observer");
    a.putNull("observer_kwargs");
    return a;
  }

  /**
   * The scheme of compressed-tensors' {@code input_activations}, or null when it is null or absent
   * (weight-only); anything but 8-bit symmetric dynamic per-token is refused, naming {@code where}.
   */
  static InputQuantization parse(JsonNode a, String where) {
    if (a == null || a.isNull()) {
      return null;
    }
    String type = a.path("type").asText("int");
    int bits = a.path("num_bits").asInt(8);
    boolean symmetric = a.path("symmetric").asBoolean(true);
    String strategy = a.path("strategy").asText("tensor");
    boolean dynamic = a.path("dynamic").asBoolean(false);
    if (bits != 8 || !symmetric || !"token".equals(strategy) || !dynamic) {
      throw new BadInputException(
          where
              + ": input_activations "
              + a
              + " are not supported (supported: 8-bit int or float, symmetric, strategy token,"
              + " dynamic)");
    }
    return switch (type) {
      case "int" -> new InputQuantization(Type.INT8);
      case "float" -> new InputQuantization(Type.FP8_E4M3);
      default ->
          throw new BadInputException(
              where + ": input_activations type '" + type + "' is not supported (int, float)");
    };
  }
}
