package llmc.formats.gguf;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;
import java.util.function.IntConsumer;
import llmc.formats.BadInputException;
import llmc.formats.FileTrees;
import llmc.formats.InvalidSettingException;
import llmc.formats.OutputPaths;

/**
 * Streaming GGUF (version 3) writer. GGUF puts every tensor info before the data, so a file is
 * written in two phases: first the metadata ({@code put*}, {@link #alignment}) and the tensors'
 * names, types and shapes ({@link #declare}); then each tensor's bytes in declaration order ({@code
 * write*}, a tensor may take several calls of whole blocks), which go straight to disk: only one
 * call's data is ever in memory. The header is written when the first data arrives, so nothing can
 * be put or declared after that.
 *
 * <p>The layout is llama.cpp's own ({@code gguf_write_to_file}): tensors in declaration order, each
 * at the end of the previous one rounded up to the alignment, zero padding after every tensor
 * including the last. The file is written as {@code .<name>.tmp-<pid>-<random>} beside the target
 * and renamed into place by {@link #finish()}; {@link #close()} without finish() deletes it, and
 * such files left by killed runs are removed by the next {@link #create}.
 */
public final class GgufWriter implements AutoCloseable {

  static final int VERSION = 3;

  /** llama.cpp's GGML_MAX_NAME: names must be shorter (it keeps a terminating zero in 64 bytes). */
  static final int MAX_NAME_BYTES = 64;

  private static final int CHUNK_BYTES = 1 << 22;

  private static final byte[] MAGIC = "GGUF".getBytes(StandardCharsets.ISO_8859_1);

  private final Path target;
  private final Path temp;
  private final boolean overwrite;
  private final List<Path> inputs;
  private final FileChannel channel;
  private final Map<String, byte[]> metadata =
      new LinkedHashMap<>(); // key -> serialized key, type, value
  private final Map<String, Integer> indexByName = new LinkedHashMap<>();
  private final List<GgufTensorInfo> tensors = new ArrayList<>();
  private int alignment = GgufFile.DEFAULT_ALIGNMENT;
  private long nextOffset; // data offset of the next declared tensor
  private boolean headerWritten;
  private int current; // index of the tensor being written
  private long currentBytes; // bytes of it written so far
  private ByteBuffer buffer; // encoded chunks on their way to the file
  private MemorySegment chunk; // the same memory
  private boolean finished;
  private boolean closed;

  /** Fills dst from byte 0 with weights [from, from + count) of one write call, encoded. */
  private interface ChunkEncoder {
    void encode(int from, int count, MemorySegment dst);
  }

  /**
   * Runs {@code body(i)} for {@code i < tasks}, possibly in parallel; returns when all are done.
   */
  public interface Tasks {
    void forEach(int tasks, IntConsumer body);
  }

  private Tasks tasks =
      (count, body) -> {
        for (int i = 0; i < count; i++) {
          body.accept(i);
        }
      };
  private int parts = 1;

  /**
   * Encodes each chunk of a {@link #writeFloats} or {@link #writeCodes} call in {@code parts}
   * ranges of whole blocks run by {@code tasks} (a thread pool). Blocks are encoded independently,
   * so the bytes are those of one thread.
   */
  public void encodeWith(Tasks tasks, int parts) {
    this.tasks = tasks;
    this.parts = Math.max(1, parts);
  }

  private GgufWriter(
      Path target, Path temp, boolean overwrite, List<Path> inputs, FileChannel channel) {
    this.target = target;
    this.temp = temp;
    this.overwrite = overwrite;
    this.inputs = inputs;
    this.channel = channel;
  }

  /** Without inputs to protect: {@link #create(Path, boolean, Collection)} with none. */
  public static GgufWriter create(Path target, boolean overwrite) {
    return create(target, overwrite, List.of());
  }

