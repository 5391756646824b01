package llmc.formats.gguf;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Objects;
import llmc.formats.BadInputException;

/**
 * Encoders and decoders of the {@link GgmlType} blocks on row-major float rows.
 *
 * <p>{@link #encode} follows llama.cpp's reference quantizers ({@code quantize_row_*_ref} in {@code
 * ggml/src/ggml-quants.c}) operation for operation in float32: the scale {@code d} (and the minimum
 * {@code m}) are computed in float32, the codes use that float32 {@code d} (its reciprocal {@code
 * id}), and only the stored {@code d}/{@code m} are rounded to f16 (nearest even). Codes are
 * unsigned with an implicit zero of 8 (Q4_0) or 16 (Q5_0), unsigned from the minimum for the _1
 * types, and signed int8 for Q8_0:
 *
 * <pre>
 *   Q8_0  d*q            q in [-128, 127] (llama.cpp itself writes [-127, 127])
 *   Q4_0  d*(q - 8)      q in [0, 15]
 *   Q4_1  d*q + m        q in [0, 15]
 *   Q5_0  d*(q - 16)     q in [0, 31]
 *   Q5_1  d*q + m        q in [0, 31]
 * </pre>
 *
 * Every method works on whole blocks: {@code from} and {@code count} (in weights) are multiples of
 * the block size, and the bytes start at byte 0 of the given segment.
 */
public final class GgmlBlocks {

  static final ValueLayout.OfShort F16 =
      ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
  static final ValueLayout.OfInt U32 =
      ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
  static final ValueLayout.OfFloat F32 =
      ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

  private static final int QK = 32; // weights per quantized block

  private GgmlBlocks() {}

  /**
   * values[from, from + count) into {@code dst}: F32 as is, F16 rounded to nearest even, the
   * quantized types by llama.cpp's round-to-nearest reference rules. Quantized types refuse NaN and
   * infinite values.
   */
  public static void encode(GgmlType type, float[] values, int from, int count, MemorySegment dst) {
    checkBlocks(type, values.length, from, count, dst);
    switch (type) {
      case F32 -> MemorySegment.copy(values, from, dst, F32, 0, count);
      case F16 -> {
        for (int i = 0; i < count; i++) {
          short h = Float.floatToFloat16(values[from + i]);
          if (Float.isInfinite(Float.float16ToFloat(h)) && Float.isFinite(values[from + i])) {
            throw beyondF16(type, "weight", values[from + i], "index " + (from + i));
          }
          dst.set(F16, 2L * i, h);
        }
      }
      default -> {
        int[] q = new int[QK];
        for (int b = 0; b < count / QK; b++) {
          int at = from + b * QK;
          for (int j = 0; j < QK; j++) {
            if (!Float.isFinite(values[at + j])) {
              throw new IllegalArgumentException(
                  type.ggmlName()
                      + ": value "
                      + values[at + j]
                      + " at index "
                      + (at + j)
                      + " cannot be quantized");
            }
          }
          Scales scales =
              switch (type) {
                case Q8_0 -> quantizeQ8_0(values, at, q);
                case Q4_0 -> quantizeSymmetric(values, at, 8, q);
                case Q5_0 -> quantizeSymmetric(values, at, 16, q);
                case Q4_1 -> quantizeAsymmetric(values, at, 15, q);
                case Q5_1 -> quantizeAsymmetric(values, at, 31, q);
                default -> throw new AssertionError(type);
              };
          if (Float.isInfinite(Float.float16ToFloat(scales.d()))
              || Float.isInfinite(Float.float16ToFloat(scales.m()))) {
            throw beyondF16(
                type, "block scale", Float.float16ToFloat(scales.d()), "block " + at / QK);
          }
          pack(type, scales.d(), scales.m(), q, 0, dst, (long) b * type.bytesPerBlock());
        }
      }
    }
  }

  /**
   * A finite weight too large for the type's float16 (itself, or its blocks' scale): llama.cpp
   * would store infinity; llmc refuses. The caller names the tensor.
   */
  private static BadInputException beyondF16(GgmlType type, String what, float value, String at) {
    return new BadInputException(
        type.ggmlName()
            + ": the "
            + what
            + " at "
            + at
            + " is beyond float16's largest value 65504 ("
            + (Float.isInfinite(value) ? "it rounds to infinity" : value)
            + "); store this tensor as F32 (llama.cpp would write infinity)");
  }

  /** The f16 bits stored in a block: scale d and, for the _1 types, minimum m (0 otherwise). */
  private record Scales(short d, short m) {}

  /**
   * quantize_row_q8_0_ref: amax = max |x|, d = amax / 127, id = 1 / d, q = roundf(x * id) (ties
   * away from 0).
   */
  private static Scales quantizeQ8_0(float[] x, int at, int[] q) {
    float amax = 0.0f;
    for (int j = 0; j < QK; j++) {
      amax = Math.max(amax, Math.abs(x[at + j]));
    }
    float d = amax / 127;
    float id = d != 0 ? 1.0f / d : 0.0f;
    for (int j = 0; j < QK; j++) {
      float v = x[at + j] * id;
      q[j] =
          v < 0 ? -Math.round(-v) : Math.round(v); // C roundf; Math.round alone rounds -2.5 to -2
    }
    return new Scales(Float.floatToFloat16(d), (short) 0);
  }

