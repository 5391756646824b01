package llmc.formats.quant;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * Packing codes held one per byte (eight at a time for 2 and 4 bits) gives the words of the general
 * path, code by code, for every width, both packings and both word orders; a code too wide for its
 * bits is refused with the same message, naming it.
 */
class BitPackingTest {

  @Test
  void bytesPackToTheWordsOfTheGeneralPath() {
    Random random = new Random(11);
    for (BitPacking packing : BitPacking.values()) {
      for (int bits : new int[] {2, 3, 4, 8}) {
        // 96 codes: whole words for every width; 100: a partial last word (WHOLE_CODES only)
        for (int length : new int[] {96, 100}) {
          if (packing == BitPacking.BIT_STREAM && length * bits % 32 != 0) {
            continue;
          }
          for (boolean wordsFirst : new boolean[] {false, true}) {
            int lines = 7;
            byte[] codes = new byte[lines * length];
            for (int i = 0; i < codes.length; i++) {
              codes[i] = (byte) random.nextInt(1 << bits);
            }
            int[] expected =
                packing.pack(
                    bits,
                    lines,
                    length,
                    (line, i) -> Byte.toUnsignedInt(codes[line * length + i]),
                    wordsFirst,
                    "w");
            String where = packing + " " + bits + " bits, length " + length + " " + wordsFirst;
            assertArrayEquals(
                expected, packing.pack(bits, lines, length, codes, wordsFirst, "w"), where);
            assertArrayEquals(
                codes.length == 0 ? new int[0] : toInts(codes),
                packing.unpack(bits, lines, length, expected, wordsFirst),
                where);
          }
        }
      }
    }
  }

  @Test
  void aCodeTooWideIsNamed() {
    for (int bits : new int[] {2, 4}) {
      byte[] codes = new byte[2 * 32];
      codes[32 + 5] = (byte) (1 << bits); // row 1, code 5
      IllegalArgumentException e =
          assertThrows(
              IllegalArgumentException.class,
              () -> BitPacking.WHOLE_CODES.pack(bits, 2, 32, codes, false, "layer.weight_packed"));
      assertEquals(
          "layer.weight_packed: value " + (1 << bits) + " at [1, 5] does not fit " + bits + " bits",
          e.getMessage());
    }
  }

  private static int[] toInts(byte[] codes) {
    int[] values = new int[codes.length];
    for (int i = 0; i < codes.length; i++) {
      values[i] = Byte.toUnsignedInt(codes[i]);
    }
    return values;
  }
}
