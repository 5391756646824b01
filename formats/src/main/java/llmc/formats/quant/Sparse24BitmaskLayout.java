package llmc.formats.quant;

import static llmc.formats.quant.StoredTensor.When.ALWAYS;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.Arrays;
import java.util.List;
import llmc.formats.BadInputException;
import llmc.formats.Checkpoint;
import llmc.formats.DType;
import llmc.formats.Json;
import llmc.formats.SafetensorsWriter;
import llmc.formats.TensorInfo;
import llmc.formats.quant.StoredTensor.Dims;

/**
 * compressed-tensors' {@code sparse-24-bitmask} layout (vLLM / llm-compressor's storage of a
 * 2:4-sparse model), per linear layer P with N outputs and K inputs, K a multiple of 4. Follows
 * compressed-tensors' Sparse24BitMaskCompressor
 * (src/compressed_tensors/compressors/sparse_compressors/sparse_24_bitmask.py): {@code
 * get_24_bytemasks} keeps exactly 2 entries of every 4 along K (the two largest magnitudes, so a
 * block with fewer than 2 non-zeros keeps zeros too), {@code compressed = w[mask].reshape(N, K /
 * 2)} holds the kept values in row-major order, {@code pack_bitmasks} is {@code
 * numpy.packbits(mask, axis=-1, bitorder="little")} (bit {@code k % 8} of byte {@code k / 8}, the
 * last byte zero padded), and {@code shape} is {@code torch.tensor([N, K]).reshape(-1, 1)}: I64 [2,
 * 1], the shape vLLM's CompressedTensors24 scheme allocates for it. Our writer keeps the non-zeros
 * of each block and fills up with its first zeros.
 */
public final class Sparse24BitmaskLayout {

  /** {@code sparsity_config.format}. */
  public static final String FORMAT = "sparse-24-bitmask";

  /** {@code sparsity_config.sparsity_structure}. */
  public static final String STRUCTURE = "2:4";

  // One row per stored tensor; shapes from the layer's Dims (N rows, K cols).
  static final StoredTensor COMPRESSED =
      new StoredTensor(
          ".compressed",
          null,
          d -> new long[] {d.rows(), d.cols() / 2},
          ALWAYS, // [N, K/2]
          "the 2 kept values of every 4 along K, in the model dtype");
  static final StoredTensor BITMASK =
      new StoredTensor(
          ".bitmask",
          DType.U8,
          d -> new long[] {d.rows(), ceilDiv(d.cols(), 8)},
          ALWAYS, // [N, ceil(K/8)]
          "kept positions, bit k % 8 of byte k / 8");
  static final StoredTensor SHAPE =
      new StoredTensor(".shape", DType.I64, d -> new long[] {2, 1}, ALWAYS, "(N, K)"); // [2, 1]

  /** The layout. */
  static final List<StoredTensor> TENSORS = List.of(COMPRESSED, BITMASK, SHAPE);

  private static final String LAYOUT = "compressed-tensors " + FORMAT;

  private Sparse24BitmaskLayout() {}

