package llmc.formats.quant;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.nio.ByteOrder;
import java.util.function.IntBinaryOperator;

/**
 * The two ways the quantized layouts put b-bit codes into int32 words, along one axis of a matrix.
 * For 2, 4 and 8 bits they agree; they differ where 32 is not a multiple of b.
 */
enum BitPacking {
  /**
   * AutoGPTQ's pack: one continuous little-endian bit stream along the packed axis; code i occupies
   * bits {@code [b*i, b*i + b)} of the concatenated words, so 3-bit codes straddle words (32 codes
   * make 3 words: code 10 is bits 30..31 of word 0 and bit 0 of word 1, code 21 is bit 31 of word 1
   * and bits 0..1 of word 2). Needs {@code length * b % 32 == 0}.
   */
  BIT_STREAM {
    @Override
    int words(int length, int bits) {
      return (int) ((long) length * bits / 32);
    }

    @Override
    long bitOffset(int index, int bits) {
      return (long) index * bits;
    }
  },
  /**
   * compressed-tensors' pack_to_int32: {@code f = 32 / b} (integer division) whole codes per word,
   * code i in word {@code i / f} at bit {@code b * (i % f)}; the top {@code 32 - f*b} bits stay
   * zero and the last word is zero-padded. 3 bits: 10 codes a word, 5 bits: 6, 6 bits: 5, 7 bits:
   * 4.
   */
  WHOLE_CODES {
    @Override
    int words(int length, int bits) {
      int perWord = 32 / bits;
      return (length + perWord - 1) / perWord;
    }

    @Override
    long bitOffset(int index, int bits) {
      int perWord = 32 / bits;
      return 32L * (index / perWord) + (long) bits * (index % perWord);
    }
  };

  /** Words that hold {@code length} codes. */
  abstract int words(int length, int bits);

  /**
   * Position of code {@code index} in the bit stream of its words (bit 0 = least significant of
   * word 0).
   */
  abstract long bitOffset(int index, int bits);

  /**
   * Packs {@code value(line, i)} for {@code line < lines, i < length} along i.
   *
   * @param wordsFirst true: result {@code [words][lines]} (GPTQ qweight, compressed-tensors zero
   *     points); false: result {@code [lines][words]} (GPTQ qzeros, compressed-tensors
   *     weight_packed)
   * @param what named in the error when a value does not fit b bits
   */
  int[] pack(
      int bits, int lines, int length, IntBinaryOperator value, boolean wordsFirst, String what) {
    int words = words(length, bits);
    int[] packed = new int[Math.multiplyExact(words, lines)];
    int mask = (1 << bits) - 1;
    for (int line = 0; line < lines; line++) {
      for (int i = 0; i < length; i++) {
        int v = value.applyAsInt(line, i);
        if ((v & ~mask) != 0) {
          throw new IllegalArgumentException(
              what
                  + ": value "
                  + v
                  + " at ["
                  + line
                  + ", "
                  + i
                  + "] does not fit "
                  + bits
                  + " bits");
        }
        long bit = bitOffset(i, bits);
        int word = (int) (bit >>> 5);
        int shift = (int) (bit & 31);
        packed[index(wordsFirst, line, word, lines, words)] |= v << shift;
        if (shift + bits > 32) { // straddles into the next word (BIT_STREAM, 3 bits)
          packed[index(wordsFirst, line, word + 1, lines, words)] |= v >>> (32 - shift);
        }
      }
    }
    return packed;
  }

  private static final VarHandle LONGS =
      MethodHandles.byteArrayViewVarHandle(long[].class, ByteOrder.LITTLE_ENDIAN);
  private static final VarHandle INTS =
      MethodHandles.byteArrayViewVarHandle(int[].class, ByteOrder.LITTLE_ENDIAN);

  /**
   * {@link #pack} of codes held one per byte, {@code codes [lines][length]} (a quantizer's result):
   * the same words. For 2, 4 and 8 bits, where the two packings agree and a word holds {@code 32 /
   * b} codes, a word is made from 8 bytes at once ({@link Long#compress}, one PEXT instruction on
   * x86); other widths, a partial last word or a code that does not fit take the general path,
   * which names the code.
   */
  int[] pack(int bits, int lines, int length, byte[] codes, boolean wordsFirst, String what) {
    int perWord = 32 / bits;
    if (32 % bits != 0 || length % perWord != 0) {
      return general(bits, lines, length, codes, wordsFirst, what);
    }
    int words = length / perWord;
    int[] packed = new int[Math.multiplyExact(words, lines)];
    // the bits of each byte that a code may use; any other bit set means a code too wide
    long keep = bits == 4 ? 0x0F0F0F0F0F0F0F0FL : bits == 2 ? 0x0303030303030303L : -1L;
    long outside = 0;
    for (int line = 0; line < lines; line++) {
      int from = line * length;
      for (int word = 0; word < words; word++) {
        int at = from + word * perWord;
        int value;
        if (bits == 8) {
          value = (int) INTS.get(codes, at);
        } else if (bits == 4) {
          long x = (long) LONGS.get(codes, at);
          outside |= x & ~keep;
          value = (int) Long.compress(x, keep);
        } else {
          long lo = (long) LONGS.get(codes, at);
          long hi = (long) LONGS.get(codes, at + 8);
          outside |= (lo | hi) & ~keep;
          value = (int) Long.compress(lo, keep) | (int) Long.compress(hi, keep) << 16;
        }
        packed[index(wordsFirst, line, word, lines, words)] = value;
      }
    }
    return outside == 0 ? packed : general(bits, lines, length, codes, wordsFirst, what);
  }

  private int[] general(
      int bits, int lines, int length, byte[] codes, boolean wordsFirst, String what) {
    return pack(
        bits,
        lines,
        length,
        (line, i) -> Byte.toUnsignedInt(codes[line * length + i]),
        wordsFirst,
        what);
  }

  /** Inverse of {@link #pack}: {@code [lines][length]} unsigned b-bit values. */
  int[] unpack(int bits, int lines, int length, int[] packed, boolean wordsFirst) {
    int words = words(length, bits);
    if (packed.length != (long) words * lines) {
      throw new IllegalArgumentException(
          packed.length + " words given, " + words + " x " + lines + " needed");
    }
    int[] values = new int[Math.multiplyExact(lines, length)];
    int mask = (1 << bits) - 1;
    for (int line = 0; line < lines; line++) {
      for (int i = 0; i < length; i++) {
        long bit = bitOffset(i, bits);
        int word = (int) (bit >>> 5);
        int shift = (int) (bit & 31);
        int v = packed[index(wordsFirst, line, word, lines, words)] >>> shift;
        if (shift + bits > 32) {
          v |= packed[index(wordsFirst, line, word + 1, lines, words)] << (32 - shift);
        }
        values[line * length + i] = v & mask;
      }
    }
    return values;
  }

  private static int index(boolean wordsFirst, int line, int word, int lines, int words) {
    return wordsFirst ? word * lines + line : line * words + word;
  }
}