  /**
   * quantize_row_q4_0_ref (zero 8) and quantize_row_q5_0_ref (zero 16): max = the value of largest
   * magnitude, sign kept (the first one on ties), d = max / -zero, id = 1 / d, q = min(2 zero - 1,
   * (int) (x * id + zero + 0.5)) with the cast truncating toward zero. So max itself gets code 0
   * and -max clamps to the top code. An all-zero block gives d = 0 / -zero = -0.0 (stored as
   * 0x8000) and every code = zero.
   */
  private static Scales quantizeSymmetric(float[] x, int at, int zero, int[] q) {
    float amax = 0.0f;
    float max = 0.0f;
    for (int j = 0; j < QK; j++) {
      float v = x[at + j];
      if (amax < Math.abs(v)) {
        amax = Math.abs(v);
        max = v;
      }
    }
    float d = max / -zero;
    float id = d != 0 ? 1.0f / d : 0.0f;
    float offset = zero + 0.5f;
    for (int j = 0; j < QK; j++) {
      q[j] = Math.min(2 * zero - 1, (int) (x[at + j] * id + offset));
    }
    return new Scales(Float.floatToFloat16(d), (short) 0);
  }

  /**
   * quantize_row_q4_1_ref (maxCode 15) and quantize_row_q5_1_ref (maxCode 31): d = (max - min) /
   * maxCode, id = 1 / d, q = min(maxCode, (int) ((x - min) * id + 0.5)) with the float32 min; m =
   * min is stored as f16.
   */
  private static Scales quantizeAsymmetric(float[] x, int at, int maxCode, int[] q) {
    float min = Float.MAX_VALUE;
    float max = -Float.MAX_VALUE;
    for (int j = 0; j < QK; j++) {
      float v = x[at + j];
      if (v < min) {
        min = v;
      }
      if (v > max) {
        max = v;
      }
    }
    float d = (max - min) / maxCode;
    float id = d != 0 ? 1.0f / d : 0.0f;
    for (int j = 0; j < QK; j++) {
      // llama.cpp's Q5_1 has no min(31, ...): (x - min) * id <= 31 (+ rounding), so it is never
      // reached
      q[j] = Math.min(maxCode, (int) ((x[at + j] - min) * id + 0.5f));
    }
    return new Scales(Float.floatToFloat16(d), Float.floatToFloat16(min));
  }

  /**
   * Integer codes (a quantizer's result, e.g. GPTQ with groups of 32) stored without any further
   * rounding: codes[from, from + count) with {@code scales[from / 32 + b]} (and {@code mins[...]}
   * for Q4_1 / Q5_1, null for the others) for block b. Refuses (IllegalArgumentException) codes out
   * of the type's range and scales or mins that are not finite or not exactly representable in f16.
   */
  public static void encodeCodes(
      GgmlType type,
      int[] codes,
      float[] scales,
      float[] mins,
      int from,
      int count,
      MemorySegment dst) {
    if (!type.isQuantized()) {
      throw new IllegalArgumentException(type.ggmlName() + " has no integer codes; use encode()");
    }
    checkBlocks(type, codes.length, from, count, dst);
    boolean hasMin = type == GgmlType.Q4_1 || type == GgmlType.Q5_1;
    if (hasMin != (mins != null)) {
      throw new IllegalArgumentException(
          type.ggmlName() + (hasMin ? " needs" : " has no") + " mins");
    }
    int firstBlock = from / QK;
    int blocks = count / QK;
    Objects.checkFromIndexSize(firstBlock, blocks, scales.length);
    if (hasMin) {
      Objects.checkFromIndexSize(firstBlock, blocks, mins.length);
    }
    int lo = type == GgmlType.Q8_0 ? -128 : 0;
    int hi =
        switch (type) {
          case Q4_0, Q4_1 -> 15;
          case Q5_0, Q5_1 -> 31;
          default -> 127;
        };
    for (int i = from; i < from + count; i++) {
      if (codes[i] < lo || codes[i] > hi) {
        throw new IllegalArgumentException(
            type.ggmlName()
                + ": code "
                + codes[i]
                + " at index "
                + i
                + " is outside ["
                + lo
                + ", "
                + hi
                + "]");
      }
    }
    for (int b = 0; b < blocks; b++) {
      short d = exactF16(type, "scale", scales[firstBlock + b], firstBlock + b);
      short m = hasMin ? exactF16(type, "min", mins[firstBlock + b], firstBlock + b) : 0;
      pack(type, d, m, codes, from + b * QK, dst, (long) b * type.bytesPerBlock());
    }
  }