  /**
   * Refused: a target that overlaps one of {@code inputs} ({@link OutputPaths#checkDisjoint}); an
   * existing target unless {@code overwrite}, and then unless it is a GGUF file (starts with the
   * magic bytes {@code GGUF}). The parent folder is created if needed; an existing target is
   * replaced only by {@link #finish()}.
   */
  public static GgufWriter create(Path target, boolean overwrite, Collection<Path> inputs) {
    Path absolute = target.toAbsolutePath().normalize();
    if (absolute.getFileName() == null) {
      throw new BadInputException(target + ": not a usable output file");
    }
    List<Path> protectedInputs = List.copyOf(inputs);
    OutputPaths.checkDisjoint(target, protectedInputs, "out");
    FileTrees.removeStaleSiblings(absolute, protectedInputs);
    checkTarget(target, absolute, overwrite, protectedInputs);
    Path temp = FileTrees.sibling(absolute, FileTrees.Sibling.TMP);
    try {
      Files.createDirectories(absolute.getParent());
      FileChannel channel =
          FileChannel.open(temp, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE);
      return new GgufWriter(absolute, temp, overwrite, protectedInputs, channel);
    } catch (IOException e) {
      throw new BadInputException(target + ": cannot create output file: " + e.getMessage(), e);
    }
  }

  private static void checkTarget(Path given, Path absolute, boolean overwrite, List<Path> inputs) {
    OutputPaths.checkDisjoint(given, inputs, "out");
    if (Files.isDirectory(absolute, LinkOption.NOFOLLOW_LINKS)) {
      throw new BadInputException(given + " is a folder; give the path of a .gguf file");
    }
    if (!Files.exists(absolute, LinkOption.NOFOLLOW_LINKS)) {
      return;
    }
    if (!overwrite) {
      throw new InvalidSettingException(
          "{out} %s already exists; set {overwrite} or remove it", given);
    }
    if (!isGgufFile(absolute)) {
      throw new InvalidSettingException(
          "{out} %s exists and is not a GGUF file (it does not start with the bytes GGUF); llmc"
              + " replaces only GGUF files: remove it yourself or choose another {out}",
          given);
    }
  }

  /** A regular file (through links) that starts with GGUF's magic bytes. */
  static boolean isGgufFile(Path file) {
    if (!Files.isRegularFile(file)) {
      return false;
    }
    try (InputStream in = Files.newInputStream(file)) {
      return Arrays.equals(in.readNBytes(4), MAGIC);
    } catch (IOException e) {
      return false;
    }
  }

  /** The final path (absolute). */
  public Path target() {
    return target;
  }

  /** The file being written until finish(). */
  Path temp() {
    return temp;
  }

  // ---- metadata
  // -------------------------------------------------------------------------------------------

  /**
   * general.alignment (u32), a power of two; set it before declaring tensors. Without it: 32, key
   * not written.
   */
  public void alignment(int bytes) {
    checkMetadataOpen();
    if (!tensors.isEmpty()) {
      throw new IllegalStateException("set the alignment before declaring tensors");
    }
    if (bytes <= 0 || (bytes & (bytes - 1)) != 0) {
      throw new IllegalArgumentException("alignment " + bytes + " is not a power of two");
    }
    putEntry(GgufFile.ALIGNMENT_KEY, GgufValueType.U32, out -> out.u32(bytes));
    alignment = bytes;
  }

  public void putU8(String key, int value) {
    putInteger(key, GgufValueType.U8, value);
  }

  public void putI8(String key, int value) {
    putInteger(key, GgufValueType.I8, value);
  }

  public void putU16(String key, int value) {
    putInteger(key, GgufValueType.U16, value);
  }

  public void putI16(String key, int value) {
    putInteger(key, GgufValueType.I16, value);
  }

  public void putU32(String key, long value) {
    putInteger(key, GgufValueType.U32, value);
  }

  public void putI32(String key, int value) {
    putInteger(key, GgufValueType.I32, value);
  }

  /** The 64 bits of {@code value}, read as unsigned. */
  public void putU64(String key, long value) {
    putInteger(key, GgufValueType.U64, value);
  }

  public void putI64(String key, long value) {
    putInteger(key, GgufValueType.I64, value);
  }

