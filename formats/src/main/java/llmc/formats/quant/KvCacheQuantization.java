package llmc.formats.quant;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import llmc.formats.BadInputException;
import llmc.formats.Floats;
import llmc.formats.Json;

/**
 * How one layer's key/value cache holds its entries: the keys (after RoPE) and values each
 * attention step writes are rounded to 8 bits, and attention reads them back. {@link #apply} gives
 * the values attention then sees.
 *
 * <ul>
 *   <li>{@link Type#FP8_STATIC}: one calibrated scale per layer for the keys and one for the values
 *       (vLLM's FP8 KV cache, compressed-tensors' {@code kv_cache_scheme} with {@code type: float,
 *       strategy: tensor, dynamic: false} and the tensors {@code self_attn.k_scale}, {@code
 *       v_scale}): {@code k' = e4m3(k / kScale) kScale}, saturating at ±448;
 *   <li>{@link Type#INT8_DYNAMIC}: a scale per token and key/value head from its own largest
 *       magnitude, {@code s = max|k_h| / 127}, {@code k' = clamp(rint(k / s), -128, 127) s};
 *       nothing is stored (vLLM has no int8 KV cache: this scheme is for measuring what one would
 *       cost).
 * </ul>
 *
 * @param keyScale the FP8 keys' scale, or NaN for the dynamic scheme
 * @param valueScale the FP8 values' scale, or NaN
 */
public record KvCacheQuantization(KvCacheQuantization.Type type, float keyScale, float valueScale) {

  public enum Type {
    FP8_STATIC,
    INT8_DYNAMIC
  }

  /** The tensors of a layer's FP8 scales: {@code P.self_attn.k_scale} and {@code v_scale}. */
  public static final String KEY_SCALE = "self_attn.k_scale";

  public static final String VALUE_SCALE = "self_attn.v_scale";

  /** The dynamic int8 scheme (no stored scales). */
  public static KvCacheQuantization int8Dynamic() {
    return new KvCacheQuantization(Type.INT8_DYNAMIC, Float.NaN, Float.NaN);
  }

  /** Rounds keys and values {@code [rows][kvHeads * headDim]} in place. */
  public void apply(float[] k, float[] v, int rows, int kvHeads, int headDim) {
    if (type == Type.FP8_STATIC) {
      fp8(k, rows * kvHeads * headDim, keyScale);
      fp8(v, rows * kvHeads * headDim, valueScale);
    } else {
      int8(k, rows * kvHeads, headDim);
      int8(v, rows * kvHeads, headDim);
    }
  }

  private static void fp8(float[] x, int n, float scale) {
    for (int i = 0; i < n; i++) {
      x[i] = Floats.f8e4m3ToF32(Floats.f32ToF8e4m3(x[i] / scale)) * scale;
    }
  }

  /** Each run of {@code width} values (one head of one token) on its own int8 scale. */
  private static void int8(float[] x, int runs, int width) {
    for (int r = 0; r < runs; r++) {
      int from = r * width;
      float max = 0;
      for (int i = from; i < from + width; i++) {
        max = Math.max(max, Math.abs(x[i]));
      }
      if (max == 0) {
        continue;
      }
      float s = max / 127f;
      for (int i = from; i < from + width; i++) {
        x[i] = (float) Math.clamp(Math.rint(x[i] / s), -128.0, 127.0) * s;
      }
    }
  }

  /** compressed-tensors' {@code kv_cache_scheme} of a type. */
  public static ObjectNode config(Type type) {
    ObjectNode a = Json.mapper().createObjectNode();
    a.put("num_bits", 8);
    a.put("type", type == Type.FP8_STATIC ? "float" : "int");
    a.put("symmetric", true);
    a.putNull("group_size");
    a.put("strategy", type == Type.FP8_STATIC ? "tensor" : "attn_head");
    a.put("dynamic", type != Type.FP8_STATIC);
    a.putNull("actorder");
    a.putNull("observer");
    return a;
  }

  /**
   * The type a {@code kv_cache_scheme} describes, or null when it is null or absent; other schemes
   * are refused, naming {@code where}.
   */
  public static Type parse(JsonNode scheme, String where) {
    if (scheme == null || scheme.isNull()) {
      return null;
    }
    String type = scheme.path("type").asText("int");
    boolean dynamic = scheme.path("dynamic").asBoolean(false);
    String strategy = scheme.path("strategy").asText("tensor");
    if (scheme.path("num_bits").asInt(8) == 8 && scheme.path("symmetric").asBoolean(true)) {
      if (type.equals("float") && !dynamic && strategy.equals("tensor")) {
        return Type.FP8_STATIC;
      }
      if (type.equals("int") && dynamic && strategy.equals("attn_head")) {
        return Type.INT8_DYNAMIC;
      }
    }
    throw new BadInputException(
        where
            + ": kv_cache_scheme "
            + scheme
            + " is not supported (supported: 8-bit float, strategy tensor, static; 8-bit int,"
            + " strategy attn_head, dynamic)");
  }
}
