package llmc.calibration;

import java.nio.file.Path;
import java.util.AbstractList;
import java.util.ArrayList;
import java.util.List;

/**
 * One activation of every calibration window, {@code [rows][width]} per window: held in memory, or
 * on disk (an unlinked {@link SpillFile} in the work folder) when all windows together exceed the
 * memory budget, so that only the window being worked on is in memory. The walk reads a window with
 * {@link #get}, changes it, and gives it back with {@link #set}; in memory both are free.
 */
abstract sealed class Activations implements AutoCloseable {

  /** Windows {@code 0 .. size() - 1}. */
  abstract int size();

  /** Window {@code j}'s values: in memory the array itself, on disk a copy read from the file. */
  abstract float[] get(int j);

  /**
   * An array of window {@code j}'s size to compute its new values into (its old values, if any, are
   * not read from disk), then given to {@link #set}.
   */
  abstract float[] forWriting(int j);

  /** Window {@code j}'s values are {@code values} from now on. */
  abstract void set(int j, float[] values);

  /** Lets go of the windows' values in memory (they are computed again before they are read). */
  abstract void release();

  /** The windows as a list that reads each one when it is asked for (for the journal). */
  List<float[]> asList() {
    return new AbstractList<>() {
      @Override
      public float[] get(int j) {
        return Activations.this.get(j);
      }

      @Override
      public int size() {
        return Activations.this.size();
      }
    };
  }

  @Override
  public void close() {}

  /** {@code windows} windows of {@code floats} values each: in memory, or in {@code onDisk}. */
  static Activations of(int windows, int floats, Path onDisk) {
    return onDisk == null || windows == 0
        ? new InMemory(windows, floats)
        : new OnDisk(windows, floats, onDisk);
  }

  /** Every window's array held. */
  static final class InMemory extends Activations {
    private final List<float[]> values;
    private final int floats;

    InMemory(int windows, int floats) {
      this.values = new ArrayList<>(windows);
      this.floats = floats;
      for (int j = 0; j < windows; j++) {
        values.add(null);
      }
    }

    @Override
    int size() {
      return values.size();
    }

    @Override
    float[] get(int j) {
      float[] v = values.get(j);
      if (v == null) {
        throw new IllegalStateException("window " + j + " has no values yet");
      }
      return v;
    }

    @Override
    float[] forWriting(int j) {
      float[] v = values.get(j);
      if (v == null) {
        v = new float[floats];
        values.set(j, v);
      }
      return v;
    }

    @Override
    void set(int j, float[] v) {
      values.set(j, v);
    }

    @Override
    void release() {
      values.replaceAll(v -> null);
    }
  }

  /** Every window in a spill file, one slot each; a window is in memory only while worked on. */
  static final class OnDisk extends Activations {
    private final SpillFile file;
    private final int windows;
    private final int floats;
    private final boolean[] written;

    OnDisk(int windows, int floats, Path dir) {
      this.file = SpillFile.open(dir);
      this.windows = windows;
      this.floats = floats;
      this.written = new boolean[windows];
    }

    private SpillFile.Slot slot(int j) {
      return new SpillFile.Slot(4L * floats * j, floats);
    }

    @Override
    int size() {
      return windows;
    }

    @Override
    float[] get(int j) {
      if (!written[j]) {
        throw new IllegalStateException("window " + j + " has no values yet");
      }
      return file.read(slot(j));
    }

    @Override
    float[] forWriting(int j) {
      return new float[floats];
    }

    @Override
    void set(int j, float[] values) {
      file.write(slot(j), values);
      written[j] = true;
    }

    @Override
    void release() {}

    @Override
    public void close() {
      file.close();
    }
  }
}