  public void putF32(String key, float value) {
    put(key, GgufValueType.F32, out -> out.u32(Float.floatToRawIntBits(value)));
  }

  public void putF64(String key, double value) {
    put(key, GgufValueType.F64, out -> out.u64(Double.doubleToRawLongBits(value)));
  }

  public void putBool(String key, boolean value) {
    put(key, GgufValueType.BOOL, out -> out.u8(value ? 1 : 0));
  }

  public void putString(String key, String value) {
    put(key, GgufValueType.STRING, out -> out.string(value));
  }

  /** An array of one integer type (U8 to I64), each value range-checked. */
  public void putArray(String key, GgufValueType elementType, long[] values) {
    if (!elementType.isInteger()) {
      throw new IllegalArgumentException(
          key + ": " + elementType.label() + " is not an integer type");
    }
    for (long v : values) {
      checkRange(key, elementType, v);
    }
    putArray(
        key,
        elementType,
        values.length,
        out -> {
          for (long v : values) {
            out.integer(elementType, v);
          }
        });
  }

  public void putArray(String key, float[] values) {
    putArray(
        key,
        GgufValueType.F32,
        values.length,
        out -> {
          for (float v : values) {
            out.u32(Float.floatToRawIntBits(v));
          }
        });
  }

  public void putArray(String key, double[] values) {
    putArray(
        key,
        GgufValueType.F64,
        values.length,
        out -> {
          for (double v : values) {
            out.u64(Double.doubleToRawLongBits(v));
          }
        });
  }

  public void putArray(String key, boolean[] values) {
    putArray(
        key,
        GgufValueType.BOOL,
        values.length,
        out -> {
          for (boolean v : values) {
            out.u8(v ? 1 : 0);
          }
        });
  }

  /** An array of strings (tokenizer tokens, merges). */
  public void putArray(String key, List<String> values) {
    putArray(key, GgufValueType.STRING, values.size(), out -> values.forEach(out::string));
  }

  private void putInteger(String key, GgufValueType type, long value) {
    checkRange(key, type, value);
    put(key, type, out -> out.integer(type, value));
  }

  private static void checkRange(String key, GgufValueType type, long v) {
    boolean ok =
        switch (type) {
          case U8 -> v >= 0 && v <= 0xFF;
          case I8 -> v == (byte) v;
          case U16 -> v >= 0 && v <= 0xFFFF;
          case I16 -> v == (short) v;
          case U32 -> v >= 0 && v <= 0xFFFF_FFFFL;
          case I32 -> v == (int) v;
          default -> true;
        };
    if (!ok) {
      throw new IllegalArgumentException(key + ": " + v + " does not fit " + type.label());
    }
  }

  private void putArray(String key, GgufValueType elementType, int count, Consumer<Bytes> items) {
    put(
        key,
        GgufValueType.ARRAY,
        out -> {
          out.u32(elementType.id()).u64(count);
          items.accept(out);
        });
  }

  private void put(String key, GgufValueType type, Consumer<Bytes> value) {
    if (key.equals(GgufFile.ALIGNMENT_KEY)) {
      throw new IllegalArgumentException(key + " is set with alignment(int)");
    }
    putEntry(key, type, value);
  }

  private void putEntry(String key, GgufValueType type, Consumer<Bytes> value) {
    checkMetadataOpen();
    if (key.isEmpty() || metadata.containsKey(key)) {
      throw new IllegalArgumentException(
          key.isEmpty() ? "empty metadata key" : "metadata key '" + key + "' put twice");
    }
    Bytes out = new Bytes().string(key).u32(type.id());
    value.accept(out);
    metadata.put(key, out.toArray());
  }

  // ---- tensors
  // --------------------------------------------------------------------------------------------

