package llmc.prune;

/**
 * Importance scores of the weights of one matrix {@code [rows][cols]}; the lowest are pruned first.
 */
public final class Scores {

  private Scores() {}

  /** Magnitude pruning: {@code S_ij = |W_ij|} (a new array). */
  public static float[] magnitude(float[] w) {
    float[] s = new float[w.length];
    for (int i = 0; i < w.length; i++) {
      s[i] = Math.abs(w[i]);
    }
    return s;
  }

  /**
   * Wanda (Sun et al. 2023, "A Simple and Effective Pruning Approach for Large Language Models"):
   * {@code S_ij = |W_ij| * ||X_j||_2} with {@code ||X_j||_2 = sqrt(sum_t X_tj^2)} the norm of input
   * feature {@code j} over the calibration tokens ({@code columnSquaredNorms [cols]}, as {@code
   * InputStatistics.columnSquaredNorms()}). The product is taken in float64 and rounded once. Wanda
   * compares these within each output row ({@link Compare#ROW}).
   */
  public static float[] wanda(float[] w, int rows, int cols, double[] columnSquaredNorms) {
    if (w.length != (long) rows * cols || columnSquaredNorms.length != cols) {
      throw new IllegalArgumentException("w must be rows*cols and columnSquaredNorms cols long");
    }
    double[] norm = new double[cols];
    for (int j = 0; j < cols; j++) {
      norm[j] = Math.sqrt(columnSquaredNorms[j]);
    }
    float[] s = new float[w.length];
    for (int r = 0; r < rows; r++) {
      for (int j = 0; j < cols; j++) {
        s[r * cols + j] = (float) (Math.abs((double) w[r * cols + j]) * norm[j]);
      }
    }
    return s;
  }
}
