package llmc.formats.gguf;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HexFormat;
import llmc.formats.BadInputException;
import org.junit.jupiter.api.function.Executable;

/**
 * Block helpers, a byte-level GGUF builder for malformed files, and the one-line error assertion.
 */
final class GgufTestFiles {

  private GgufTestFiles() {}

  static byte[] hex(String spaced) {
    return HexFormat.of().parseHex(spaced.replace(" ", ""));
  }

  static String hex(byte[] bytes) {
    return HexFormat.of().formatHex(bytes);
  }

  /** GgmlBlocks.encode of the whole array. */
  static byte[] encode(GgmlType type, float[] values) {
    byte[] bytes = new byte[(int) type.byteSize(values.length)];
    GgmlBlocks.encode(type, values, 0, values.length, MemorySegment.ofArray(bytes));
    return bytes;
  }

  static float[] decode(GgmlType type, byte[] bytes) {
    float[] values = new float[(int) (bytes.length / type.bytesPerBlock() * type.blockSize())];
    GgmlBlocks.decode(type, MemorySegment.ofArray(bytes), values, 0, values.length);
    return values;
  }

  /** The call fails with a one-line BadInputException containing every expected fragment. */
  static BadInputException assertBadInput(Executable call, String... fragments) {
    return llmc.formats.TestFiles.assertBadInput(call, fragments);
  }

  /** Little-endian GGUF bytes written field by field, so that tests can put anything anywhere. */
  static final class RawGguf {
    private final ByteBuffer buf = ByteBuffer.allocate(1 << 16).order(ByteOrder.LITTLE_ENDIAN);

    /** "GGUF", version, u64 tensor count, u64 metadata count. */
    static RawGguf header(int version, long tensors, long keys) {
      RawGguf raw = new RawGguf();
      raw.buf.put("GGUF".getBytes(StandardCharsets.US_ASCII));
      return raw.u32(version).u64(tensors).u64(keys);
    }

    RawGguf u8(int v) {
      buf.put((byte) v);
      return this;
    }

    RawGguf u32(long v) {
      buf.putInt((int) v);
      return this;
    }

    RawGguf u64(long v) {
      buf.putLong(v);
      return this;
    }

    RawGguf string(String s) {
      byte[] utf8 = s.getBytes(StandardCharsets.UTF_8);
      buf.putLong(utf8.length).put(utf8);
      return this;
    }

    /** A metadata entry with a u32 value. */
    RawGguf keyU32(String key, long value) {
      return string(key).u32(GgufValueType.U32.id()).u32(value);
    }

    /**
     * A tensor info: name, dims as GGUF stores them (ne[0] innermost), ggml type id, data offset.
     */
    RawGguf tensor(String name, long[] ne, int typeId, long offset) {
      string(name).u32(ne.length);
      for (long d : ne) {
        u64(d);
      }
      return u32(typeId).u64(offset);
    }

    /** Zero bytes up to a multiple of {@code alignment}. */
    RawGguf pad(int alignment) {
      while (buf.position() % alignment != 0) {
        buf.put((byte) 0);
      }
      return this;
    }

    RawGguf zeros(int n) {
      buf.put(new byte[n]);
      return this;
    }

    Path write(Path file) throws IOException {
      Files.write(file, Arrays.copyOf(buf.array(), buf.position()));
      return file;
    }
  }
}