  /**
   * Declares the next tensor: row-major {@code shape} (a weight is {@code [out, in]}; 1 to 4 dims,
   * each at least 1, the innermost a multiple of the type's block size). Returns its info, with its
   * offset in the data block.
   */
  public GgufTensorInfo declare(String name, GgmlType type, long... shape) {
    checkMetadataOpen();
    int nameBytes = name.getBytes(StandardCharsets.UTF_8).length;
    if (indexByName.containsKey(name)) {
      throw new IllegalArgumentException("tensor '" + name + "' declared twice");
    }
    if (name.isEmpty() || nameBytes >= MAX_NAME_BYTES) {
      throw new IllegalArgumentException(
          "tensor '"
              + name
              + "': llama.cpp needs names of 1 to "
              + (MAX_NAME_BYTES - 1)
              + " UTF-8 bytes");
    }
    if (shape.length < 1 || shape.length > GgufFile.MAX_DIMS) {
      throw new IllegalArgumentException(
          "tensor '"
              + name
              + "': "
              + shape.length
              + " dimensions, GGUF allows 1"
              + " to "
              + GgufFile.MAX_DIMS);
    }
    long numel = 1;
    for (long d : shape) {
      if (d < 1) {
        throw new IllegalArgumentException(
            "tensor '" + name + "': dimension " + d + " in " + Arrays.toString(shape));
      }
      numel = Math.multiplyExact(numel, d);
    }
    if (shape[shape.length - 1] % type.blockSize() != 0) {
      throw new IllegalArgumentException(
          "tensor '"
              + name
              + "': rows of "
              + shape[shape.length - 1]
              + " weights are not whole "
              + type.ggmlName()
              + " blocks of "
              + type.blockSize());
    }
    GgufTensorInfo info = new GgufTensorInfo(name, type, shape, nextOffset);
    nextOffset = Math.addExact(nextOffset, padded(type.byteSize(numel)));
    indexByName.put(name, tensors.size());
    tensors.add(info);
    return info;
  }

  /** Declared so far, in order. */
  public List<GgufTensorInfo> tensors() {
    return List.copyOf(tensors);
  }

  /**
   * Appends values.length weights (whole blocks) to tensor {@code name}, encoded by {@link
   * GgmlBlocks#encode}.
   */
  public void writeFloats(String name, float[] values) {
    GgufTensorInfo t = next(name);
    append(
        t,
        values.length,
        (from, count, dst) -> {
          try {
            GgmlBlocks.encode(t.type(), values, from, count, dst);
          } catch (BadInputException e) {
            throw new BadInputException(target + ": tensor '" + name + "': " + e.getMessage(), e);
          }
        });
  }

  /**
   * Appends codes.length weights of a quantized tensor from integer codes with their f16-exact
   * scales ({@code scales[b]} for block b of this call) and, for Q4_1 / Q5_1, mins; see {@link
   * GgmlBlocks#encodeCodes}. A refused call writes nothing.
   */
  public void writeCodes(String name, int[] codes, float[] scales, float[] mins) {
    GgufTensorInfo t = next(name);
    append(
        t,
        codes.length,
        (from, count, dst) ->
            GgmlBlocks.encodeCodes(t.type(), codes, scales, mins, from, count, dst));
  }

  /** Appends already-encoded blocks of tensor {@code name} (e.g. copied from another GGUF file). */
  public void writeBytes(String name, MemorySegment blocks) {
    GgufTensorInfo t = next(name);
    if (blocks.byteSize() % t.type().bytesPerBlock() != 0) {
      throw new IllegalArgumentException(
          "tensor '"
              + name
              + "': "
              + blocks.byteSize()
              + " bytes are not whole "
              + t.type().ggmlName()
              + " blocks of "
              + t.type().bytesPerBlock()
              + " bytes");
    }
    checkFits(t, blocks.byteSize());
    long start = position();
    try {
      for (long done = 0; done < blocks.byteSize(); done += CHUNK_BYTES) {
        long length = Math.min(CHUNK_BYTES, blocks.byteSize() - done);
        writeFully(blocks.asSlice(done, length).asByteBuffer());
      }
    } catch (RuntimeException e) {
      rewind(start);
      throw e;
    }
    advance(t, blocks.byteSize());
  }

