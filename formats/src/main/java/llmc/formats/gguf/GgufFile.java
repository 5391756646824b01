package llmc.formats.gguf;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import llmc.formats.BadInputException;

/**
 * One GGUF file (version 3, or 2 which has the same layout) mapped read-only into a MemorySegment;
 * closing unmaps it. Opening parses and validates the header, the metadata and every tensor info,
 * so that later reads cannot run past the file:
 *
 * <pre>
 *   "GGUF" | u32 version | u64 n_tensors | u64 n_kv
 *   n_kv x (string key | u32 value type | value)
 *   n_tensors x (string name | u32 n_dims | n_dims x u64 ne, ne[0] innermost | u32 ggml type | u64 offset)
 *   zero padding to general.alignment (default 32) | data block, each tensor at an aligned offset
 * </pre>
 */
public final class GgufFile implements AutoCloseable {

  public static final String ALIGNMENT_KEY = "general.alignment";
  public static final int DEFAULT_ALIGNMENT = 32;

  /** llama.cpp's GGML_MAX_DIMS. */
  static final int MAX_DIMS = 4;

  private final Path path;
  private final Arena arena;
  private final MemorySegment mapping;
  private final int version;
  private final GgufMetadata metadata;
  private final long alignment;
  private final long dataStart; // file offset of the data block
  private final List<GgufTensorInfo> tensors;
  private final Map<String, GgufTensorInfo> byName = new LinkedHashMap<>();

  private GgufFile(Path path, Arena arena, MemorySegment mapping) {
    this.path = path;
    this.arena = arena;
    this.mapping = mapping;
    Cursor in = new Cursor(path.toString(), mapping);
    this.version = readPreamble(in);
    long tensorCount = in.count("the tensor count");
    long keyCount = in.count("the metadata count");
    this.metadata = new GgufMetadata(path.toString(), readMetadata(in, keyCount));
    this.alignment = alignment(metadata);
    this.tensors = readTensorInfos(in, tensorCount);
    this.dataStart = (in.pos + alignment - 1) / alignment * alignment;
    checkLayout();
  }

