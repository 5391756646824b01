package llmc.formats;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * Element conversions between little-endian tensor bytes and Java arrays, one switch per direction.
 */
final class FloatCodec {

  static final ValueLayout.OfDouble F64 =
      ValueLayout.JAVA_DOUBLE_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
  static final ValueLayout.OfFloat F32 =
      ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
  static final ValueLayout.OfLong I64 =
      ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
  static final ValueLayout.OfInt I32 =
      ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
  static final ValueLayout.OfShort I16 =
      ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
  static final ValueLayout.OfByte I8 = ValueLayout.JAVA_BYTE;

  private FloatCodec() {}

  /** dst[dstOffset + i] = element (from + i) of src, for a float dtype. */
  static void decodeFloats(
      DType dtype, MemorySegment src, long from, float[] dst, int dstOffset, int count) {
    switch (dtype) {
      case F32 -> MemorySegment.copy(src, F32, from * 4, dst, dstOffset, count);
      case F64 -> {
        for (int i = 0; i < count; i++) {
          dst[dstOffset + i] = (float) src.get(F64, (from + i) * 8);
        }
      }
      case F16 -> {
        for (int i = 0; i < count; i++) {
          dst[dstOffset + i] = Floats.f16ToF32(src.get(I16, (from + i) * 2));
        }
      }
      case BF16 -> {
        for (int i = 0; i < count; i++) {
          dst[dstOffset + i] = Floats.bf16ToF32(src.get(I16, (from + i) * 2));
        }
      }
      case F8_E4M3 -> {
        for (int i = 0; i < count; i++) {
          dst[dstOffset + i] = Floats.f8e4m3ToF32(src.get(I8, from + i));
        }
      }
      case F8_E5M2 -> {
        for (int i = 0; i < count; i++) {
          dst[dstOffset + i] = Floats.f8e5m2ToF32(src.get(I8, from + i));
        }
      }
      default -> throw new IllegalArgumentException(dtype + " is not a float dtype");
    }
  }

  /** Elements [from, from + count) of src into dst from byte 0; F32 to F64, F32, F16 or BF16. */
  static void encodeFloats(DType dtype, float[] src, int from, int count, MemorySegment dst) {
    switch (dtype) {
      case F32 -> MemorySegment.copy(src, from, dst, F32, 0, count);
      case F64 -> {
        for (int i = 0; i < count; i++) {
          dst.set(F64, i * 8L, src[from + i]);
        }
      }
      case F16 -> {
        for (int i = 0; i < count; i++) {
          dst.set(I16, i * 2L, Floats.f32ToF16(src[from + i]));
        }
      }
      case BF16 -> {
        for (int i = 0; i < count; i++) {
          dst.set(I16, i * 2L, Floats.f32ToBf16(src[from + i]));
        }
      }
      default ->
          throw new IllegalArgumentException(
              "cannot write floats as " + dtype + " (supported: F64, F32, F16, BF16)");
    }
  }

  /** Integer elements [from, from + count) of src into dst; narrower dtypes are range-checked. */
  static void encodeInts(
      DType dtype, int[] src, int from, int count, MemorySegment dst, String tensor) {
    switch (dtype) {
      case I32 -> MemorySegment.copy(src, from, dst, I32, 0, count);
      case I64 -> {
        for (int i = 0; i < count; i++) {
          dst.set(I64, i * 8L, src[from + i]);
        }
      }
      case I16, U16 -> {
        for (int i = 0; i < count; i++) {
          dst.set(I16, i * 2L, (short) checkRange(dtype, src, from + i, tensor));
        }
      }
      case I8, U8, BOOL -> {
        for (int i = 0; i < count; i++) {
          dst.set(I8, i, (byte) checkRange(dtype, src, from + i, tensor));
        }
      }
      default ->
          throw new IllegalArgumentException(
              "cannot write ints as " + dtype + " (supported: I64, I32, I16, U16, I8, U8, BOOL)");
    }
  }

  /**
   * dst[dstOffset + i] = element (from + i) of src, for an integer dtype whose values fit an int.
   */
  static void decodeInts(
      DType dtype,
      MemorySegment src,
      long from,
      int[] dst,
      int dstOffset,
      int count,
      String where) {
    switch (dtype) {
      case I32 -> MemorySegment.copy(src, I32, from * 4, dst, dstOffset, count);
      case I16 -> {
        for (int i = 0; i < count; i++) {
          dst[dstOffset + i] = src.get(I16, (from + i) * 2);
        }
      }
      case U16 -> {
        for (int i = 0; i < count; i++) {
          dst[dstOffset + i] = Short.toUnsignedInt(src.get(I16, (from + i) * 2));
        }
      }
      case I8 -> {
        for (int i = 0; i < count; i++) {
          dst[dstOffset + i] = src.get(I8, from + i);
        }
      }
      case U8, BOOL -> {
        for (int i = 0; i < count; i++) {
          dst[dstOffset + i] = Byte.toUnsignedInt(src.get(I8, from + i));
        }
      }
      case I64, U32, U64 -> {
        for (int i = 0; i < count; i++) {
          long v =
              dtype == DType.U32
                  ? Integer.toUnsignedLong(src.get(I32, (from + i) * 4))
                  : src.get(I64, (from + i) * 8);
          if (v != (int) v || (dtype == DType.U64 && v < 0)) {
            throw new BadInputException(
                where
                    + ": element "
                    + (from + i)
                    + " = "
                    + (dtype == DType.U64 ? Long.toUnsignedString(v) : Long.toString(v))
                    + " does not fit a 32-bit int");
          }
          dst[dstOffset + i] = (int) v;
        }
      }
      default ->
          throw new BadInputException(
              where + " has float dtype " + dtype + "; read it with floats()");
    }
  }

  private static int checkRange(DType dtype, int[] src, int index, String tensor) {
    int v = src[index];
    int min =
        switch (dtype) {
          case I16 -> Short.MIN_VALUE;
          case I8 -> Byte.MIN_VALUE;
          default -> 0;
        };
    int max =
        switch (dtype) {
          case I16 -> Short.MAX_VALUE;
          case U16 -> 0xFFFF;
          case I8 -> Byte.MAX_VALUE;
          case U8 -> 0xFF;
          default -> 1;
        };
    if (v < min || v > max) {
      throw new IllegalArgumentException(
          "tensor '"
              + tensor
              + "': value "
              + v
              + " at index "
              + index
              + " is outside the "
              + dtype
              + " range ["
              + min
              + ", "
              + max
              + "]");
    }
    return v;
  }
}