  /** The tensor that must be written next: {@code name}, declared and not complete. */
  private GgufTensorInfo next(String name) {
    if (finished || closed) {
      throw new IllegalStateException("writer already " + (closed ? "closed" : "finished"));
    }
    Integer index = indexByName.get(name);
    if (index == null) {
      throw new IllegalArgumentException("tensor '" + name + "' was not declared");
    }
    if (index != current) {
      throw new IllegalStateException(
          "tensor '"
              + name
              + "' written out of order: "
              + (index < current
                  ? "it is already complete"
                  : "'"
                      + tensors.get(current).name()
                      + "' comes first ("
                      + currentBytes
                      + " of "
                      + tensors.get(current).byteSize()
                      + " bytes written)"));
    }
    if (!headerWritten) {
      writeHeader();
    }
    return tensors.get(current);
  }

  private void checkFits(GgufTensorInfo t, long bytes) {
    if (bytes > t.byteSize() - currentBytes) {
      throw new IllegalArgumentException(
          "tensor '"
              + t.name()
              + "': "
              + bytes
              + " more bytes given but only "
              + (t.byteSize() - currentBytes)
              + " of its "
              + t.byteSize()
              + " are left");
    }
  }

  private void append(GgufTensorInfo t, int weights, ChunkEncoder encoder) {
    GgmlType type = t.type();
    long bytes = type.byteSize(weights);
    checkFits(t, bytes);
    if (buffer == null) {
      buffer = ByteBuffer.allocateDirect(CHUNK_BYTES);
      chunk =
          MemorySegment.ofBuffer(buffer); // all of it: a segment of a buffer starts at its position
    }
    int chunkWeights = CHUNK_BYTES / type.bytesPerBlock() * type.blockSize();
    long start = position();
    try {
      for (int from = 0; from < weights; from += chunkWeights) {
        int count = Math.min(chunkWeights, weights - from);
        int length = (int) type.byteSize(count);
        int blocks = count / type.blockSize();
        int perPart = (blocks + parts - 1) / parts;
        int first = from;
        tasks.forEach(
            parts == 1 ? 1 : (blocks + perPart - 1) / perPart,
            part -> {
              int b0 = part * perPart;
              int partBlocks = Math.min(perPart, blocks - b0);
              encoder.encode(
                  first + b0 * type.blockSize(),
                  partBlocks * type.blockSize(),
                  chunk.asSlice(
                      (long) b0 * type.bytesPerBlock(), (long) partBlocks * type.bytesPerBlock()));
            });
        writeFully(buffer.clear().limit(length));
      }
    } catch (RuntimeException e) {
      rewind(start);
      throw e;
    }
    advance(t, bytes);
  }

  /** Counts the bytes; a complete tensor gets its zero padding and the next one becomes current. */
  private void advance(GgufTensorInfo t, long bytes) {
    currentBytes += bytes;
    if (currentBytes == t.byteSize()) {
      writeFully(ByteBuffer.allocate((int) (padded(t.byteSize()) - t.byteSize())));
      current++;
      currentBytes = 0;
    }
  }

  private long padded(long bytes) {
    return Math.ceilDiv(bytes, alignment) * alignment;
  }

  // ---- file
  // -----------------------------------------------------------------------------------------------

  /**
   * magic, version, counts, metadata, tensor infos (dims reversed: ne[0] innermost), zeros to the
   * alignment.
   */
  private void writeHeader() {
    Bytes out = new Bytes();
    out.u8('G').u8('G').u8('U').u8('F').u32(VERSION).u64(tensors.size()).u64(metadata.size());
    metadata.values().forEach(out::bytes);
    for (GgufTensorInfo t : tensors) {
      out.string(t.name()).u32(t.shape().length);
      for (long ne : t.ne()) {
        out.u64(ne);
      }
      out.u32(t.type().id()).u64(t.offset());
    }
    while (out.size() % alignment != 0) {
      out.u8(0);
    }
    writeFully(ByteBuffer.wrap(out.toArray()));
    headerWritten = true;
  }

