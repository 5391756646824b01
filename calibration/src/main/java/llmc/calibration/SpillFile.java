package llmc.calibration;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import llmc.formats.BadInputException;

/**
 * Float32 arrays set aside on disk and read back: a layer's finished pruned matrices wait here
 * while the Hessian of its widest input takes their memory, and calibration activations too large
 * for the budget live here between layers. The file is unlinked as soon as it is opened, so nothing
 * of it outlives the process (a crash leaves no file behind, and the work folder stays a valid
 * journal); written and read with positional I/O through the page cache, so the values count
 * against neither the heap nor the process's resident memory.
 */
final class SpillFile implements AutoCloseable {
  private static final int CHUNK_FLOATS = 1 << 21; // 8 MB per transfer

  private final Path where;
  private final FileChannel channel;
  private final Path madeDir; // the folder this file made, or null
  private final ByteBuffer buffer =
      ByteBuffer.allocateDirect(4 * CHUNK_FLOATS).order(ByteOrder.LITTLE_ENDIAN);
  private long end;

  /** Where one matrix lies: {@code length} floats from byte {@code offset}. */
  record Slot(long offset, int length) {}

  private SpillFile(Path where, FileChannel channel, Path madeDir) {
    this.where = where;
    this.channel = channel;
    this.madeDir = madeDir;
  }

  /**
   * A spill file in {@code dir} (made if missing, and removed on close if still empty), unlinked.
   */
  static SpillFile open(Path dir) {
    try {
      boolean made = !Files.exists(dir);
      Files.createDirectories(dir);
      Path file = Files.createTempFile(dir, "spill-", ".tmp");
      FileChannel channel =
          FileChannel.open(file, StandardOpenOption.READ, StandardOpenOption.WRITE);
      Files.delete(file); // the open channel keeps the data; no name remains to clean up
      return new SpillFile(file, channel, made ? dir : null);
    } catch (IOException e) {
      throw new BadInputException(
          dir + ": cannot hold finished matrices there while a layer is compressed: " + e, e);
    }
  }

  /** Appends {@code values}; returns where they lie. */
  Slot write(float[] values) {
    Slot slot = new Slot(end, values.length);
    write(slot, values);
    return slot;
  }

  /** Writes {@code values} (of the slot's length) at {@code slot}, over what was there. */
  void write(Slot slot, float[] values) {
    if (values.length != slot.length()) {
      throw new IllegalArgumentException(
          "a slot of " + slot.length() + " floats, given " + values.length);
    }
    long at = slot.offset();
    try {
      for (int from = 0; from < values.length; from += CHUNK_FLOATS) {
        int n = Math.min(CHUNK_FLOATS, values.length - from);
        buffer.clear();
        buffer.asFloatBuffer().put(values, from, n);
        buffer.limit(4 * n);
        while (buffer.hasRemaining()) {
          at += channel.write(buffer, at);
        }
      }
    } catch (IOException e) {
      throw failed("write to", e);
    }
    end = Math.max(end, at);
  }

  /** The values written at {@code slot}, as a new array. */
  float[] read(Slot slot) {
    float[] values = new float[slot.length()];
    try {
      long at = slot.offset();
      for (int from = 0; from < values.length; from += CHUNK_FLOATS) {
        int n = Math.min(CHUNK_FLOATS, values.length - from);
        buffer.clear();
        buffer.limit(4 * n);
        while (buffer.hasRemaining()) {
          int read = channel.read(buffer, at + buffer.position());
          if (read < 0) {
            throw new IOException("the file ended at byte " + (at + buffer.position()));
          }
        }
        buffer.flip();
        FloatBuffer floats = buffer.asFloatBuffer();
        floats.get(values, from, n);
        at += 4L * n;
      }
    } catch (IOException e) {
      throw failed("read from", e);
    }
    return values;
  }

  /** Forgets every slot: the next write starts at the beginning, the disk space is given back. */
  void clear() {
    try {
      channel.truncate(0);
      end = 0;
    } catch (IOException e) {
      throw failed("truncate", e);
    }
  }

  private UncheckedIOException failed(String what, IOException e) {
    return new UncheckedIOException(
        "cannot " + what + " the spill file " + where + " (unlinked; in the work folder): " + e, e);
  }

  @Override
  public void close() {
    try {
      channel.close();
      if (madeDir != null) {
        try {
          Files.deleteIfExists(madeDir); // only when nothing else (a journal) was put there
        } catch (java.nio.file.DirectoryNotEmptyException kept) {
          // the journal's
        }
      }
    } catch (IOException e) {
      throw failed("close", e);
    }
  }
}
