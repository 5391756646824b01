package llmc.prune;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import java.util.Comparator;
import java.util.Random;
import java.util.stream.IntStream;
import llmc.formats.BadInputException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** Hand-computed masks: comparison groups, N:M runs, ties, counts; the pattern parser. */
class MasksTest {
  static final boolean T = true;
  static final boolean F = false;

  static SparsityPattern unstructured(double sparsity, Compare compare) {
    return new SparsityPattern.Unstructured(sparsity, compare);
  }

  @Test
  void matrixComparisonPrunesTheLowestOfTheWholeMatrix() {
    float[] scores = { // [2][4]
      1, 2, 3, 4,
      5, 6, 7, 8
    };
    assertArrayEquals(
        new boolean[] {F, F, F, F, T, T, T, T},
        Masks.select(scores, 2, 4, unstructured(0.5, Compare.MATRIX)));
    assertArrayEquals(
        new boolean[] {F, F, T, T, F, F, T, T},
        Masks.select(scores, 2, 4, unstructured(0.5, Compare.ROW)));
  }

  @Test
  void prunedCountIsTruncated() {
    float[] scores = {9, 8, 7, 6, 5, 4, 3, 2, 1, 0};
    // floor(10 * 0.3) = 3: the three lowest (indices 7, 8, 9)
    assertArrayEquals(
        new boolean[] {T, T, T, T, T, T, T, F, F, F},
        Masks.select(scores, 1, 10, unstructured(0.3, Compare.MATRIX)));
    // floor(10 * 0.39) = 3
    assertArrayEquals(
        new boolean[] {T, T, T, T, T, T, T, F, F, F},
        Masks.select(scores, 1, 10, unstructured(0.39, Compare.ROW)));
    assertArrayEquals(
        new boolean[10], Masks.select(scores, 1, 10, unstructured(1, Compare.MATRIX)));
    boolean[] all = new boolean[10];
    Arrays.fill(all, true);
    assertArrayEquals(all, Masks.select(scores, 1, 10, unstructured(0, Compare.ROW)));
  }

  @Test
  void twoOfFourKeepsTheTwoHighestOfEachRun() {
    float[] scores = { // [2][8]
      4, 1, 3, 2, 0.5f, 0.1f, 0.9f, 0.7f, -1, -2, -3, -4, 8, 8.5f, 1, 0
    };
    assertArrayEquals(
        new boolean[] {
          T, F, T, F, F, F, T, T,
          T, T, F, F, T, T, F, F
        },
        Masks.select(scores, 2, 8, new SparsityPattern.NofM(2, 4)));
  }

  @Test
  void fourOfEightAndAShortLastRun() {
    float[] scores = {8, 1, 7, 2, 6, 3, 5, 4, /* short run of 5: */ 0, 9, 1, 8, 2};
    assertArrayEquals(
        new boolean[] {T, F, T, F, T, F, T, F, F, T, T, T, T},
        Masks.select(scores, 1, 13, new SparsityPattern.NofM(4, 8)));
    // a last run no longer than N is kept whole
    assertArrayEquals(
        new boolean[] {T, F, F, T, T, T},
        Masks.select(new float[] {5, 1, 2, 6, 0, 0}, 1, 6, new SparsityPattern.NofM(2, 4)));
  }

  @Test
  void tiesPruneTheLowerIndexFirst() {
    assertArrayEquals(
        new boolean[] {F, F, T, T, T, F, F, T},
        Masks.select(new float[] {1, 1, 1, 1, 2, 0, 0, 2}, 1, 8, new SparsityPattern.NofM(2, 4)));
    float[] equal = {1, 1, 1, 1}; // [2][2]
    assertArrayEquals(
        new boolean[] {F, F, T, T}, Masks.select(equal, 2, 2, unstructured(0.5, Compare.MATRIX)));
    assertArrayEquals(
        new boolean[] {F, T, F, T}, Masks.select(equal, 2, 2, unstructured(0.5, Compare.ROW)));
    // the sorted path (groups longer than 16): 3 below the tie, 2 of the 5 tied at 1 pruned
    float[] long20 = new float[20];
    Arrays.fill(long20, 5);
    long20[2] = 0;
    long20[10] = 0;
    long20[19] = 0.5f;
    for (int i : new int[] {4, 7, 12, 15, 18}) {
      long20[i] = 1;
    }
    boolean[] keep = Masks.select(long20, 1, 20, unstructured(0.25, Compare.MATRIX));
    for (int i = 0; i < 20; i++) {
      assertEquals(!(i == 2 || i == 10 || i == 19 || i == 4 || i == 7), keep[i], "index " + i);
    }
  }