  /**
   * Checks that every declared tensor is complete and renames the file into place; returns the
   * target.
   */
  public Path finish() {
    if (finished) {
      return target;
    }
    if (closed) {
      throw new IllegalStateException("writer already closed");
    }
    if (!headerWritten) {
      writeHeader();
    }
    if (current < tensors.size()) {
      GgufTensorInfo t = tensors.get(current);
      throw new IllegalStateException(
          "tensor '"
              + t.name()
              + "' has "
              + currentBytes
              + " of its "
              + t.byteSize()
              + " bytes; write every declared tensor before finish()");
    }
    try {
      channel.close();
      checkTarget(target, target, overwrite, inputs);
      try {
        Files.move(temp, target, StandardCopyOption.ATOMIC_MOVE);
      } catch (AtomicMoveNotSupportedException e) {
        Files.move(temp, target, StandardCopyOption.REPLACE_EXISTING);
      }
    } catch (IOException e) {
      throw new UncheckedIOException("cannot move " + temp + " to " + target, e);
    }
    finished = true;
    return target;
  }

  /** Without finish(): deletes the temporary file. */
  @Override
  public void close() {
    if (closed) {
      return;
    }
    closed = true;
    try {
      channel.close();
    } catch (IOException ignored) {
      // deleted below
    }
    if (!finished) {
      try {
        Files.deleteIfExists(temp);
      } catch (IOException ignored) {
        // best effort on a cleanup path
      }
    }
  }

  private void checkMetadataOpen() {
    if (finished || closed) {
      throw new IllegalStateException("writer already " + (closed ? "closed" : "finished"));
    }
    if (headerWritten) {
      throw new IllegalStateException(
          "metadata and tensor declarations must come before the first tensor data");
    }
  }

  private long position() {
    try {
      return channel.position();
    } catch (IOException e) {
      throw new UncheckedIOException("cannot write " + temp, e);
    }
  }

  /** Drops what a failed call wrote. */
  private void rewind(long position) {
    try {
      channel.truncate(position).position(position);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot write " + temp, e);
    }
  }

  private void writeFully(ByteBuffer bytes) {
    try {
      while (bytes.hasRemaining()) {
        channel.write(bytes);
      }
    } catch (IOException e) {
      throw new UncheckedIOException("cannot write " + temp, e);
    }
  }

  /** A growable little-endian byte buffer for the header. */
  private static final class Bytes {
    private ByteBuffer buf = ByteBuffer.allocate(256).order(ByteOrder.LITTLE_ENDIAN);

    private ByteBuffer room(int n) {
      if (buf.remaining() < n) {
        ByteBuffer bigger =
            ByteBuffer.allocate(Math.max(buf.capacity() * 2, buf.position() + n))
                .order(ByteOrder.LITTLE_ENDIAN);
        buf = bigger.put(buf.flip());
      }
      return buf;
    }

    Bytes u8(int v) {
      room(1).put((byte) v);
      return this;
    }

    Bytes u32(int v) {
      room(4).putInt(v);
      return this;
    }

    Bytes u64(long v) {
      room(8).putLong(v);
      return this;
    }

    Bytes integer(GgufValueType type, long v) {
      switch (type.byteSize()) {
        case 1 -> room(1).put((byte) v);
        case 2 -> room(2).putShort((short) v);
        case 4 -> room(4).putInt((int) v);
        default -> room(8).putLong(v);
      }
      return this;
    }

    /** u64 byte length + UTF-8 bytes. */
    Bytes string(String s) {
      byte[] utf8 = s.getBytes(StandardCharsets.UTF_8);
      u64(utf8.length);
      return bytes(utf8);
    }

    Bytes bytes(byte[] b) {
      room(b.length).put(b);
      return this;
    }

    int size() {
      return buf.position();
    }

    byte[] toArray() {
      byte[] out = new byte[buf.position()];
      buf.get(0, out);
      return out;
    }
  }
}
