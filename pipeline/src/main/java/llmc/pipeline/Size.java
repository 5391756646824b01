package llmc.pipeline;

/**
 * Bytes of the weights before and after a stage, and their ratio (null where a report leaves it
 * out).
 */
public record Size(long inputBytes, long outputBytes, Double compression) {
  static Size of(long inputBytes, long outputBytes) {
    return new Size(inputBytes, outputBytes, (double) inputBytes / outputBytes);
  }
}
