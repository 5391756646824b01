package llmc.model;

import java.util.Arrays;
import java.util.EnumMap;
import java.util.Map;
import llmc.formats.BadInputException;

/**
 * The parameters of one decoder layer as float32 arrays, checked against the shapes the config
 * implies. Both runtimes (DJL, and the plain-Java reference in the tests) start from this.
 *
 * @param weight per linear layer, {@code [out, in]} row-major
 * @param bias per linear layer that has one, {@code [out]}
 * @param inputNorm {@code [hidden]}
 * @param postAttentionNorm {@code [hidden]}
 * @param qNorm {@code [headDim]}, Qwen3 only (else null)
 * @param kNorm {@code [headDim]}, Qwen3 only (else null)
 */
public record LayerWeights(
    int index,
    Map<Linear, float[]> weight,
    Map<Linear, float[]> bias,
    float[] inputNorm,
    float[] postAttentionNorm,
    float[] qNorm,
    float[] kNorm) {

  public static LayerWeights load(Weights weights, LlamaFamily f, int i) {
    Map<Linear, float[]> weight = new EnumMap<>(Linear.class);
    Map<Linear, float[]> bias = new EnumMap<>(Linear.class);
    for (Linear linear : Linear.values()) {
      long out = linear.outFeatures(f);
      long in = linear.inFeatures(f);
      weight.put(linear, read(weights, linear.weightName(i), out, in));
      if (weights.contains(linear.biasName(i))) {
        bias.put(linear, read(weights, linear.biasName(i), out));
      }
    }
    float[] qNorm = null;
    float[] kNorm = null;
    if (f.variant().hasQkNorm()) {
      qNorm = read(weights, TensorNames.qNorm(i), f.headDim());
      kNorm = read(weights, TensorNames.kNorm(i), f.headDim());
    }
    return new LayerWeights(
        i,
        weight,
        bias,
        read(weights, TensorNames.inputNorm(i), f.hidden()),
        read(weights, TensorNames.postAttentionNorm(i), f.hidden()),
        qNorm,
        kNorm);
  }

  /** Reads a tensor after checking its shape against the one the config implies. */
  public static float[] read(Weights weights, String name, long... expected) {
    check(weights, name, expected);
    return weights.floats(name);
  }

  /** Refuses a missing tensor, or one of another shape than the config implies. */
  public static void check(Weights weights, String name, long... expected) {
    if (!weights.contains(name)) {
      throw new BadInputException(
          "checkpoint has no tensor '"
              + name
              + "', which config.json implies; is the folder a complete Llama-family checkpoint?");
    }
    long[] shape = weights.shape(name);
    if (!Arrays.equals(shape, expected)) {
      throw new BadInputException(
          "tensor '"
              + name
              + "' has shape "
              + Arrays.toString(shape)
              + " but config.json implies "
              + Arrays.toString(expected));
    }
  }
}
