package llmc.prune;

/** The group whose lowest-scored weights an unstructured pattern removes (PROTOCOLS.md). */
public enum Compare {
  /** All weights of the matrix compete together (magnitude pruning's default). */
  MATRIX,
  /** Each output row loses the same fraction of its own weights (Wanda's comparison group). */
  ROW
}
