package llmc.quantize;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * The multiple-choice knapsack of the bit budget is exact: a hand-made case whose optimum is not
 * the greedy one, and random cases against every assignment.
 */
class BitBudgetTest {

  /**
   * Three matrices, bits 2 or 4, budget 3 bits per weight. A large matrix that gains most in total
   * but least per bit: greedy by gain per bit upgrades the two small ones (cost 1 + 1 + 10 = 12),
   * while the optimum upgrades the large one alone (cost 5 + 5 + 0 = 10).
   */
  @Test
  void handMadeCaseHasItsOptimum() {
    long[] sizes = {100, 100, 200};
    int[] choices = {2, 4};
    double[][] cost = {{5, 1}, {5, 1}, {10, 0}};
    // budget: 3 * 400 = 1200 bits; all at 2 = 800; room 400 = the large one (400) or both small
    assertArrayEquals(new int[] {0, 0, 1}, BitBudget.allocate(sizes, choices, cost, 3.0));
    assertArrayEquals(new int[] {1, 1, 1}, BitBudget.allocate(sizes, choices, cost, 4.0));
    assertArrayEquals(new int[] {0, 0, 0}, BitBudget.allocate(sizes, choices, cost, 2.0));
    assertArrayEquals(new int[] {0, 0, 1}, BitBudget.allocate(sizes, choices, cost, 3.4));
    assertThrows(
        IllegalArgumentException.class, () -> BitBudget.allocate(sizes, choices, cost, 1.9));
  }

  @Test
  void randomCasesMatchEveryAssignment() {
    Random random = new Random(9);
    int[] choices = {2, 3, 4, 8};
    for (int trial = 0; trial < 200; trial++) {
      int items = 1 + random.nextInt(6);
      long[] sizes = new long[items];
      double[][] cost = new double[items][choices.length];
      for (int i = 0; i < items; i++) {
        sizes[i] = 64L * (1 + random.nextInt(8));
        for (int c = 0; c < choices.length; c++) {
          cost[i][c] = random.nextDouble() - 0.1; // a few negative: a choice may help
        }
      }
      double target = 2 + random.nextDouble() * 6;
      int[] got = BitBudget.allocate(sizes, choices, cost, target);
      double best = bruteForce(sizes, choices, cost, target);
      assertEquals(best, total(got, cost), 1e-12, "trial " + trial);
      assertTrue(bits(got, sizes, choices) <= target * sum(sizes) + 1e-6);
    }
  }

  private static double bruteForce(long[] sizes, int[] choices, double[][] cost, double target) {
    int items = sizes.length;
    int[] pick = new int[items];
    double best = Double.POSITIVE_INFINITY;
    int combos = (int) Math.pow(choices.length, items);
    for (int k = 0; k < combos; k++) {
      int r = k;
      for (int i = 0; i < items; i++) {
        pick[i] = r % choices.length;
        r /= choices.length;
      }
      if (bits(pick, sizes, choices) <= target * sum(sizes) + 1e-6) {
        best = Math.min(best, total(pick, cost));
      }
    }
    return best;
  }

  private static double total(int[] pick, double[][] cost) {
    double t = 0;
    for (int i = 0; i < pick.length; i++) {
      t += cost[i][pick[i]];
    }
    return t;
  }

  private static double bits(int[] pick, long[] sizes, int[] choices) {
    double b = 0;
    for (int i = 0; i < pick.length; i++) {
      b += (double) sizes[i] * choices[pick[i]];
    }
    return b;
  }

  private static long sum(long[] sizes) {
    long s = 0;
    for (long n : sizes) {
      s += n;
    }
    return s;
  }
}
