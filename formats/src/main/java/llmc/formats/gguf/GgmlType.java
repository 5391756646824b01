package llmc.formats.gguf;

import java.util.Arrays;
import java.util.Locale;
import java.util.Optional;
import java.util.stream.Collectors;
import llmc.formats.BadInputException;

/**
 * The ggml tensor types llmc reads and writes, one row per type as in ggml's type traits: the type
 * id stored in a GGUF tensor info, the weights per block and the bytes per block. A quantized block
 * covers 32 consecutive weights of one row (along {@code in_features}).
 */
public enum GgmlType {
  //   id  weights  bytes   block layout (little-endian)
  F32(0, 1, 4), // f32
  F16(1, 1, 2), // f16
  Q4_0(
      2, 32,
      18), // f16 d | 16 bytes: code j in the low nibble of byte j, code j+16 in its high nibble
  Q4_1(3, 32, 20), // f16 d | f16 m | 16 bytes as Q4_0
  Q5_0(6, 32, 22), // f16 d | u32 qh (bit j = fifth bit of code j) | 16 bytes of low nibbles as Q4_0
  Q5_1(7, 32, 24), // f16 d | f16 m | u32 qh | 16 bytes
  Q8_0(8, 32, 34); // f16 d | 32 x i8 codes

  /** Weights per quantized block (ggml's QK4_0 = QK4_1 = QK5_0 = QK5_1 = QK8_0). */
  public static final int QK = 32;

  private final int id;
  private final int blockSize;
  private final int bytesPerBlock;

  GgmlType(int id, int blockSize, int bytesPerBlock) {
    this.id = id;
    this.blockSize = blockSize;
    this.bytesPerBlock = bytesPerBlock;
  }

  /** The ggml type id in a tensor info. */
  public int id() {
    return id;
  }

  /** Weights per block: 1 for F32 and F16, 32 for the quantized types. */
  public int blockSize() {
    return blockSize;
  }

  public int bytesPerBlock() {
    return bytesPerBlock;
  }

  public boolean isQuantized() {
    return blockSize > 1;
  }

  /** The name llama.cpp prints: "f32", "q4_0", ... */
  public String ggmlName() {
    return name().toLowerCase(Locale.ROOT);
  }

  /** Bytes of {@code weights} consecutive weights, a multiple of the block size. */
  public long byteSize(long weights) {
    if (weights < 0 || weights % blockSize != 0) {
      throw new IllegalArgumentException(
          ggmlName()
              + ": "
              + weights
              + " weights is not a whole number of "
              + blockSize
              + "-weight blocks");
    }
    return Math.multiplyExact(weights / blockSize, (long) bytesPerBlock);
  }

  public static Optional<GgmlType> byId(long id) {
    return Arrays.stream(values()).filter(t -> t.id == id).findFirst();
  }

  /** By lower-case name ("q4_0"); BadInputException listing the known names otherwise. */
  public static GgmlType byName(String name) {
    return Arrays.stream(values())
        .filter(t -> t.ggmlName().equals(name))
        .findFirst()
        .orElseThrow(
            () ->
                new BadInputException(
                    "unknown GGUF tensor type '" + name + "' (known: " + known() + ")"));
  }

  /** "f32, f16, q4_0, ..." for messages. */
  static String known() {
    return Arrays.stream(values()).map(GgmlType::ggmlName).collect(Collectors.joining(", "));
  }
}