  private static short exactF16(GgmlType type, String what, float value, int block) {
    short bits = Float.floatToFloat16(value);
    if (!Float.isFinite(value) || Float.compare(Float.float16ToFloat(bits), value) != 0) {
      throw new IllegalArgumentException(
          type.ggmlName()
              + ": "
              + what
              + " "
              + value
              + " of block "
              + block
              + " is not exactly an f16 value; round it to f16 inside the quantizer");
    }
    return bits;
  }

  /**
   * One block at {@code offset}: d (and m), then qh for Q5, then the nibbles or int8 codes q[at, at
   * + 32).
   */
  private static void pack(
      GgmlType type, short d, short m, int[] q, int at, MemorySegment dst, long offset) {
    dst.set(F16, offset, d);
    if (type == GgmlType.Q8_0) {
      for (int j = 0; j < QK; j++) {
        dst.set(ValueLayout.JAVA_BYTE, offset + 2 + j, (byte) q[at + j]);
      }
      return;
    }
    long next = offset + 2;
    if (type == GgmlType.Q4_1 || type == GgmlType.Q5_1) {
      dst.set(F16, next, m);
      next += 2;
    }
    if (type == GgmlType.Q5_0 || type == GgmlType.Q5_1) {
      int qh = 0;
      for (int j = 0; j < QK; j++) {
        qh |= ((q[at + j] >>> 4) & 1) << j;
      }
      dst.set(U32, next, qh);
      next += 4;
    }
    for (int j = 0; j < QK / 2; j++) {
      int nibbles = (q[at + j] & 0xF) | (q[at + j + QK / 2] & 0xF) << 4;
      dst.set(ValueLayout.JAVA_BYTE, next + j, (byte) nibbles);
    }
  }

  /**
   * Dequantizes {@code count} weights from byte 0 of {@code src} into dst[from, from + count), as
   * ggml does.
   */
  public static void decode(GgmlType type, MemorySegment src, float[] dst, int from, int count) {
    checkBlocks(type, dst.length, from, count, src);
    switch (type) {
      case F32 -> MemorySegment.copy(src, F32, 0, dst, from, count);
      case F16 -> {
        for (int i = 0; i < count; i++) {
          dst[from + i] = Float.float16ToFloat(src.get(F16, 2L * i));
        }
      }
      default -> {
        int[] q = new int[QK];
        for (int b = 0; b < count / QK; b++) {
          long offset = (long) b * type.bytesPerBlock();
          float d = Float.float16ToFloat(src.get(F16, offset));
          float m = unpack(type, src, offset, q);
          int at = from + b * QK;
          for (int j = 0; j < QK; j++) {
            dst[at + j] =
                switch (type) {
                  case Q8_0 -> q[j] * d;
                  case Q4_0 -> (q[j] - 8) * d;
                  case Q5_0 -> (q[j] - 16) * d;
                  default -> q[j] * d + m; // two roundings, no fused multiply-add
                };
          }
        }
      }
    }
  }

  /**
   * The 32 codes of the block at {@code offset} into q; returns m for the _1 types (0 otherwise).
   */
  private static float unpack(GgmlType type, MemorySegment src, long offset, int[] q) {
    if (type == GgmlType.Q8_0) {
      for (int j = 0; j < QK; j++) {
        q[j] = src.get(ValueLayout.JAVA_BYTE, offset + 2 + j);
      }
      return 0;
    }
    long next = offset + 2;
    float m = 0;
    if (type == GgmlType.Q4_1 || type == GgmlType.Q5_1) {
      m = Float.float16ToFloat(src.get(F16, next));
      next += 2;
    }
    int qh = 0;
    if (type == GgmlType.Q5_0 || type == GgmlType.Q5_1) {
      qh = src.get(U32, next);
      next += 4;
    }
    for (int j = 0; j < QK / 2; j++) {
      int nibbles = src.get(ValueLayout.JAVA_BYTE, next + j) & 0xFF;
      q[j] = (nibbles & 0xF) | ((qh >>> j) & 1) << 4;
      q[j + QK / 2] = (nibbles >>> 4) | ((qh >>> (j + QK / 2)) & 1) << 4;
    }
    return m;
  }

  private static void checkBlocks(
      GgmlType type, int arrayLength, int from, int count, MemorySegment bytes) {
    Objects.checkFromIndexSize(from, count, arrayLength);
    if (from % type.blockSize() != 0 || count % type.blockSize() != 0) {
      throw new IllegalArgumentException(
          type.ggmlName()
              + ": weights ["
              + from
              + ", "
              + (from + count)
              + ") are not whole "
              + type.blockSize()
              + "-weight blocks");
    }
    if (bytes.byteSize() < type.byteSize(count)) {
      throw new IllegalArgumentException(
          type.ggmlName()
              + ": "
              + count
              + " weights need "
              + type.byteSize(count)
              + " bytes, the segment has "
              + bytes.byteSize());
    }
  }
}
