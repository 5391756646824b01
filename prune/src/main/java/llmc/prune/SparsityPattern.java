package llmc.prune;

import llmc.formats.BadInputException;

/** Which weights a mask may keep (PROTOCOLS.md, "Sparsity patterns"). */
public sealed interface SparsityPattern {

  /**
   * Each comparison group loses {@code floor(size * sparsity)} of its lowest-scored weights (the
   * count truncated as the reference implementations' {@code int(numel * sparsity)}).
   */
  record Unstructured(double sparsity, Compare compare) implements SparsityPattern {
    public Unstructured {
      if (!(sparsity >= 0 && sparsity <= 1)) {
        throw new IllegalArgumentException("sparsity must be in [0, 1], got " + sparsity);
      }
      if (compare == null) {
        throw new IllegalArgumentException("compare must not be null");
      }
    }
  }

  /**
   * In every run of {@code m} consecutive input weights of a row (runs start at column 0), at most
   * {@code n} are kept; a shorter last run keeps at most {@code n} too.
   */
  record NofM(int n, int m) implements SparsityPattern {
    public NofM {
      if (m < 1 || n < 0 || n > m) {
        throw new IllegalArgumentException("N:M needs 0 <= N <= M and M >= 1, got " + n + ":" + m);
      }
    }

    @Override
    public String toString() {
      return n + ":" + m;
    }
  }

  /** {@code "N:M"} with {@code 0 < N < M} (e.g. {@code "2:4"}, {@code "4:8"}). */
  static SparsityPattern parse(String nm) {
    String what = "sparsity pattern '" + nm + "': expected N:M with 0 < N < M, e.g. 2:4";
    if (nm == null) {
      throw new BadInputException("missing " + what);
    }
    String[] parts = nm.strip().split(":", -1);
    if (parts.length != 2) {
      throw new BadInputException(what);
    }
    int n;
    int m;
    try {
      n = Integer.parseInt(parts[0].strip());
      m = Integer.parseInt(parts[1].strip());
    } catch (NumberFormatException e) {
      throw new BadInputException(what);
    }
    if (n < 1 || n >= m) {
      throw new BadInputException(what);
    }
    return new NofM(n, m);
  }
}
