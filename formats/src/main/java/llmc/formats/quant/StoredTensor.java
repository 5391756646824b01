package llmc.formats.quant;

import java.util.Arrays;
import java.util.function.Function;
import llmc.formats.BadInputException;
import llmc.formats.Checkpoint;
import llmc.formats.DType;
import llmc.formats.TensorInfo;

/**
 * One row of a layout table: a tensor that a quantized layout stores per linear layer {@code P},
 * named {@code P + suffix}. Writers, readers and {@link QuantizedCheckpoint} are all driven by
 * these rows.
 *
 * @param suffix appended to the layer prefix, e.g. ".qweight"
 * @param dtype the stored dtype; null where it is the model's float dtype (chosen at write time)
 * @param shape the stored shape for a layer of the given dimensions
 * @param when when the tensor is present
 * @param content what it holds, for messages and readers of the table
 */
record StoredTensor(
    String suffix, DType dtype, Function<Dims, long[]> shape, When when, String content) {

  /** When a layout stores a tensor. */
  enum When {
    ALWAYS,
    ASYMMETRIC,
    ACT_ORDER,
    BIAS
  }

  /** The dimensions of one quantized linear layer: N outputs, K inputs, G groups, b bits. */
  record Dims(int rows, int cols, int groups, int bits) {
    /** Codes a whole int32 holds: 32 / b, integer division. */
    int perWord() {
      return 32 / bits;
    }
  }

  String name(String prefix) {
    return prefix + suffix;
  }

  /**
   * Checks the stored tensor against this row; BadInputException naming the tensor.
   *
   * @param layout named in the message, e.g. "4-bit GPTQ"
   */
  TensorInfo check(Checkpoint in, String prefix, Dims dims, String layout) {
    String name = name(prefix);
    if (!in.contains(name)) {
      throw new BadInputException(
          in.folder()
              + ": tensor '"
              + name
              + "' ("
              + content
              + ") is missing for "
              + layout
              + " layer '"
              + prefix
              + "'");
    }
    TensorInfo info = in.info(name);
    boolean dtypeOk = dtype == null ? info.dtype().isFloat() : info.dtype() == dtype;
    if (!dtypeOk) {
      throw new BadInputException(
          in.folder()
              + ": tensor '"
              + name
              + "' has dtype "
              + info.dtype()
              + " but "
              + layout
              + " stores "
              + (dtype == null ? "a float dtype" : dtype)
              + " there");
    }
    long[] expected = shape.apply(dims);
    if (!Arrays.equals(info.shape(), expected)) {
      throw new BadInputException(
          in.folder()
              + ": tensor '"
              + name
              + "' has shape "
              + Arrays.toString(info.shape())
              + " but "
              + layout
              + " with N="
              + dims.rows()
              + ", K="
              + dims.cols()
              + ", G="
              + dims.groups()
              + " needs "
              + Arrays.toString(expected));
    }
    return info;
  }
}
