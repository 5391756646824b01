package llmc.formats;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.channels.FileChannel;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * One .safetensors file mapped read-only into a MemorySegment (works beyond 2 GiB); closing unmaps
 * it.
 */
public final class SafetensorsFile implements AutoCloseable {

  private final Path path;
  private final Arena arena;
  private final SafetensorsHeader header;
  private final MemorySegment data; // the data block: file bytes [8 + n, size)
  private final Map<String, TensorInfo> byName;

  private SafetensorsFile(Path path, Arena arena, MemorySegment mapping) {
    this.path = path;
    this.arena = arena;
    this.header = SafetensorsHeader.parse(path.toString(), mapping);
    this.data = mapping.asSlice(header.dataStart());
    this.byName = new LinkedHashMap<>();
    for (TensorInfo t : header.tensors()) {
      byName.put(t.name(), t);
    }
  }

  /**
   * Maps and validates the whole header; BadInputException naming the file (and tensor) on failure.
   */
  public static SafetensorsFile open(Path file) {
    Arena arena = Arena.ofShared();
    try (FileChannel channel = FileChannel.open(file, StandardOpenOption.READ)) {
      MemorySegment mapping = channel.map(FileChannel.MapMode.READ_ONLY, 0, channel.size(), arena);
      return new SafetensorsFile(file, arena, mapping);
    } catch (NoSuchFileException e) {
      arena.close();
      throw new BadInputException(file + ": no such file", e);
    } catch (IOException e) {
      arena.close();
      throw new BadInputException(file + ": cannot read: " + e.getMessage(), e);
    } catch (RuntimeException e) {
      arena.close();
      throw e;
    }
  }

  public Path path() {
    return path;
  }

  /** The "__metadata__" map (empty if none). */
  public Map<String, String> metadata() {
    return header.metadata();
  }

  /** In data-offset order. */
  public List<TensorInfo> tensors() {
    return header.tensors();
  }

  public boolean contains(String name) {
    return byName.containsKey(name);
  }

  public TensorInfo info(String name) {
    TensorInfo info = byName.get(name);
    if (info == null) {
      throw new BadInputException(path + ": no tensor '" + name + "'");
    }
    return info;
  }

  /** The tensor's raw little-endian bytes: a slice of the mapping, valid until close(). */
  public MemorySegment bytes(String name) {
    TensorInfo t = info(name);
    return data.asSlice(t.begin(), t.byteSize());
  }

  /**
   * Any float dtype converted to F32, row-major. The tensor's pages are then let go from this
   * process's resident memory (they stay in the OS page cache): a whole tensor is read once per
   * use, and a layer-by-layer job should not hold the whole mapped checkpoint resident.
   */
  public float[] floats(String name) {
    TensorInfo t = info(name);
    float[] values = new float[arrayLength(t)];
    readFloats(name, 0, values, 0, values.length);
    if (t.byteSize() > 0) {
      bytes(name).unload();
    }
    return values;
  }

  /** Elements [fromElement, fromElement + count) of the flattened tensor, converted to F32. */
  public void readFloats(String name, long fromElement, float[] dst, int dstOffset, int count) {
    TensorInfo t = info(name);
    if (!t.dtype().isFloat()) {
      throw new BadInputException(
          path
              + ": tensor '"
              + name
              + "' has dtype "
              + t.dtype()
              + ", not a float dtype; read it with ints() or bytes()");
    }
    Objects.checkFromIndexSize(fromElement, count, t.numel());
    Objects.checkFromIndexSize(dstOffset, count, dst.length);
    FloatCodec.decodeFloats(t.dtype(), bytes(name), fromElement, dst, dstOffset, count);
    for (int i = dstOffset; i < dstOffset + count; i++) {
      if ((Float.floatToRawIntBits(dst[i]) & 0x7f800000) == 0x7f800000) {
        long element = fromElement + i - dstOffset;
        throw new BadInputException(
            path
                + ": tensor '"
                + name
                + "' holds "
                + dst[i]
                + " at element "
                + element
                + (t.shape().length == 2
                    ? " (row " + element / t.shape()[1] + ", column " + element % t.shape()[1] + ")"
                    : "")
                + "; llmc refuses tensors holding numbers that are not finite (a damaged file,"
                + " or a checkpoint saved from a diverged training)");
      }
    }
  }

  /**
   * An integer tensor (I8, U8, I16, U16, I32, BOOL; I64, U32, U64 when every value fits) as ints.
   */
  public int[] ints(String name) {
    TensorInfo t = info(name);
    int[] values = new int[arrayLength(t)];
    FloatCodec.decodeInts(
        t.dtype(), bytes(name), 0, values, 0, values.length, path + ": tensor '" + name + "'");
    return values;
  }

  private int arrayLength(TensorInfo t) {
    long n = t.numel();
    if (n > Integer.MAX_VALUE - 8) {
      throw new BadInputException(
          path
              + ": tensor '"
              + t.name()
              + "' has "
              + n
              + " elements, too many for one Java array; read it in parts");
    }
    return (int) n;
  }

  @Override
  public void close() {
    if (arena.scope().isAlive()) {
      arena.close();
    }
  }

  @Override
  public String toString() {
    return path.toString();
  }
}
