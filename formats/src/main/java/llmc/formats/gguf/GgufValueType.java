package llmc.formats.gguf;

import java.util.Arrays;
import java.util.Locale;
import java.util.Optional;

/** The types of GGUF metadata values, with the u32 id that precedes each value in the file. */
public enum GgufValueType {
  //     id  bytes (0: variable)
  U8(0, 1),
  I8(1, 1),
  U16(2, 2),
  I16(3, 2),
  U32(4, 4),
  I32(5, 4),
  F32(6, 4),
  BOOL(7, 1),
  STRING(8, 0), // u64 byte length + UTF-8 bytes
  ARRAY(9, 0), // u32 element type + u64 count + elements (no arrays of arrays)
  U64(10, 8),
  I64(11, 8),
  F64(12, 8);

  private final int id;
  private final int byteSize;

  GgufValueType(int id, int byteSize) {
    this.id = id;
    this.byteSize = byteSize;
  }

  public int id() {
    return id;
  }

  /** Bytes of one value; 0 for STRING and ARRAY. */
  public int byteSize() {
    return byteSize;
  }

  /** U8 to I64. */
  public boolean isInteger() {
    return this != F32 && this != F64 && this != BOOL && byteSize > 0;
  }

  /** As llama.cpp names it in messages: "u32", "string", ... */
  public String label() {
    return name().toLowerCase(Locale.ROOT);
  }

  public static Optional<GgufValueType> byId(long id) {
    return Arrays.stream(values()).filter(t -> t.id == id).findFirst();
  }
}
