package llmc.formats.gguf;

import static jdk.incubator.vector.VectorOperators.EQ;
import static jdk.incubator.vector.VectorOperators.F2I;
import static jdk.incubator.vector.VectorOperators.GE;
import static jdk.incubator.vector.VectorOperators.I2B;
import static jdk.incubator.vector.VectorOperators.I2F;
import static jdk.incubator.vector.VectorOperators.LSHL;
import static jdk.incubator.vector.VectorOperators.LT;
import static jdk.incubator.vector.VectorOperators.MAX;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;
import java.util.Objects;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;
import llmc.formats.BadInputException;
import llmc.formats.Floats;

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
        int size = type.bytesPerBlock();
        byte[] stage = new byte[Math.min(count / QK, STAGE_BLOCKS) * size];
        for (int b = 0; b < count / QK; b++) {
          int at = from + b * QK;
          if (Floats.firstNonFinite(values, at, QK) >= 0) {
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
          }
          Scales scales =
              switch (type) {
                case Q8_0 -> quantizeQ8_0Vector(values, at, q);
                case Q4_0 -> quantizeSymmetricVector(values, at, 8, q);
                case Q5_0 -> quantizeSymmetricVector(values, at, 16, q);
                case Q4_1 -> quantizeAsymmetric(values, at, 15, q);
                case Q5_1 -> quantizeAsymmetric(values, at, 31, q);
                default -> throw new AssertionError(type);
              };
          if (Float.isInfinite(Float.float16ToFloat(scales.d()))
              || Float.isInfinite(Float.float16ToFloat(scales.m()))) {
            throw beyondF16(
                type, "block scale", Float.float16ToFloat(scales.d()), "block " + at / QK);
          }
          pack(type, scales.d(), scales.m(), q, 0, stage, (b % STAGE_BLOCKS) * size);
          flushStage(stage, b, count / QK, size, dst);
        }
      }
    }
  }

  /**
   * Blocks are packed into a heap array of {@link #STAGE_BLOCKS} and copied to the segment
   * together: setting the bytes of a native segment one at a time took 60% of a Q4_0 export.
   */
  private static final int STAGE_BLOCKS = 1024;

  /** After block {@code b} of {@code blocks}: copies the stage out when it is full or done. */
  private static void flushStage(byte[] stage, int b, int blocks, int size, MemorySegment dst) {
    if (b % STAGE_BLOCKS == STAGE_BLOCKS - 1 || b == blocks - 1) {
      int first = b - b % STAGE_BLOCKS;
      int length = (b - first + 1) * size;
      MemorySegment.copy(stage, 0, dst, ValueLayout.JAVA_BYTE, (long) first * size, length);
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
  record Scales(short d, short m) {}

  /**
   * The scalar quantizers below are llama.cpp's reference, operation for operation; the vector ones
   * that {@link #encode} runs must give their bits ({@code GgmlBlocksTest}).
   */

  /**
   * quantize_row_q8_0_ref: amax = max |x|, d = amax / 127, id = 1 / d, q = roundf(x * id) (ties
   * away from 0).
   */
  static Scales quantizeQ8_0(float[] x, int at, int[] q) {
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

  private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
  private static final VectorSpecies<Integer> SI = S.withLanes(int.class);

  /**
   * {@link #quantizeQ8_0} on vectors, the same bits: C's {@code roundf(v)} is {@code t + (|v| - t
   * >= 0.5)} with the sign of {@code v}, {@code t} the integer part of {@code |v|} (the difference
   * is exact in float32).
   */
  static Scales quantizeQ8_0Vector(float[] x, int at, int[] q) {
    FloatVector amax = FloatVector.zero(S);
    for (int j = 0; j < QK; j += S.length()) {
      amax = amax.max(FloatVector.fromArray(S, x, at + j).abs());
    }
    float d = amax.reduceLanes(MAX) / 127;
    float id = d != 0 ? 1.0f / d : 0.0f;
    for (int j = 0; j < QK; j += S.length()) {
      FloatVector v = FloatVector.fromArray(S, x, at + j).mul(id);
      FloatVector a = v.abs();
      FloatVector t = (FloatVector) a.convert(F2I, 0).convert(I2F, 0);
      FloatVector r = t.add(1f, a.sub(t).compare(GE, 0.5f));
      r = r.blend(r.neg(), v.compare(LT, 0f));
      ((IntVector) r.convert(F2I, 0)).intoArray(q, j);
    }
    return new Scales(Float.floatToFloat16(d), (short) 0);
  }

  /**
   * {@link #quantizeSymmetric} on vectors, the same bits: the largest magnitude is reduced over
   * lanes and the first value that has it is the signed maximum.
   */
  static Scales quantizeSymmetricVector(float[] x, int at, int zero, int[] q) {
    FloatVector amaxV = FloatVector.zero(S);
    for (int j = 0; j < QK; j += S.length()) {
      amaxV = amaxV.max(FloatVector.fromArray(S, x, at + j).abs());
    }
    float amax = amaxV.reduceLanes(MAX);
    float max = 0.0f;
    if (amax > 0) {
      for (int j = 0; j < QK; j += S.length()) {
        VectorMask<Float> hit = FloatVector.fromArray(S, x, at + j).abs().compare(EQ, amax);
        if (hit.anyTrue()) {
          max = x[at + j + hit.firstTrue()];
          break;
        }
      }
    }
    float d = max / -zero;
    float id = d != 0 ? 1.0f / d : 0.0f;
    float offset = zero + 0.5f;
    for (int j = 0; j < QK; j += S.length()) {
      FloatVector v = FloatVector.fromArray(S, x, at + j).mul(id).add(offset);
      ((IntVector) v.convert(F2I, 0)).min(2 * zero - 1).intoArray(q, j);
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
  static Scales quantizeSymmetric(float[] x, int at, int zero, int[] q) {
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
    int size = type.bytesPerBlock();
    byte[] stage = new byte[Math.min(blocks, STAGE_BLOCKS) * size];
    for (int b = 0; b < blocks; b++) {
      short d = exactF16(type, "scale", scales[firstBlock + b], firstBlock + b);
      short m = hasMin ? exactF16(type, "min", mins[firstBlock + b], firstBlock + b) : 0;
      pack(type, d, m, codes, from + b * QK, stage, (b % STAGE_BLOCKS) * size);
      flushStage(stage, b, blocks, size, dst);
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
      GgmlType type, short d, short m, int[] q, int at, byte[] dst, int offset) {
    SHORTS.set(dst, offset, d);
    if (type == GgmlType.Q8_0) {
      for (int j = 0; j < QK; j++) {
        dst[offset + 2 + j] = (byte) q[at + j];
      }
      return;
    }
    int next = offset + 2;
    if (type == GgmlType.Q4_1 || type == GgmlType.Q5_1) {
      SHORTS.set(dst, next, m);
      next += 2;
    }
    if (type == GgmlType.Q5_0 || type == GgmlType.Q5_1) {
      int qh = 0;
      for (int j = 0; j < QK; j++) {
        qh |= ((q[at + j] >>> 4) & 1) << j;
      }
      INTS.set(dst, next, qh);
      next += 4;
    }
    int j = 0;
    if (SB != null) { // two nibbles per byte, a vector of bytes at a time
      for (; j < QK / 2; j += SI.length()) {
        IntVector low = IntVector.fromArray(SI, q, at + j).and(0xF);
        IntVector high = IntVector.fromArray(SI, q, at + j + QK / 2).and(0xF).lanewise(LSHL, 4);
        low.or(high).convertShape(I2B, SB, 0).reinterpretAsBytes().intoArray(dst, next + j);
      }
    }
    for (; j < QK / 2; j++) {
      dst[next + j] = (byte) ((q[at + j] & 0xF) | (q[at + j + QK / 2] & 0xF) << 4);
    }
  }

  /** Bytes as many as {@link #SI}'s lanes, or null when no vector shape is that small. */
  private static final VectorSpecies<Byte> SB =
      SI.length() >= 8 && QK / 2 % SI.length() == 0
          ? VectorSpecies.of(byte.class, VectorShape.forBitSize(SI.length() * 8))
          : null;

  private static final VarHandle SHORTS =
      MethodHandles.byteArrayViewVarHandle(short[].class, ByteOrder.LITTLE_ENDIAN);
  private static final VarHandle INTS =
      MethodHandles.byteArrayViewVarHandle(int[].class, ByteOrder.LITTLE_ENDIAN);

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
