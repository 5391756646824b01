package llmc.quantize;

/**
 * What GPTQ and SparseGPT both do to the Hessian {@code H = 2/n X^T X} of a layer's inputs before
 * their column loop: dead inputs made harmless, dampening, and the upper Cholesky factor of {@code
 * H^-1}.
 */
public final class InverseHessian {
  /** Dampening is raised x10 at most this many times while the factorization fails. */
  public static final int MAX_DAMP_RETRIES = 4;

  /**
   * @param upper the upper triangular {@code U} with {@code U^T U = (H + damp mean(diag H) I)^-1},
   *     or null when no dampening made {@code H} positive definite
   * @param damp the dampening fraction of the last attempt
   */
  public record Factor(float[] upper, double damp) {}

  private InverseHessian() {}

  /**
   * Dead inputs (never active, {@code H_ii = 0}): {@code H_ii = 1} and {@code W[:, i] = 0}, so they
   * cannot disturb anything. Both arrays are modified.
   */
  public static void fixDeadInputs(float[] h, float[] w, int rows, int cols) {
    for (int i = 0; i < cols; i++) {
      if (h[i * cols + i] == 0f) {
        h[i * cols + i] = 1f;
        for (int n = 0; n < rows; n++) {
          w[n * cols + i] = 0f;
        }
      }
    }
  }

  /**
   * {@link #fixDeadInputs}, keeping the columns of {@code w} it zeroes, so that a method working in
   * the caller's matrix can give its fallback the matrix as it was ({@link DeadColumns#restore}).
   */
  public static DeadColumns fixDeadInputsSaving(float[] h, float[] w, int rows, int cols) {
    int[] columns =
        java.util.stream.IntStream.range(0, cols).filter(i -> h[i * cols + i] == 0f).toArray();
    float[] values = new float[columns.length * rows]; // [dead][rows]
    for (int d = 0; d < columns.length; d++) {
      for (int n = 0; n < rows; n++) {
        values[d * rows + n] = w[n * cols + columns[d]];
      }
    }
    fixDeadInputs(h, w, rows, cols);
    return new DeadColumns(columns, values);
  }

  /** The columns {@link #fixDeadInputsSaving} zeroed, with their values {@code [dead][rows]}. */
  public record DeadColumns(int[] columns, float[] values) {
    /** Puts the saved columns back into {@code w [rows][cols]}. */
    public void restore(float[] w, int rows, int cols) {
      for (int d = 0; d < columns.length; d++) {
        for (int n = 0; n < rows; n++) {
          w[n * cols + columns[d]] = values[d * rows + n];
        }
      }
    }
  }

  /**
   * GPTQ's {@code Hinv = cholesky(cholesky_inverse(cholesky(H + damp mean(diag H) I)), upper=True)}
   * with {@code damp = dampPercent}, raised x10 up to {@link #MAX_DAMP_RETRIES} times while the
   * factorization fails. {@code h} is consumed: the factor is computed in its memory (and is {@code
   * h} itself), so that the largest Hessian of a layer (28672 wide for {@code down_proj} of a
   * 70B-class model: 3.3 GB) is never held twice. A failed attempt gives the matrix back from its
   * untouched upper triangle, the saved diagonal and the saved diagonal blocks ({@link
   * Cholesky.DiagonalBlocks}); the bits are those of a factorization of a dampened copy.
   */
  public static Factor factor(float[] h, int cols, double dampPercent) {
    double meanDiag = 0;
    for (int i = 0; i < cols; i++) {
      meanDiag += h[i * cols + i];
    }
    meanDiag /= Math.max(1, cols);
    Cholesky.reverseInPlace(h); // P H P: see Cholesky.upperFactorOfInverse
    float[] diagonal = new float[cols];
    for (int i = 0; i < cols; i++) {
      diagonal[i] = h[i * cols + i];
    }
    Cholesky.DiagonalBlocks blocks = Cholesky.DiagonalBlocks.save(h, cols);
    double damp = dampPercent;
    for (int attempt = 0; attempt <= MAX_DAMP_RETRIES; attempt++, damp *= 10) {
      if (attempt > 0) {
        blocks.restore(h, cols);
      }
      float add = (float) (damp * meanDiag);
      for (int i = 0; i < cols; i++) {
        h[i * cols + i] = diagonal[i] + add;
      }
      if (Cholesky.upperFactorOfReversedInPlace(h, cols)) {
        return new Factor(h, damp);
      }
    }
    return new Factor(null, damp / 10);
  }
}
