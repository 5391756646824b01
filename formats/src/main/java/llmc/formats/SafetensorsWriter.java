package llmc.formats;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SequencedMap;
import java.util.Set;
import java.util.TreeMap;

/**
 * Streaming safetensors writer: each tensor's bytes go to a temporary data file of its shard as it
 * is written, so the whole model is never in memory. finish() puts the headers in front and renames
 * the files into place: model.safetensors, or model-0000i-of-0000n.safetensors plus
 * model.safetensors.index.json. Same tensors in the same order give byte-identical files.
 *
 * <p>A data file's bytes start {@link #RESERVED} bytes in. A shard of at least {@link #IN_PLACE}
 * bytes whose header fits there gets the header in that space, padded with spaces (as the format
 * allows), and the data file itself is renamed: the data is written once. A smaller shard, or a
 * header too long, is copied behind its header into a new file, so small outputs stay compact.
 */
public final class SafetensorsWriter implements AutoCloseable {

  private static final int CHUNK_BYTES = 1 << 22; // a multiple of every dtype size

  /** Room for a shard's header in front of its data: 8 bytes of length and the JSON. */
  static final long RESERVED = 1 << 20;

  /**
   * Data bytes from which a shard is written in place; below, it is copied (16 MiB: the header's
   * room is then at most 6% of the file, and the copy costs little).
   */
  static final long IN_PLACE = 16L << 20;

  private final long reserved;
  private final long inPlace;

  private final Path dir;
  private final long maxShardBytes;
  private final Map<String, String> metadata;
  private final List<Shard> shards = new ArrayList<>();
  private final Set<String> names = new HashSet<>();
  private final List<Path> finalFiles = new ArrayList<>();
  private final List<Path> headerTemps = new ArrayList<>();
  private final ByteBuffer buffer =
      ByteBuffer.allocateDirect(CHUNK_BYTES).order(ByteOrder.LITTLE_ENDIAN);
  private final MemorySegment bufferSegment = MemorySegment.ofBuffer(buffer);
  private boolean finished;
  private boolean closed;

  /** Tensors of one output file, their bytes already in {@code dataFile}. */
  private static final class Shard {
    final Path dataFile;
    final FileChannel channel;
    final List<TensorInfo> entries = new ArrayList<>();
    long size;

    /**
     * A new file, made like any other (not by createTempFile, whose owner-only permissions the
     * output would keep when the data file itself becomes it).
     */
    Shard(Path dataFile, long reserved) throws IOException {
      this.dataFile = dataFile;
      this.channel =
          FileChannel.open(
              dataFile,
              StandardOpenOption.CREATE_NEW,
              StandardOpenOption.WRITE,
              StandardOpenOption.READ);
      channel.position(reserved);
    }
  }

  /** Fills dst (from byte 0) with bytes [fromByte, fromByte + dst.byteSize()) of the tensor. */
  private interface ChunkEncoder {
    void encode(long fromByte, MemorySegment dst);
  }

  /**
   * @param maxShardBytes data bytes per file before starting the next shard; <= 0 means one file
   */
  public SafetensorsWriter(Path dir, long maxShardBytes, Map<String, String> metadata) {
    this(dir, maxShardBytes, metadata, RESERVED, IN_PLACE);
  }

  /** With the header's room and the in-place threshold given (tests). */
  SafetensorsWriter(
      Path dir, long maxShardBytes, Map<String, String> metadata, long reserved, long inPlace) {
    this.reserved = reserved;
    this.inPlace = inPlace;
    this.dir = dir;
    this.maxShardBytes = maxShardBytes;
    // an unordered map (Map.of iterates in a per-run order) is sorted so the output stays
    // deterministic
    this.metadata =
        metadata == null
            ? Map.of()
            : metadata instanceof SequencedMap<String, String> ordered
                ? new LinkedHashMap<>(ordered)
                : new TreeMap<>(metadata);
    if (!Files.isDirectory(dir)) {
      throw new BadInputException(dir + ": output folder does not exist");
    }
  }

  /** Raw little-endian bytes; their size must be numel(shape) * dtype size. */
  public void write(String name, DType dtype, long[] shape, MemorySegment data) {
    long bytes = checkEntry(name, dtype, shape);
    if (data.byteSize() != bytes) {
      throw new IllegalArgumentException(
          "tensor '"
              + name
              + "': "
              + data.byteSize()
              + " bytes given but "
              + dtype
              + " "
              + Arrays.toString(shape)
              + " needs "
              + bytes);
    }
    append(
        name,
        dtype,
        shape,
        bytes,
        (from, dst) -> {
          MemorySegment.copy(data, from, dst, 0, dst.byteSize());
          if (data.isMapped()) {
            // a chunk of a mapped input, copied: its pages leave this process (an embedding of a
            // large model is a GB, which would otherwise stay resident until the end)
            data.asSlice(from, dst.byteSize()).unload();
          }
        });
  }