  @Test
  void orderIsFloatCompare() {
    // NaN above every number, -0.0 below 0.0
    float[] scores = {Float.NaN, 0f, -0f, 1f};
    assertArrayEquals(
        new boolean[] {T, F, F, T}, Masks.select(scores, 1, 4, new SparsityPattern.NofM(2, 4)));
    assertArrayEquals(
        new boolean[] {T, T, F, T}, Masks.select(scores, 1, 4, unstructured(0.25, Compare.ROW)));
  }

  /** The sorted path and a plain sort by (score, index) agree, with many ties, in every mode. */
  @ParameterizedTest
  @ValueSource(ints = {1, 2, 7})
  void selectionEqualsSortByScoreThenIndex(int seed) {
    Random random = new Random(seed);
    int rows = 13;
    int cols = 77;
    float[] scores = new float[rows * cols];
    for (int i = 0; i < scores.length; i++) {
      scores[i] = random.nextInt(9);
    }
    for (double sparsity : new double[] {0.1, 0.5, 0.77}) {
      boolean[] matrix = Masks.select(scores, rows, cols, unstructured(sparsity, Compare.MATRIX));
      assertArrayEquals(
          bruteForce(scores, 0, scores.length, (int) (scores.length * sparsity)),
          Arrays.copyOf(matrix, matrix.length));
      boolean[] row = Masks.select(scores, rows, cols, unstructured(sparsity, Compare.ROW));
      for (int r = 0; r < rows; r++) {
        assertArrayEquals(
            bruteForce(scores, r * cols, cols, (int) (cols * sparsity)),
            Arrays.copyOfRange(row, r * cols, (r + 1) * cols));
      }
    }
    boolean[] nm = Masks.select(scores, rows, cols, new SparsityPattern.NofM(3, 20));
    for (int r = 0; r < rows; r++) {
      for (int c = 0; c < cols; c += 20) {
        int len = Math.min(20, cols - c);
        assertArrayEquals(
            bruteForce(scores, r * cols + c, len, Math.max(0, len - 3)),
            Arrays.copyOfRange(nm, r * cols + c, r * cols + c + len));
      }
    }
  }

  @Test
  void keysOrderAsFloatCompare() {
    float[] values = {
      Float.NEGATIVE_INFINITY,
      -3.5f,
      -Float.MIN_VALUE,
      -0f,
      0f,
      Float.MIN_VALUE,
      1f,
      Float.MAX_VALUE,
      Float.POSITIVE_INFINITY,
      Float.NaN
    };
    for (int i = 0; i + 1 < values.length; i++) {
      assertTrue(
          Masks.key(values[i]) < Masks.key(values[i + 1]), values[i] + " < " + values[i + 1]);
    }
    assertEquals(
        Masks.key(Float.NaN), Masks.key(Float.intBitsToFloat(0xffc00001)), "every NaN is one key");
  }

  /** Quickselect (short groups) and radix selection (long ones) agree with sorting. */
  @Test
  void kthLowestEqualsSorting() {
    Random random = new Random(11);
    for (int trial = 0; trial < 120; trial++) {
      int len =
          trial < 100
              ? 1 + random.nextInt(trial < 50 ? 100 : 5000)
              : Masks.RADIX + random.nextInt(5000);
      float[] a = new float[len];
      int kind = trial % 5;
      for (int i = 0; i < len; i++) {
        a[i] =
            switch (kind) {
              case 0 -> (float) random.nextGaussian();
              case 1 -> random.nextInt(3); // many ties
              case 2 -> i; // sorted
              case 3 -> len - i; // reversed
              default -> new float[] {Float.NaN, -0f, 0f, 1f, -1f}[random.nextInt(5)];
            };
      }
      float[] sorted = a.clone();
      Arrays.sort(sorted);
      int k = random.nextInt(len);
      assertEquals(Masks.key(sorted[k]), Masks.kthLowestKey(a, 0, len, k), "trial " + trial);
    }
  }

