package llmc.formats.quant;

import java.util.List;
import llmc.formats.BadInputException;
import llmc.formats.Checkpoint;
import llmc.formats.DType;
import llmc.formats.Floats;
import llmc.formats.QuantizedTensor;
import llmc.formats.TensorInfo;

/** Checks and conversions the quantized layouts share. */
final class Layouts {

  private Layouts() {}

  /** {@code k / groupSize} for every column (0 for per-channel). */
  static int[] trivialGroupIndex(int cols, int groupSize) {
    int[] gIdx = new int[cols];
    if (groupSize > 0) {
      for (int k = 0; k < cols; k++) {
        gIdx[k] = k / groupSize;
      }
    }
    return gIdx;
  }

  static void checkGroupIndex(String prefix, QuantizedTensor q) {
    int groups = q.groups();
    int[] gIdx = q.gIdx();
    for (int k = 0; k < gIdx.length; k++) {
      if (gIdx[k] < 0 || gIdx[k] >= groups) {
        throw new IllegalArgumentException(
            "layer '"
                + prefix
                + "': gIdx["
                + k
                + "] = "
                + gIdx[k]
                + " is outside the "
                + groups
                + " groups");
      }
    }
  }

  static void checkGroupIndex(Checkpoint in, String name, int[] gIdx, int groups) {
    for (int k = 0; k < gIdx.length; k++) {
      if (gIdx[k] < 0 || gIdx[k] >= groups) {
        throw new BadInputException(
            in.folder()
                + ": tensor '"
                + name
                + "': element "
                + k
                + " = "
                + gIdx[k]
                + " is not one of the "
                + groups
                + " groups");
      }
    }
  }

  /** Adds a warning when storing {@code values} as {@code dtype} changes some of them. */
  static void warnIfRounded(String tensor, float[] values, DType dtype, List<String> warnings) {
    int changed = 0;
    for (float value : values) {
      float stored = Floats.round(value, dtype);
      if (Float.compare(stored, value) != 0) {
        changed++;
      }
    }
    if (changed > 0) {
      warnings.add(
          "tensor '"
              + tensor
              + "': "
              + changed
              + " of "
              + values.length
              + " scales are not exact in "
              + dtype
              + " and are rounded on write; round them inside the quantizer so that the stored model"
              + " is the one it compensated for");
    }
  }

  static TensorInfo info(Checkpoint in, String name, int rank, String layout) {
    if (!in.contains(name)) {
      throw new BadInputException(
          in.folder() + ": tensor '" + name + "' is missing for " + layout + " layer");
    }
    TensorInfo info = in.info(name);
    if (info.rank() != rank) {
      throw new BadInputException(
          in.folder()
              + ": tensor '"
              + name
              + "' has rank "
              + info.rank()
              + " but "
              + layout
              + " stores it with rank "
              + rank);
    }
    return info;
  }

  static int[] ints(Checkpoint in, String name) {
    return in.fileOf(name).ints(name);
  }

  static byte[] toBytes(int[] codes) {
    byte[] bytes = new byte[codes.length];
    for (int i = 0; i < codes.length; i++) {
      bytes[i] = (byte) codes[i];
    }
    return bytes;
  }

  static int toInt(long dim) {
    if (dim > Integer.MAX_VALUE) {
      throw new BadInputException("dimension " + dim + " is too large");
    }
    return (int) dim;
  }
}