  /** F32 values stored as F32, F16, BF16 (round to nearest even) or F64. */
  public void writeFloats(String name, DType dtype, long[] shape, float[] values) {
    if (dtype != DType.F32 && dtype != DType.F16 && dtype != DType.BF16 && dtype != DType.F64) {
      throw new IllegalArgumentException("tensor '" + name + "': cannot write floats as " + dtype);
    }
    long bytes = checkLength(name, dtype, shape, values.length);
    int size = dtype.byteSize();
    append(
        name,
        dtype,
        shape,
        bytes,
        (from, dst) ->
            FloatCodec.encodeFloats(
                dtype, values, (int) (from / size), (int) (dst.byteSize() / size), dst));
  }

  /** I32 as is; I64, I16, U16, I8, U8, BOOL with a range check. */
  public void writeInts(String name, DType dtype, long[] shape, int[] values) {
    if (dtype.isFloat() || dtype == DType.U32 || dtype == DType.U64) {
      throw new IllegalArgumentException("tensor '" + name + "': cannot write ints as " + dtype);
    }
    long bytes = checkLength(name, dtype, shape, values.length);
    int size = dtype.byteSize();
    append(
        name,
        dtype,
        shape,
        bytes,
        (from, dst) ->
            FloatCodec.encodeInts(
                dtype, values, (int) (from / size), (int) (dst.byteSize() / size), dst, name));
  }

  private long checkLength(String name, DType dtype, long[] shape, int length) {
    long bytes = checkEntry(name, dtype, shape);
    if (bytes / dtype.byteSize() != length) {
      throw new IllegalArgumentException(
          "tensor '"
              + name
              + "': "
              + length
              + " values given but shape "
              + Arrays.toString(shape)
              + " holds "
              + bytes / dtype.byteSize());
    }
    return bytes;
  }

  /** Bytes the tensor needs. */
  private long checkEntry(String name, DType dtype, long[] shape) {
    if (finished || closed) {
      throw new IllegalStateException("writer already " + (closed ? "closed" : "finished"));
    }
    if (name.isEmpty() || name.equals(SafetensorsHeader.METADATA_KEY)) {
      throw new IllegalArgumentException("invalid tensor name '" + name + "'");
    }
    if (names.contains(name)) {
      throw new IllegalArgumentException("tensor '" + name + "' written twice");
    }
    long numel = 1;
    for (long d : shape) {
      if (d < 0) {
        throw new IllegalArgumentException(
            "tensor '" + name + "': negative dimension in " + Arrays.toString(shape));
      }
      numel = Math.multiplyExact(numel, d);
    }
    return Math.multiplyExact(numel, dtype.byteSize());
  }

  private void append(String name, DType dtype, long[] shape, long bytes, ChunkEncoder encoder) {
    try {
      Shard shard = shardFor(bytes);
      long start = shard.channel.position();
      try {
        for (long from = 0; from < bytes; from += CHUNK_BYTES) {
          int length = (int) Math.min(CHUNK_BYTES, bytes - from);
          encoder.encode(from, bufferSegment.asSlice(0, length));
          buffer.clear().limit(length);
          while (buffer.hasRemaining()) {
            shard.channel.write(buffer);
          }
        }
      } catch (RuntimeException e) {
        shard.channel.truncate(start).position(start);
        throw e;
      }
      shard.entries.add(new TensorInfo(name, dtype, shape, shard.size, shard.size + bytes));
      shard.size += bytes;
      names.add(name);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot write tensor '" + name + "' to " + dir, e);
    }
  }

  /**
   * A shard is closed when adding the next tensor would exceed the limit; a larger tensor gets its
   * own.
   */
  private Shard shardFor(long bytes) throws IOException {
    Shard current = shards.isEmpty() ? null : shards.getLast();
    if (current == null
        || (maxShardBytes > 0
            && !current.entries.isEmpty()
            && current.size + bytes > maxShardBytes)) {
      Path data =
          dir.resolve(
              String.format(
                  ".model-%05d.%s.data.tmp",
                  shards.size() + 1,
                  Long.toHexString(System.nanoTime() ^ ProcessHandle.current().pid() << 40)));
      current = new Shard(data, reserved);
      shards.add(current);
    }
    return current;
  }

