package llmc.formats.quant;

import static llmc.formats.quant.StoredTensor.When.ALWAYS;
import static llmc.formats.quant.StoredTensor.When.BIAS;

import com.fasterxml.jackson.databind.node.ObjectNode;
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
 * The AutoGPTQ / GPTQModel checkpoint layout (read by transformers, vLLM, exllama), per linear
 * layer P with N outputs, K inputs, b bits and G groups. Packing follows AutoGPTQ's {@code
 * QuantLinear.pack} (auto_gptq/nn_modules/qlinear/qlinear_cuda_old.py): codes form one bit stream
 * along K in each output column, zero points one bit stream along N in each group row, {@link
 * BitPacking#BIT_STREAM}. Value: {@code w[n][k] = scales[g_idx[k]][n] * (q - z)}.
 */
public final class GptqLayout {

  /** The bit widths AutoGPTQ's kernels and packers know. */
  public static final List<Integer> BITS = List.of(2, 3, 4, 8);

  // One row per stored tensor; shapes from the layer's Dims (N rows, K cols, G groups, b bits).
  static final StoredTensor QWEIGHT =
      new StoredTensor(
          ".qweight",
          DType.I32,
          d -> new long[] {(long) d.cols() * d.bits() / 32, d.rows()},
          ALWAYS, // [K*b/32, N]
          "codes, a bit stream along K per output column");
  static final StoredTensor QZEROS =
      new StoredTensor(
          ".qzeros",
          DType.I32,
          d -> new long[] {d.groups(), (long) d.rows() * d.bits() / 32},
          ALWAYS, // [G, N*b/32]
          "zero points, a bit stream along N per group (v1: z - 1, v2: z)");
  static final StoredTensor SCALES =
      new StoredTensor(
          ".scales", DType.F16, d -> new long[] {d.groups(), d.rows()}, ALWAYS, "scales"); // [G, N]
  static final StoredTensor G_IDX =
      new StoredTensor(
          ".g_idx",
          DType.I32,
          d -> new long[] {d.cols()},
          ALWAYS,
          "group of each input column"); // [K]
  static final StoredTensor BIAS_F16 =
      new StoredTensor(".bias", DType.F16, d -> new long[] {d.rows()}, BIAS, "bias"); // [N]

  /** The layout, in the order AutoGPTQ's state dict lists it. */
  static final List<StoredTensor> TENSORS = List.of(QWEIGHT, QZEROS, SCALES, G_IDX, BIAS_F16);

  private GptqLayout() {}

  /**
   * K and N must be multiples of this so that b-bit codes fill whole int32 words: {@code 32 /
   * gcd(32, b)} = 16 for 2 bits, 32 for 3, 8 for 4, 4 for 8.
   */
  public static int dimensionMultiple(int bits) {
    return 32 / Integer.lowestOneBit(bits | 32);
  }

  /**
   * Stores {@code q} as P.qweight, P.qzeros, P.scales, P.g_idx and, if {@code bias != null},
   * P.bias.
   */
  public static void write(
      SafetensorsWriter out,
      String prefix,
      QuantizedTensor q,
      float[] bias,
      CheckpointFormat v,
      List<String> warnings) {
    if (q.mins() != null) {
      throw new IllegalArgumentException(
          "layer '"
              + prefix
              + "': float group offsets (ggml's _1 grids) have no"
              + " place in this layout; store them as GGUF");
    }
    int bits = q.bits();
    requireSupportedBits(bits);
    int n = q.rows();
    int k = q.cols();
    int multiple = dimensionMultiple(bits);
    if (k % multiple != 0 || n % multiple != 0) {
      throw new IllegalArgumentException(
          "layer '"
              + prefix
              + "': "
              + bits
              + "-bit GPTQ packs codes into whole"
              + " int32 words, so in_features K and out_features N must be multiples of "
              + multiple
              + " (2 bits: 16, 3 bits: 32, 4 bits: 8, 8 bits: 4); got K="
              + k
              + ", N="
              + n);
    }
    if (bias != null && bias.length != n) {
      throw new IllegalArgumentException(
          "layer '" + prefix + "': bias has " + bias.length + " values, N=" + n);
    }
    int groups = q.groups();
    Layouts.checkGroupIndex(prefix, q);
    int top = 1 << bits;
    int wrapped = 0;
    for (int zero : q.zeros()) {
      if (zero < 0 || zero >= top) {
        throw new IllegalArgumentException(
            "layer '" + prefix + "': zero point " + zero + " is outside [0, " + top + ")");
      }
      if (zero == 0 && v == CheckpointFormat.V1) {
        wrapped++;
      }
    }
    if (wrapped > 0) {
      warnings.add(
          "tensor '"
              + QZEROS.name(prefix)
              + "': "
              + wrapped
              + " zero point(s) are 0, which "
              + "checkpoint_format \"gptq\" (v1) stores as z - 1 = -1, wrapped to "
              + (top - 1)
              + "; v1 readers will use "
              + top
              + " there. Write checkpoint_format \"gptq_v2\" to keep them.");
    }
    Layouts.warnIfRounded(prefix + SCALES.suffix(), q.scales(), DType.F16, warnings);

    Dims dims = new Dims(n, k, groups, bits);
    int mask = top - 1;
    int offset = v.storedZeroOffset();
    int[] qweight = BitPacking.BIT_STREAM.pack(bits, n, k, q.codes(), true, QWEIGHT.name(prefix));
    int[] qzeros =
        BitPacking.BIT_STREAM.pack(
            bits,
            groups,
            n,
            (g, col) -> (q.zero(g, col) + offset) & mask,
            false,
            QZEROS.name(prefix));
    out.writeInts(QWEIGHT.name(prefix), DType.I32, QWEIGHT.shape().apply(dims), qweight);
    out.writeInts(QZEROS.name(prefix), DType.I32, QZEROS.shape().apply(dims), qzeros);
    out.writeFloats(SCALES.name(prefix), DType.F16, SCALES.shape().apply(dims), q.scales());
    out.writeInts(G_IDX.name(prefix), DType.I32, G_IDX.shape().apply(dims), q.gIdx());
    if (bias != null) {
      out.writeFloats(BIAS_F16.name(prefix), DType.F16, BIAS_F16.shape().apply(dims), bias);
    }
  }

  /**
   * Reads layer P back. N comes from P.qweight, K from P.g_idx (or, for checkpoints without it,
   * from the rows of P.qweight), G from P.scales. A v1 zero point stored wrapped (z = 0) reads back
   * as {@code 2^b}, the value every v1 reader uses.
   *
   * @param groupSize -1 for one group per row
   */
  public static QuantizedTensor read(
      Checkpoint in,
      String prefix,
      int bits,
      int groupSize,
      boolean symmetric,
      CheckpointFormat v) {
    Dims dims = checkLayer(in, prefix, bits, groupSize);
    boolean hasGroupIndex = in.contains(G_IDX.name(prefix));
    int n = dims.rows();
    int k = dims.cols();
    int[] codes =
        BitPacking.BIT_STREAM.unpack(bits, n, k, Layouts.ints(in, QWEIGHT.name(prefix)), true);
    int[] zeros =
        BitPacking.BIT_STREAM.unpack(
            bits, dims.groups(), n, Layouts.ints(in, QZEROS.name(prefix)), false);
    for (int i = 0; i < zeros.length; i++) {
      zeros[i] -= v.storedZeroOffset();
    }
    int[] gIdx =
        hasGroupIndex
            ? Layouts.ints(in, G_IDX.name(prefix))
            : Layouts.trivialGroupIndex(k, groupSize);
    Layouts.checkGroupIndex(in, G_IDX.name(prefix), gIdx, dims.groups());
    return new QuantizedTensor(
        n,
        k,
        bits,
        groupSize,
        symmetric,
        Layouts.toBytes(codes),
        in.floats(SCALES.name(prefix)),
        zeros,
        gIdx,
        DType.F16);
  }

  /**
   * Checks every stored tensor of layer P against the table (headers only) and gives its
   * dimensions.
   */
  static Dims checkLayer(Checkpoint in, String prefix, int bits, int groupSize) {
    if (!BITS.contains(bits)) {
      throw new BadInputException(
          in.folder() + ": layer '" + prefix + "': GPTQ stores " + BITS + " bits, not " + bits);
    }
    Dims dims = dims(in, prefix, bits, groupSize);
    String layout = bits + "-bit GPTQ";
    QWEIGHT.check(in, prefix, dims, layout);
    QZEROS.check(in, prefix, dims, layout);
    SCALES.check(in, prefix, dims, layout);
    if (in.contains(G_IDX.name(prefix))) {
      G_IDX.check(in, prefix, dims, layout);
    }
    return dims;
  }

  private static Dims dims(Checkpoint in, String prefix, int bits, int groupSize) {
    String layout = bits + "-bit GPTQ";
    TensorInfo qweight = Layouts.info(in, QWEIGHT.name(prefix), 2, layout);
    int n = Layouts.toInt(qweight.dim(1));
    int k;
    if (in.contains(G_IDX.name(prefix))) {
      k = Layouts.toInt(Layouts.info(in, G_IDX.name(prefix), 1, layout).dim(0));
    } else {
      k = Layouts.toInt(qweight.dim(0) * 32 / bits);
    }
    int multiple = dimensionMultiple(bits);
    if (k % multiple != 0 || n % multiple != 0) {
      throw new BadInputException(
          in.folder()
              + ": tensor '"
              + qweight.name()
              + "' "
              + layout
              + " with K="
              + k
              + ", N="
              + n
              + ": K and N must be multiples of "
              + multiple
              + " for "
              + bits
              + "-bit codes");
    }
    int groups = Layouts.toInt(Layouts.info(in, SCALES.name(prefix), 2, layout).dim(0));
    int expectedGroups = groupSize > 0 ? (k + groupSize - 1) / groupSize : 1;
    if (groups != expectedGroups) {
      throw new BadInputException(
          in.folder()
              + ": tensor '"
              + SCALES.name(prefix)
              + "' has "
              + groups
              + " groups but group_size "
              + groupSize
              + " with K="
              + k
              + " makes "
              + expectedGroups);
    }
    return new Dims(n, k, groups, bits);
  }

  /**
   * {@code "quantization_config"} for config.json (GPTQModel writes the same keys to
   * quantize_config.json).
   *
   * @param groupSize -1 for per-channel
   */
  public static ObjectNode quantizationConfig(
      int bits,
      int groupSize,
      boolean descAct,
      boolean sym,
      double dampPercent,
      boolean trueSequential,
      boolean staticGroups,
      CheckpointFormat v) {
    requireSupportedBits(bits);
    ObjectNode config = Json.mapper().createObjectNode();
    config.put("quant_method", "gptq");
    config.put("bits", bits);
    config.put("group_size", groupSize);
    config.put("desc_act", descAct);
    config.put("sym", sym);
    config.put("damp_percent", dampPercent);
    config.put("true_sequential", trueSequential);
    config.put("static_groups", staticGroups);
    config.put("checkpoint_format", v.configValue());
    return config;
  }

  static void requireSupportedBits(int bits) {
    if (!BITS.contains(bits)) {
      throw new IllegalArgumentException(
          "GPTQ checkpoints hold 2, 3, 4 or 8 bits, not "
              + bits
              + "; "
              + bits
              + "-bit codes can be stored as compressed-tensors pack-quantized (any of 2..8 bits)");
    }
  }
}
