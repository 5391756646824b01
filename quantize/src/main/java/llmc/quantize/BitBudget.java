package llmc.quantize;

import java.math.BigInteger;

/**
 * The bits of each matrix under a budget of bits per weight: a multiple-choice knapsack, solved
 * exactly. Matrix {@code i} of {@code n_i} weights takes one of the choices {@code b}, costing
 * {@code cost[i][c]} (the increase of the calibration loss when only that matrix is quantized at
 * that choice) and {@code n_i b} bits; the total cost is as low as possible while {@code sum n_i
 * b_i <= target * sum n_i}. Costs are taken as additive, which is what the allocation predicts.
 *
 * <p>Dynamic programming over the bits above the smallest choice, in units of their greatest common
 * divisor (layer shapes make it large: 2^8 for stories260K, 2^23 for a 70B-class model), so the
 * table stays small for real models; a table over {@link #MAX_CELLS} is refused rather than solved
 * inexactly.
 */
public final class BitBudget {
  private BitBudget() {}

  /** The largest table solved: items times capacity units. */
  static final long MAX_CELLS = 200_000_000L;

  /**
   * @param sizes {@code n_i}, the weights of each matrix
   * @param choices the bit widths to choose from, ascending
   * @param cost {@code [items][choices]}
   * @param targetBpw the budget in code bits per weight (scales not counted)
   * @return the index into {@code choices} of each matrix's bits
   */
  public static int[] allocate(long[] sizes, int[] choices, double[][] cost, double targetBpw) {
    int items = sizes.length;
    int min = choices[0];
    long total = 0;
    for (long n : sizes) {
      total += n;
    }
    // extra bits over the smallest choice: item i at choice c weighs n_i (b_c - b_0)
    double budgetBits = targetBpw * total - (double) min * total;
    if (budgetBits < -1e-9 * total) {
      throw new IllegalArgumentException(
          "a budget of " + targetBpw + " bits per weight is below the smallest choice, " + min);
    }
    long capacityBits = (long) Math.floor(budgetBits + 1e-9 * total);
    BigInteger g = BigInteger.ZERO;
    for (long n : sizes) {
      for (int b : choices) {
        g = g.gcd(BigInteger.valueOf(n * (b - min)));
      }
    }
    long unit = g.signum() == 0 ? 1 : g.longValueExact();
    long capacity = capacityBits / unit;
    long maxExtra = 0;
    for (long n : sizes) {
      maxExtra += n * (choices[choices.length - 1] - min) / unit;
    }
    capacity = Math.min(capacity, maxExtra); // every item at its largest choice fits
    if ((capacity + 1) * items > MAX_CELLS) {
      throw new IllegalArgumentException(
          "the bit budget's table would have "
              + (capacity + 1) * items
              + " cells; give choices whose bit differences share a larger factor");
    }
    int cap = (int) capacity;
    double[] best = new double[cap + 1]; // best[c]: the least cost of the items so far in <= c
    byte[][] pick = new byte[items][cap + 1];
    double[] next = new double[cap + 1];
    for (int i = 0; i < items; i++) {
      java.util.Arrays.fill(next, Double.POSITIVE_INFINITY);
      for (int c = 0; c < choices.length; c++) {
        long w = sizes[i] * (choices[c] - min) / unit;
        for (int room = (int) Math.min(w, cap + 1L); room <= cap; room++) {
          double v = best[room - (int) w] + cost[i][c];
          if (v < next[room]) {
            next[room] = v;
            pick[i][room] = (byte) c;
          }
        }
      }
      double[] t = best;
      best = next;
      next = t;
    }
    if (Double.isInfinite(best[cap])) {
      throw new IllegalStateException("no allocation fits the budget");
    }
    int[] chosen = new int[items];
    int room = cap;
    for (int i = items - 1; i >= 0; i--) {
      chosen[i] = pick[i][room];
      room -= (int) (sizes[i] * (choices[chosen[i]] - min) / unit);
    }
    return chosen;
  }
}
