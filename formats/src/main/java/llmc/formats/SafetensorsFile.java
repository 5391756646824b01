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
    int size = t.dtype().byteSize();
    int chunk = (int) (UNLOAD_BYTES / size);
    for (int from = 0; from < values.length; from += chunk) {
      int count = Math.min(chunk, values.length - from);
      readFloats(name, from, values, from, count);
      bytes(name).asSlice((long) from * size, (long) count * size).unload();
    }
    return values;
  }

  /**
   * A whole tensor is read in pieces of this many bytes, each let go once converted, so that
   * reading a matrix adds its array to the process's memory, not its mapped pages too (0.47 GB for
   * a BF16 {@code down_proj} of a 70B-class model).
   */
  private static final long UNLOAD_BYTES = 64L << 20;

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
    int bad = Floats.firstNonFinite(dst, dstOffset, count);
    if (bad >= 0) {
      throw notFinite(t, fromElement + bad - dstOffset, dst[bad]);
    }
  }

  /**
   * A BF16 tensor's values as stored (the upper 16 bits of each float32), checked finite; its pages
   * are then let go as in {@link #floats}.
   */
  public short[] bf16(String name) {
    TensorInfo t = info(name);
    if (t.dtype() != DType.BF16) {
      throw new IllegalArgumentException(path + ": tensor '" + name + "' is not BF16");
    }
    short[] values = new short[arrayLength(t)];
    MemorySegment bytes = bytes(name);
    int chunk = (int) (UNLOAD_BYTES / 2);
    for (int from = 0; from < values.length; from += chunk) {
      int count = Math.min(chunk, values.length - from);
      MemorySegment piece = bytes.asSlice(2L * from, 2L * count);
      MemorySegment.copy(piece, BF16_BITS, 0, values, from, count);
      piece.unload();
    }
    for (int i = 0; i < values.length; i++) {
      if ((values[i] & 0x7f80) == 0x7f80) {
        throw notFinite(t, i, Float.intBitsToFloat(values[i] << 16));
      }
    }
    return values;
  }

  private static final java.lang.foreign.ValueLayout.OfShort BF16_BITS =
      java.lang.foreign.ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(
          java.nio.ByteOrder.LITTLE_ENDIAN);

  private BadInputException notFinite(TensorInfo t, long element, float value) {
    return new BadInputException(
        path
            + ": tensor '"
            + t.name()
            + "' holds "
            + value
            + " at element "
            + element
            + (t.shape().length == 2
                ? " (row " + element / t.shape()[1] + ", column " + element % t.shape()[1] + ")"
                : "")
            + "; llmc refuses tensors holding numbers that are not finite (a damaged file,"
            + " or a checkpoint saved from a diverged training)");
  }

  /**
   * An integer tensor (I8, U8, I16, U16, I32, BOOL; I64, U32, U64 when every value fits) as ints.
   */
  public int[] ints(String name) {
    TensorInfo t = info(name);
    int[] values = new int[arrayLength(t)];
    int size = t.dtype().byteSize();
    int chunk = (int) (UNLOAD_BYTES / size);
    for (int from = 0; from < values.length; from += chunk) {
      int count = Math.min(chunk, values.length - from);
      FloatCodec.decodeInts(
          t.dtype(), bytes(name), from, values, from, count, path + ": tensor '" + name + "'");
      bytes(name).asSlice((long) from * size, (long) count * size).unload(); // as in floats()
    }
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