  /** A matrix long enough for radix selection, with ties at the threshold. */
  @Test
  void largeMatrixSelectionEqualsSortByScoreThenIndex() {
    Random random = new Random(5);
    float[] scores = new float[300 * 250];
    for (int i = 0; i < scores.length; i++) {
      scores[i] = random.nextInt(1000) / 8f;
    }
    assertTrue(scores.length >= Masks.RADIX);
    for (double sparsity : new double[] {0.5, 0.123}) {
      assertArrayEquals(
          bruteForce(scores, 0, scores.length, (int) (scores.length * sparsity)),
          Masks.select(scores, 300, 250, unstructured(sparsity, Compare.MATRIX)));
    }
  }

  static boolean[] bruteForce(float[] scores, int from, int len, int k) {
    Integer[] order = IntStream.range(0, len).boxed().toArray(Integer[]::new);
    Arrays.sort(
        order, Comparator.<Integer>comparingDouble(i -> scores[from + i]).thenComparingInt(i -> i));
    boolean[] keep = new boolean[len];
    Arrays.fill(keep, true);
    for (int i = 0; i < k; i++) {
      keep[order[i]] = false;
    }
    return keep;
  }

  @Test
  void applySparsityAndSatisfies() {
    float[] w = {0.5f, -2, 3, 0, 1, 1};
    float[] pruned = Masks.apply(w, new boolean[] {F, T, T, F, T, F});
    assertArrayEquals(new float[] {0, -2, 3, 0, 1, 0}, pruned);
    assertArrayEquals(new float[] {0.5f, -2, 3, 0, 1, 1}, w, "apply leaves w alone");
    assertEquals(0.5, Masks.sparsity(pruned));
    assertEquals(2.0 / 3, Masks.sparsity(new float[] {0, -0f, 1}));
    // [2][6], runs of 4 from column 0 (the last one short)
    float[] twoRows = {
      1, 0, 2, 0, 3, 4,
      0, 0, 0, 5, 6, 0
    };
    assertTrue(Masks.satisfies(twoRows, 2, 6, 2, 4));
    assertFalse(Masks.satisfies(twoRows, 2, 6, 1, 4));
    assertFalse(Masks.satisfies(new float[] {1, 0, 2, 3}, 1, 4, 2, 4));
    assertFalse(
        Masks.satisfies(new float[] {0, 0, 0, 0, 1, 2, Float.NaN}, 1, 7, 2, 4), "NaN is not zero");
  }

  @Test
  void magnitudeAndWandaScores() {
    assertArrayEquals(new float[] {1.5f, 2, 0}, Scores.magnitude(new float[] {-1.5f, 2, -0f}));
    float[] w = {1, -2, 3, -4}; // [2][2]
    assertArrayEquals(new float[] {2, 6, 6, 12}, Scores.wanda(w, 2, 2, new double[] {4, 9}));
  }

  @Test
  void parsesNofM() {
    assertEquals(new SparsityPattern.NofM(2, 4), SparsityPattern.parse("2:4"));
    assertEquals(new SparsityPattern.NofM(4, 8), SparsityPattern.parse(" 4:8 "));
    assertEquals("2:4", SparsityPattern.parse("2:4").toString());
    for (String junk :
        new String[] {"", "2", "2:", ":4", "2:4:8", "a:b", "2.0:4", "4:2", "0:4", "4:4", "-1:4"}) {
      assertThrows(BadInputException.class, () -> SparsityPattern.parse(junk), junk);
    }
    assertThrows(BadInputException.class, () -> SparsityPattern.parse(null));
    assertThrows(
        IllegalArgumentException.class, () -> new SparsityPattern.Unstructured(1.5, Compare.ROW));
    assertThrows(IllegalArgumentException.class, () -> new SparsityPattern.NofM(5, 4));
  }
}