  /**
   * Stores the 2:4-sparse {@code w} [n][k] (row-major) as P.compressed (in {@code dtype}),
   * P.bitmask and P.shape. vLLM's 2:4 kernels further need N and K to be multiples of 8 (its
   * CompressedTensors24 scheme allocates {@code bitmask} as [N, K / 8]); this layout itself only
   * needs K to be a multiple of 4.
   *
   * @throws IllegalArgumentException naming the layer: k % 4 != 0, a block of 4 with more than 2
   *     non-zeros, a dtype other than F32, F16, BF16
   */
  public static void write(
      SafetensorsWriter out, String prefix, float[] w, int n, int k, DType dtype) {
    if (dtype != DType.F32 && dtype != DType.F16 && dtype != DType.BF16) {
      throw new IllegalArgumentException(
          "layer '"
              + prefix
              + "': "
              + FORMAT
              + " keeps the values in the model"
              + " dtype F32, F16 or BF16, not "
              + dtype);
    }
    if (n <= 0 || k <= 0 || (long) n * k != w.length) {
      throw new IllegalArgumentException(
          "layer '" + prefix + "': " + w.length + " values for a [" + n + ", " + k + "] matrix");
    }
    if (k % 4 != 0) {
      throw new IllegalArgumentException(
          "layer '"
              + prefix
              + "': "
              + FORMAT
              + " keeps 2 of every 4 inputs,"
              + " so in_features K must be a multiple of 4; got K="
              + k);
    }
    Dims dims = dims(n, k);
    int maskBytes = ceilDiv(k, 8);
    float[] kept = new float[n * (k / 2)];
    int[] mask = new int[n * maskBytes];
    int next = 0;
    for (int row = 0; row < n; row++) {
      for (int block = 0; block < k; block += 4) {
        int at = row * k + block;
        int nonZeros = 0;
        for (int j = 0; j < 4; j++) {
          if (w[at + j] != 0) {
            nonZeros++;
          }
        }
        if (nonZeros > 2) {
          throw new IllegalArgumentException(
              "layer '"
                  + prefix
                  + "' is not 2:4 sparse: row "
                  + row
                  + ", columns "
                  + block
                  + ".."
                  + (block + 3)
                  + " hold "
                  + nonZeros
                  + " non-zeros "
                  + Arrays.toString(Arrays.copyOfRange(w, at, at + 4)));
        }
        int zerosToKeep = 2 - nonZeros; // the first zeros of the block fill the 2 kept places
        for (int j = 0; j < 4; j++) {
          boolean keep = w[at + j] != 0;
          if (!keep && zerosToKeep > 0) {
            keep = true;
            zerosToKeep--;
          }
          if (keep) {
            kept[next++] = w[at + j];
            int col = block + j;
            mask[row * maskBytes + col / 8] |= 1 << (col % 8);
          }
        }
      }
    }
    out.writeFloats(COMPRESSED.name(prefix), dtype, COMPRESSED.shape().apply(dims), kept);
    out.writeInts(BITMASK.name(prefix), DType.U8, BITMASK.shape().apply(dims), mask);
    out.writeInts(SHAPE.name(prefix), DType.I64, SHAPE.shape().apply(dims), new int[] {n, k});
  }

  /**
   * Reads layer P back to dense float32 [N][K], row-major; BadInputException naming the tensor when
   * malformed.
   */
  public static float[] read(Checkpoint in, String prefix) {
    Dims dims = checkLayer(in, prefix);
    int n = dims.rows();
    int k = dims.cols();
    int maskBytes = ceilDiv(k, 8);
    float[] kept = in.floats(COMPRESSED.name(prefix));
    int[] mask = Layouts.ints(in, BITMASK.name(prefix));
    float[] w = new float[n * k];
    int next = 0;
    for (int row = 0; row < n; row++) {
      for (int block = 0; block < k; block += 4) {
        int set = 0;
        for (int col = block; col < block + 4; col++) {
          if ((mask[row * maskBytes + col / 8] >>> (col % 8) & 1) != 0) {
            set++;
            if (set <= 2) {
              w[row * k + col] = kept[next++];
            }
          }
        }
        if (set != 2) {
          throw new BadInputException(
              in.folder()
                  + ": tensor '"
                  + BITMASK.name(prefix)
                  + "' marks "
                  + set
                  + " of columns "
                  + block
                  + ".."
                  + (block + 3)
                  + " in row "
                  + row
                  + " as kept; "
                  + FORMAT
                  + " keeps exactly 2 of every 4");
        }
      }
    }
    return w;
  }

  /**
   * The value of config.json's {@code "quantization_config"} for a model that is 2:4 sparse and not
   * quantized, as compressed-tensors' ModelCompressor.update_config writes it: {@code quant_method}
   * plus a {@code sparsity_config} (Sparse24BitMaskConfig). It leaves out the informational {@code
   * "version"} (the writing library's own version, which readers discard) and the empty {@code
   * "transform_config"}.
   *
   * @param targets layers compressed, e.g. ["Linear"] (class names, layer names or "re:" patterns)
   * @param ignore layers left dense among the targets, e.g. ["lm_head"]
   * @param globalSparsity the measured fraction of zeros over the model's parameters, informational
   */
  public static ObjectNode config(
      List<String> targets, List<String> ignore, double globalSparsity) {
    if (!(globalSparsity >= 0 && globalSparsity <= 1)) {
      throw new IllegalArgumentException(
          "global sparsity is a fraction in [0, 1], not " + globalSparsity);
    }
    ObjectNode config = Json.mapper().createObjectNode();
    config.put("quant_method", CompressedTensorsLayout.QUANT_METHOD);
    ObjectNode sparsity = config.putObject(QuantizedCheckpoint.SPARSITY_CONFIG);
    // the library writes config.json with sort_keys=True
    sparsity.put("format", FORMAT);
    sparsity.put("global_sparsity", globalSparsity);
    ArrayNode ignored = sparsity.putArray("ignore");
    if (ignore != null) {
      ignore.forEach(ignored::add);
    }
    sparsity.put("sparsity_structure", STRUCTURE);
    ArrayNode targeted = sparsity.putArray("targets");
    if (targets != null) {
      targets.forEach(targeted::add);
    }
    return config;
  }

