package llmc.calibration;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import llmc.formats.InvalidSettingException;
import llmc.model.TokenWindows;

/** Protocol C1: calibration windows of L tokens cut from the tokenized calibration documents. */
public final class CalibrationWindows {
  public enum Sampling {
    FIRST,
    RANDOM
  }

  /** The windows and what was asked for (fewer than asked when the stream is short). */
  public record Result(
      List<int[]> windows, int requested, int seqLen, Sampling sampling, long streamTokens) {
    public boolean shortOfRequested() {
      return windows.size() < requested;
    }
  }

  private CalibrationWindows() {}

  /**
   * FIRST: the first N non-overlapping windows (all full windows if there are fewer). RANDOM: N
   * windows at uniformly random offsets of the stream, from {@code seed}.
   */
  public static Result cut(int[] stream, int seqLen, int count, Sampling sampling, long seed) {
    if (stream.length < seqLen) {
      throw new InvalidSettingException(
          "calibration data has %s tokens, fewer than one window of %s; use more text or a smaller"
              + " {calibration.seqLen}",
          stream.length, seqLen);
    }
    List<int[]> windows;
    if (sampling == Sampling.FIRST) {
      windows = TokenWindows.first(stream, seqLen, count);
    } else {
      SplittableRandom random = new SplittableRandom(seed);
      windows = new ArrayList<>(count);
      for (int i = 0; i < count; i++) {
        int offset = random.nextInt(stream.length - seqLen + 1);
        int[] window = new int[seqLen];
        System.arraycopy(stream, offset, window, 0, seqLen);
        windows.add(window);
      }
    }
    return new Result(windows, count, seqLen, sampling, stream.length);
  }
}
