package llmc.formats;

import java.util.Arrays;
import java.util.stream.Collectors;

/** The safetensors element types, all little-endian: one row per type. */
public enum DType {
  //       bytes  float
  F64(8, true),
  F32(4, true),
  F16(2, true),
  BF16(2, true),
  I64(8, false),
  I32(4, false),
  I16(2, false),
  I8(1, false),
  U8(1, false),
  BOOL(1, false),
  F8_E4M3(1, true),
  F8_E5M2(1, true),
  U16(2, false),
  U32(4, false),
  U64(8, false);

  private final int byteSize;
  private final boolean isFloat;

  DType(int byteSize, boolean isFloat) {
    this.byteSize = byteSize;
    this.isFloat = isFloat;
  }

  public int byteSize() {
    return byteSize;
  }

  public boolean isFloat() {
    return isFloat;
  }

  /** The name in a safetensors header: "F32", "F8_E4M3", ... */
  public String safetensorsName() {
    return name();
  }

  public static DType fromSafetensors(String name) {
    for (DType type : values()) {
      if (type.name().equals(name)) {
        return type;
      }
    }
    throw new BadInputException(
        "unknown safetensors dtype '"
            + name
            + "' (known: "
            + Arrays.stream(values()).map(DType::name).collect(Collectors.joining(", "))
            + ")");
  }
}