  /** Maps and validates; BadInputException naming the file (and tensor) on failure. */
  public static GgufFile open(Path file) {
    Arena arena = Arena.ofShared();
    try (FileChannel channel = FileChannel.open(file, StandardOpenOption.READ)) {
      MemorySegment mapping = channel.map(FileChannel.MapMode.READ_ONLY, 0, channel.size(), arena);
      return new GgufFile(file, arena, mapping);
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

  private int readPreamble(Cursor in) {
    in.need(4, "the magic");
    byte[] magic = mapping.asSlice(0, 4).toArray(ValueLayout.JAVA_BYTE);
    in.pos = 4;
    if (!new String(magic, StandardCharsets.ISO_8859_1).equals("GGUF")) {
      throw new BadInputException(
          path
              + ": not a GGUF file (magic bytes "
              + HexFormat.of().formatHex(magic)
              + ", expected 47475546 \"GGUF\")");
    }
    int v = in.u32("the version");
    if (v != 0 && (v & 0xFFFF) == 0) {
      throw new BadInputException(
          path
              + ": GGUF version 0x"
              + Integer.toHexString(v)
              + " looks byte-swapped;"
              + " big-endian GGUF files are not supported, convert the model little-endian");
    }
    if (v != 2 && v != 3) {
      throw new BadInputException(
          path
              + ": GGUF version "
              + Integer.toUnsignedString(v)
              + " is not supported (llmc reads versions 2 and 3); convert the model with a current llama.cpp");
    }
    return v;
  }

  private static LinkedHashMap<String, GgufMetadata.Value> readMetadata(Cursor in, long count) {
    LinkedHashMap<String, GgufMetadata.Value> values = new LinkedHashMap<>();
    for (long i = 0; i < count; i++) {
      String key = in.string("metadata key " + i);
      if (key.isEmpty() || values.containsKey(key)) {
        throw new BadInputException(
            in.file
                + ": metadata key "
                + i
                + (key.isEmpty() ? " is empty" : " '" + key + "' appears twice")
                + "; the file is corrupt");
      }
      String what = "metadata key '" + key + "'";
      GgufValueType type = in.valueType(what);
      if (type == GgufValueType.ARRAY) {
        GgufValueType element = in.valueType(what);
        if (element == GgufValueType.ARRAY) {
          throw new BadInputException(
              in.file
                  + ": "
                  + what
                  + " is an array of arrays, which GGUF readers"
                  + " do not support; the file is corrupt");
        }
        values.put(key, new GgufMetadata.Value(type, element, in.array(element, what)));
      } else {
        values.put(key, new GgufMetadata.Value(type, null, in.scalar(type, what)));
      }
    }
    return values;
  }

  private long alignment(GgufMetadata meta) {
    if (!meta.contains(ALIGNMENT_KEY)) {
      return DEFAULT_ALIGNMENT;
    }
    if (meta.type(ALIGNMENT_KEY) != GgufValueType.U32) {
      throw new BadInputException(
          path
              + ": "
              + ALIGNMENT_KEY
              + " is "
              + meta.type(ALIGNMENT_KEY).label()
              + ", GGUF requires u32");
    }
    long a = meta.integer(ALIGNMENT_KEY);
    if (a == 0 || (a & (a - 1)) != 0) {
      throw new BadInputException(
          path + ": " + ALIGNMENT_KEY + " = " + a + " is not a power of two");
    }
    return a;
  }

  private List<GgufTensorInfo> readTensorInfos(Cursor in, long count) {
    List<GgufTensorInfo> infos = new ArrayList<>();
    for (long i = 0; i < count; i++) {
      String name = in.string("the name of tensor " + i);
      String what = "tensor '" + name + "'";
      if (byName.containsKey(name)) {
        throw new BadInputException(path + ": " + what + " appears twice; the file is corrupt");
      }
      int dims = in.u32("the dimension count of " + what);
      if (dims < 0 || dims > MAX_DIMS) {
        throw new BadInputException(
            path
                + ": "
                + what
                + " has "
                + Integer.toUnsignedString(dims)
                + " dimensions; GGUF allows at most "
                + MAX_DIMS);
      }
      long[] shape = new long[dims];
      long numel = 1;
      for (int j = 0; j < dims; j++) {
        long ne = in.u64("the dimensions of " + what);
        shape[dims - 1 - j] = ne; // ne[0] is innermost: the last row-major axis
        if (ne < 0) {
          throw new BadInputException(
              path
                  + ": "
                  + what
                  + " has dimension "
                  + Long.toUnsignedString(ne)
                  + ", too large; the file is corrupt");
        }
        numel = multiply(numel, ne, what);
      }
      int typeId = in.u32("the type of " + what);
      GgmlType type =
          GgmlType.byId(Integer.toUnsignedLong(typeId))
              .orElseThrow(
                  () ->
                      new BadInputException(
                          path
                              + ": "
                              + what
                              + " has ggml type "
                              + Integer.toUnsignedString(typeId)
                              + ", which llmc does"
                              + " not read (it reads "
                              + GgmlType.known()
                              + "); convert the model to one of those"));
      long innermost = dims == 0 ? 1 : shape[dims - 1];
      if (innermost % type.blockSize() != 0) {
        throw new BadInputException(
            path
                + ": "
                + what
                + " is "
                + type.ggmlName()
                + " with rows of "
                + innermost
                + " weights, not a multiple of its block size "
                + type.blockSize()
                + "; the file is corrupt");
      }
      multiply(numel / type.blockSize(), type.bytesPerBlock(), what);
      GgufTensorInfo info = new GgufTensorInfo(name, type, shape, in.u64("the offset of " + what));
      infos.add(info);
      byName.put(name, info);
    }
    return List.copyOf(infos);
  }

  private long multiply(long a, long b, String what) {
    try {
      return Math.multiplyExact(a, b);
    } catch (ArithmeticException e) {
      throw new BadInputException(
          path + ": the size of " + what + " overflows; the file is corrupt", e);
    }
  }

  /** Every tensor aligned, inside the file, and not overlapping another. */
  private void checkLayout() {
    long dataBytes = mapping.byteSize() - dataStart;
    for (GgufTensorInfo t : tensors) {
      if (Long.remainderUnsigned(t.offset(), alignment) != 0) {
        throw new BadInputException(
            path
                + ": tensor '"
                + t.name()
                + "' starts at data offset "
                + Long.toUnsignedString(t.offset())
                + ", not a multiple of the alignment "
                + alignment
                + "; the file is corrupt");
      }
      if (t.offset() < 0 || t.byteSize() > dataBytes - t.offset()) {
        throw new BadInputException(
            path
                + ": tensor '"
                + t.name()
                + "' needs "
                + t.byteSize()
                + " bytes at data offset "
                + Long.toUnsignedString(t.offset())
                + " but the data block (from"
                + " byte "
                + dataStart
                + ") has only "
                + Math.max(0, dataBytes)
                + " bytes; the file is"
                + " truncated, download or convert it again");
      }
    }
    List<GgufTensorInfo> byOffset =
        tensors.stream().sorted(Comparator.comparingLong(GgufTensorInfo::offset)).toList();
    for (int i = 1; i < byOffset.size(); i++) {
      GgufTensorInfo a = byOffset.get(i - 1);
      GgufTensorInfo b = byOffset.get(i);
      if (b.offset() < a.offset() + a.byteSize()) {
        throw new BadInputException(
            path
                + ": tensor '"
                + b.name()
                + "' (data bytes "
                + b.offset()
                + " to "
                + (b.offset() + b.byteSize())
                + ") overlaps tensor '"
                + a.name()
                + "' ("
                + a.offset()
                + " to "
                + (a.offset() + a.byteSize())
                + "); the file is corrupt");
      }
    }
  }

  public Path path() {
    return path;
  }

  public int version() {
    return version;
  }

  public GgufMetadata metadata() {
    return metadata;
  }

  /** general.alignment, or 32. */
  public long alignment() {
    return alignment;
  }

  /** File offset of the data block (tensor offsets are relative to it). */
  public long dataStart() {
    return dataStart;
  }

  /** In the order of the tensor infos. */
  public List<GgufTensorInfo> tensors() {
    return tensors;
  }

  public boolean contains(String name) {
    return byName.containsKey(name);
  }

  public GgufTensorInfo info(String name) {
    GgufTensorInfo info = byName.get(name);
    if (info == null) {
      throw new BadInputException(path + ": no tensor '" + name + "'");
    }
    return info;
  }

  /** The tensor's raw blocks: a slice of the mapping, valid until close(). */
  public MemorySegment bytes(String name) {
    GgufTensorInfo t = info(name);
    return mapping.asSlice(dataStart + t.offset(), t.byteSize());
  }

  /**
   * The tensor dequantized to float32, row-major ({@code [out][in]} for a weight). Its pages are
   * then let go from this process's resident memory, as in SafetensorsFile.
   */
  public float[] floats(String name) {
    GgufTensorInfo t = info(name);
    if (t.numel() > Integer.MAX_VALUE - 8) {
      throw new BadInputException(
          path
              + ": tensor '"
              + name
              + "' has "
              + t.numel()
              + " elements, too many for one Java array; read it in parts");
    }
    float[] values = new float[(int) t.numel()];
    MemorySegment bytes = bytes(name);
    GgmlBlocks.decode(t.type(), bytes, values, 0, values.length);
    if (bytes.byteSize() > 0) {
      bytes.unload();
    }
    return values;
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

  /** Little-endian reads that never pass the end of the file. */
  private static final class Cursor {
    private static final ValueLayout.OfInt U32 =
        ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfLong U64 =
        ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfShort U16 =
        ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfDouble F64 =
        ValueLayout.JAVA_DOUBLE_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    final String file;
    final MemorySegment bytes;
    long pos;

    Cursor(String file, MemorySegment bytes) {
      this.file = file;
      this.bytes = bytes;
    }

    long remaining() {
      return bytes.byteSize() - pos;
    }

    void need(long n, String what) {
      if (n < 0 || n > remaining()) {
        throw truncated(what);
      }
    }

    BadInputException truncated(String what) {
      return new BadInputException(
          file
              + ": truncated: "
              + what
              + " at byte "
              + pos
              + " runs past the end"
              + " of the file ("
              + bytes.byteSize()
              + " bytes); the file is incomplete, download or convert"
              + " it again");
    }

    int u32(String what) {
      need(4, what);
      int v = bytes.get(U32, pos);
      pos += 4;
      return v;
    }

    long u64(String what) {
      need(8, what);
      long v = bytes.get(U64, pos);
      pos += 8;
      return v;
    }

    /** A u64 count of items of at least one byte each: no more than the bytes left. */
    long count(String what) {
      long n = u64(what);
      if (n < 0 || n > remaining()) {
        throw new BadInputException(
            file
                + ": "
                + what
                + " "
                + Long.toUnsignedString(n)
                + " is more than"
                + " the "
                + remaining()
                + " bytes left could hold; the file is truncated or corrupt");
      }
      return n;
    }

    GgufValueType valueType(String what) {
      int id = u32("the type of " + what);
      return GgufValueType.byId(Integer.toUnsignedLong(id))
          .orElseThrow(
              () ->
                  new BadInputException(
                      file
                          + ": "
                          + what
                          + " has unknown value type "
                          + Integer.toUnsignedString(id)
                          + "; the file is corrupt"));
    }

    String string(String what) {
      long length = u64(what);
      need(length, what);
      if (length > Integer.MAX_VALUE - 8) {
        throw new BadInputException(
            file + ": " + what + " is a string of " + length + " bytes, too long");
      }
      byte[] utf8 = bytes.asSlice(pos, length).toArray(ValueLayout.JAVA_BYTE);
      pos += length;
      return new String(utf8, StandardCharsets.UTF_8);
    }

    /** Integers as Long (unsigned zero-extended), F32 as Float, F64 as Double, BOOL, STRING. */
    Object scalar(GgufValueType type, String what) {
      if (type == GgufValueType.STRING) {
        return string(what);
      }
      need(type.byteSize(), what);
      long at = pos;
      pos += type.byteSize();
      return switch (type) {
        case U8 -> (long) (bytes.get(ValueLayout.JAVA_BYTE, at) & 0xFF);
        case I8 -> (long) bytes.get(ValueLayout.JAVA_BYTE, at);
        case U16 -> (long) (bytes.get(U16, at) & 0xFFFF);
        case I16 -> (long) bytes.get(U16, at);
        case U32 -> Integer.toUnsignedLong(bytes.get(U32, at));
        case I32 -> (long) bytes.get(U32, at);
        case U64, I64 -> bytes.get(U64, at);
        case F32 -> Float.intBitsToFloat(bytes.get(U32, at));
        case F64 -> bytes.get(F64, at);
        case BOOL -> bytes.get(ValueLayout.JAVA_BYTE, at) != 0;
        default -> throw new AssertionError(type);
      };
    }

    /** long[] for integers, float[], double[], boolean[], or an unmodifiable List of String. */
    Object array(GgufValueType element, String what) {
      long count = u64("the length of " + what);
      long minBytes = element == GgufValueType.STRING ? 8 : element.byteSize();
      if (count < 0 || count > remaining() / minBytes) {
        throw truncated(
            what + " (" + Long.toUnsignedString(count) + " " + element.label() + " values)");
      }
      if (count > Integer.MAX_VALUE - 8) {
        throw new BadInputException(file + ": " + what + " has " + count + " values, too many");
      }
      int n = (int) count;
      switch (element) {
        case STRING -> {
          List<String> strings = new ArrayList<>(n);
          for (int i = 0; i < n; i++) {
            strings.add(string(what));
          }
          return List.copyOf(strings);
        }
        case F32 -> {
          float[] a = new float[n];
          for (int i = 0; i < n; i++) {
            a[i] = (Float) scalar(element, what);
          }
          return a;
        }
        case F64 -> {
          double[] a = new double[n];
          for (int i = 0; i < n; i++) {
            a[i] = (Double) scalar(element, what);
          }
          return a;
        }
        case BOOL -> {
          boolean[] a = new boolean[n];
          for (int i = 0; i < n; i++) {
            a[i] = (Boolean) scalar(element, what);
          }
          return a;
        }
        default -> {
          long[] a = new long[n];
          for (int i = 0; i < n; i++) {
            a[i] = (Long) scalar(element, what);
          }
          return a;
        }
      }
    }
  }
}