  /**
   * Whether a {@code sparsity_config} stores its targets in this layout: true for {@code
   * sparse-24-bitmask}, false for none (null, {} or JSON null) and {@code dense} (the sparse layers
   * are stored as plain weights); BadInputException for the other formats.
   */
  static boolean isThisFormat(JsonNode sparsityConfig, String source) {
    if (sparsityConfig == null || sparsityConfig.isNull()) {
      return false;
    }
    if (!sparsityConfig.isObject()) {
      throw new BadInputException(
          source
              + ": quantization_config.sparsity_config must be an object, not "
              + sparsityConfig);
    }
    if (sparsityConfig.isEmpty()) { // what compressed-tensors writes for a model without sparsity
      return false;
    }
    JsonNode formatNode = sparsityConfig.get("format");
    String format = formatNode == null || formatNode.isNull() ? null : formatNode.asText();
    if (FORMAT.equals(format)) {
      JsonNode structure = sparsityConfig.get("sparsity_structure");
      if (structure != null && !structure.isNull() && !structure.asText().equals(STRUCTURE)) {
        throw new BadInputException(
            source
                + ": sparsity_config format "
                + FORMAT
                + " with sparsity_structure '"
                + structure.asText()
                + "'; the format holds "
                + STRUCTURE
                + " only");
      }
      return true;
    }
    if ("dense".equals(format)) {
      return false;
    }
    throw new BadInputException(
        source
            + ": sparsity_config format '"
            + format
            + "' is not supported (supported: "
            + FORMAT
            + ", dense)");
  }

  /** Checks every stored tensor of layer P against the table and gives its dimensions. */
  static Dims checkLayer(Checkpoint in, String prefix) {
    Dims dims = dims(denseShape(in, prefix));
    String name = COMPRESSED.name(prefix);
    if (in.contains(name)) {
      DType dtype = in.info(name).dtype();
      if (dtype != DType.F32 && dtype != DType.F16 && dtype != DType.BF16 && dtype != DType.F64) {
        throw new BadInputException(
            in.folder()
                + ": tensor '"
                + name
                + "' holds "
                + dtype
                + " values: a"
                + " layer both quantized (int-quantized, float-quantized) and stored as "
                + FORMAT
                + " is not supported, only float weights");
      }
    }
    COMPRESSED.check(in, prefix, dims, LAYOUT);
    BITMASK.check(in, prefix, dims, LAYOUT);
    return dims;
  }

  /** (N, K) from P.shape: I64 (or I32) [2, 1] as compressed-tensors writes it, or [2]. */
  private static int[] denseShape(Checkpoint in, String prefix) {
    String name = SHAPE.name(prefix);
    if (!in.contains(name)) {
      throw new BadInputException(
          in.folder()
              + ": tensor '"
              + name
              + "' ("
              + SHAPE.content()
              + ") is missing for "
              + LAYOUT
              + " layer '"
              + prefix
              + "'");
    }
    TensorInfo info = in.info(name);
    long[] shape = info.shape();
    boolean shapeOk =
        Arrays.equals(shape, new long[] {2, 1}) || Arrays.equals(shape, new long[] {2});
    if ((info.dtype() != DType.I64 && info.dtype() != DType.I32) || !shapeOk) {
      throw new BadInputException(
          in.folder()
              + ": tensor '"
              + name
              + "' must be I64 [2, 1] = (N, K), is "
              + info.dtype()
              + " "
              + Arrays.toString(shape));
    }
    int[] nk = Layouts.ints(in, name);
    if (nk[0] <= 0 || nk[1] <= 0 || nk[1] % 4 != 0) {
      throw new BadInputException(
          in.folder()
              + ": tensor '"
              + name
              + "' holds ("
              + nk[0]
              + ", "
              + nk[1]
              + "), not the shape of a 2:4 weight (K a positive multiple of 4)");
    }
    return nk;
  }

  private static Dims dims(int[] nk) {
    return dims(nk[0], nk[1]);
  }

  private static Dims dims(int n, int k) {
    return new Dims(n, k, 1, 16); // no groups or codes: the values keep the model dtype
  }

  private static int ceilDiv(int a, int b) {
    return (a + b - 1) / b;
  }
}
