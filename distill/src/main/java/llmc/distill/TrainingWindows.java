package llmc.distill;

import java.util.SplittableRandom;

/**
 * Training windows by protocol D1: from one token stream, each batch draws windows of {@code
 * length} tokens at uniform random starts from a generator seeded with {@code seed}. The n-th batch
 * depends only on the seed and n, so a resumed run draws what the uninterrupted run would.
 */
public final class TrainingWindows {
  private final int[] stream;
  private final int length;
  private final long seed;
  private SplittableRandom random;
  private long drawn;

  public TrainingWindows(int[] stream, int length, long seed) {
    if (stream.length < length) {
      throw new IllegalArgumentException(
          "the training text has " + stream.length + " tokens, fewer than one window of " + length);
    }
    this.stream = stream;
    this.length = length;
    this.seed = seed;
    this.random = new SplittableRandom(seed);
  }

  /** The next {@code batch} windows {@code [batch][length]}. */
  public int[][] next(int batch) {
    int[][] windows = new int[batch][];
    for (int b = 0; b < batch; b++) {
      int start = random.nextInt(stream.length - length + 1);
      windows[b] = java.util.Arrays.copyOfRange(stream, start, start + length);
      drawn++;
    }
    return windows;
  }

  /** Windows drawn so far: the data position a checkpoint stores. */
  public long drawn() {
    return drawn;
  }

  /** Restarts the generator and skips to {@code drawn} windows (a resumed run). */
  public void seek(long drawn) {
    random = new SplittableRandom(seed);
    this.drawn = 0;
    for (long i = 0; i < drawn; i++) {
      random.nextInt(stream.length - length + 1);
      this.drawn++;
    }
  }

  public int length() {
    return length;
  }

  public int streamTokens() {
    return stream.length;
  }
}