  /** Writes the headers and, if sharded, the index; only now do the final names appear in dir. */
  public void finish() {
    if (finished) {
      return;
    }
    if (closed) {
      throw new IllegalStateException("writer already closed");
    }
    try {
      if (shards.isEmpty()) {
        shardFor(0);
      }
      int count = shards.size();
      TreeMap<String, String> weightMap = new TreeMap<>();
      long totalSize = 0;
      for (int i = 0; i < count; i++) {
        Shard shard = shards.get(i);
        String fileName =
            count == 1
                ? Checkpoint.SINGLE_FILE
                : String.format("model-%05d-of-%05d.safetensors", i + 1, count);
        writeShard(shard, fileName);
        shard.entries.forEach(t -> weightMap.put(t.name(), fileName));
        totalSize += shard.size;
      }
      if (count > 1) {
        writeIndex(weightMap, totalSize);
      }
      for (Shard shard : shards) {
        shard.channel.close();
        Files.deleteIfExists(shard.dataFile);
      }
      finished = true;
    } catch (IOException e) {
      throw new UncheckedIOException("cannot finish safetensors output in " + dir, e);
    }
  }

  private void writeShard(Shard shard, String fileName) throws IOException {
    byte[] header = header(shard.entries);
    Path target = dir.resolve(fileName);
    if (shard.size >= inPlace && 8 + header.length <= reserved) {
      // the header in the room in front of the data, padded with spaces to where the data starts
      byte[] padded = Arrays.copyOf(header, (int) (reserved - 8));
      Arrays.fill(padded, header.length, padded.length, (byte) ' ');
      ByteBuffer prefix = ByteBuffer.allocate((int) reserved).order(ByteOrder.LITTLE_ENDIAN);
      prefix.putLong(padded.length).put(padded).flip();
      for (long at = 0; prefix.hasRemaining(); ) {
        at += shard.channel.write(prefix, at);
      }
      FileTrees.move(shard.dataFile, target);
      finalFiles.add(target);
      return;
    }
    Path temp = dir.resolve("." + fileName + ".tmp");
    headerTemps.add(temp);
    try (FileChannel out =
        FileChannel.open(
            temp,
            StandardOpenOption.CREATE,
            StandardOpenOption.WRITE,
            StandardOpenOption.TRUNCATE_EXISTING)) {
      ByteBuffer prefix = ByteBuffer.allocate(8 + header.length).order(ByteOrder.LITTLE_ENDIAN);
      prefix.putLong(header.length).put(header).flip();
      while (prefix.hasRemaining()) {
        out.write(prefix);
      }
      for (long done = 0; done < shard.size; ) {
        done += shard.channel.transferTo(reserved + done, shard.size - done, out);
      }
    }
    FileTrees.move(temp, target);
    finalFiles.add(target);
  }

  /**
   * JSON: __metadata__ first if any, tensors in written order; spaces pad 8 + n to a multiple of 8.
   */
  private byte[] header(List<TensorInfo> entries) throws JsonProcessingException {
    ObjectNode root = Json.mapper().createObjectNode();
    if (!metadata.isEmpty()) {
      ObjectNode meta = root.putObject(SafetensorsHeader.METADATA_KEY);
      metadata.forEach(meta::put);
    }
    for (TensorInfo t : entries) {
      ObjectNode entry = root.putObject(t.name());
      entry.put("dtype", t.dtype().safetensorsName());
      ArrayNode shape = entry.putArray("shape");
      for (long d : t.shape()) {
        shape.add(d);
      }
      entry.putArray("data_offsets").add(t.begin()).add(t.end());
    }
    byte[] json = Json.mapper().writeValueAsBytes(root);
    int padded = (json.length + 7) / 8 * 8; // 8 + padded is then a multiple of 8 too
    byte[] header = Arrays.copyOf(json, padded);
    Arrays.fill(header, json.length, padded, (byte) ' ');
    return header;
  }

  /** {"metadata": {"total_size": N}, "weight_map": {name: shard file, ... sorted by name}} */
  private void writeIndex(TreeMap<String, String> weightMap, long totalSize) throws IOException {
    ObjectNode index = Json.mapper().createObjectNode();
    index.putObject("metadata").put("total_size", totalSize);
    ObjectNode map = index.putObject("weight_map");
    weightMap.forEach(map::put);
    Path temp = dir.resolve("." + Checkpoint.INDEX_FILE + ".tmp");
    headerTemps.add(temp);
    Json.writePretty(temp, index);
    Path target = dir.resolve(Checkpoint.INDEX_FILE);
    FileTrees.move(temp, target);
    finalFiles.add(target);
  }

  /** The files finish() wrote. */
  public List<Path> files() {
    return List.copyOf(finalFiles);
  }

  /** Without finish(): deletes everything this writer wrote. */
  @Override
  public void close() {
    if (closed) {
      return;
    }
    closed = true;
    for (Shard shard : shards) {
      try {
        shard.channel.close();
      } catch (IOException ignored) {
        // removed below
      }
    }
    if (!finished) {
      for (Shard shard : shards) {
        FileTrees.deleteQuietly(shard.dataFile);
      }
      headerTemps.forEach(FileTrees::deleteQuietly);
      finalFiles.forEach(FileTrees::deleteQuietly);
      finalFiles.clear();
    }
  }
}
