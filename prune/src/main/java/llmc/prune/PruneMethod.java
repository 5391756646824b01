package llmc.prune;

/** How pruning scores weights (and groups of weights). */
public enum PruneMethod {
  /** {@code |w|}. */
  MAGNITUDE,
  /** {@code |w|^p}: a group's Lp norm orders groups as the sum of {@code |w|^p} does. */
  LP,
  /** {@code |dL/dw|}, normalised by the matrix's {@code sum |dL/dw|}. */
  SENSITIVITY,
  /** First-order Taylor {@code |w dL/dw|}. */
  TAYLOR,
  /** Wanda: {@code |w_ij| ||X_j||_2}, from calibration activations. */
  WANDA,
  /** SparseGPT: masks chosen and the remaining weights updated with the inverse Hessian. */
  SPARSEGPT;

  public boolean needsCalibration() {
    return this != MAGNITUDE && this != LP;
  }

  public boolean needsGradients() {
    return this == SENSITIVITY || this == TAYLOR;
  }

  /** Wanda and SparseGPT prune single weights from activation statistics, never groups. */
  public boolean layerwise() {
    return this == WANDA || this == SPARSEGPT;
  }

  /**
   * The default comparison group of unstructured sparsity: per output row for Wanda, per matrix
   * otherwise.
   */
  public Compare defaultCompare() {
    return this == WANDA ? Compare.ROW : Compare.MATRIX;
  }
}
