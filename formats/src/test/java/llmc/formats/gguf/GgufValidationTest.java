package llmc.formats.gguf;

import static llmc.formats.gguf.GgufTestFiles.assertBadInput;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import llmc.formats.gguf.GgufTestFiles.RawGguf;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Every malformed GGUF file is refused at open() with one line naming the file and, where there is
 * one, the tensor.
 */
class GgufValidationTest {

  private static final int Q4_0 = 2;
  private static final int F32 = 0;

  @TempDir Path dir;

  @Test
  void wellFormedRawFileOpensIncludingVersion2() throws IOException {
    // the builder itself makes readable files: one q4_0 [1, 32] tensor, 18 bytes at data offset 0
    for (int version : new int[] {2, 3}) {
      Path file =
          RawGguf.header(version, 1, 1)
              .keyU32("k", 7)
              .tensor("w", new long[] {32, 1}, Q4_0, 0)
              .pad(32)
              .zeros(18)
              .write(dir.resolve("v" + version));
      try (GgufFile gguf = GgufFile.open(file)) {
        assertEquals(version, gguf.version());
        assertEquals(7, gguf.metadata().integer("k"));
        assertArrayEquals(new long[] {1, 32}, gguf.info("w").shape());
        assertEquals(32, gguf.floats("w").length);
      }
    }
  }

  @Test
  void badMagicIsRefused() throws IOException {
    Path file = Files.write(dir.resolve("model.bin"), "GGML\3\0\0\0".getBytes());
    assertBadInput(() -> GgufFile.open(file), "model.bin", "not a GGUF file", "47474d4c");
    Path tiny = Files.write(dir.resolve("tiny.gguf"), new byte[] {'G', 'G'});
    assertBadInput(() -> GgufFile.open(tiny), "tiny.gguf", "truncated", "the magic");
    assertBadInput(
        () -> GgufFile.open(dir.resolve("missing.gguf")), "missing.gguf", "no such file");
  }

  @Test
  void unsupportedVersionIsRefused() throws IOException {
    Path v1 = RawGguf.header(1, 0, 0).write(dir.resolve("v1.gguf"));
    assertBadInput(() -> GgufFile.open(v1), "v1.gguf", "version 1 is not supported");
    Path v4 = RawGguf.header(4, 0, 0).write(dir.resolve("v4.gguf"));
    assertBadInput(() -> GgufFile.open(v4), "v4.gguf", "version 4 is not supported");
    Path swapped = RawGguf.header(0x03000000, 0, 0).write(dir.resolve("be.gguf"));
    assertBadInput(() -> GgufFile.open(swapped), "be.gguf", "byte-swapped", "big-endian");
  }

  @Test
  void truncatedFilesAreRefused() throws IOException {
    Path header = RawGguf.header(3, 0, 0).write(dir.resolve("header.gguf"));
    Files.write(header, Arrays.copyOf(Files.readAllBytes(header), 20));
    assertBadInput(() -> GgufFile.open(header), "header.gguf", "truncated", "the metadata count");
    Path counts = RawGguf.header(3, 0, 1_000_000).write(dir.resolve("counts.gguf"));
    assertBadInput(
        () -> GgufFile.open(counts), "counts.gguf", "metadata count 1000000", "truncated");
    Path key = RawGguf.header(3, 0, 1).u64(1000).zeros(10).write(dir.resolve("key.gguf"));
    assertBadInput(() -> GgufFile.open(key), "key.gguf", "truncated", "metadata key 0");
    Path value =
        RawGguf.header(3, 0, 1)
            .string("k")
            .u32(GgufValueType.U64.id())
            .zeros(3)
            .write(dir.resolve("value.gguf"));
    assertBadInput(() -> GgufFile.open(value), "value.gguf", "truncated", "metadata key 'k'");
    Path array =
        RawGguf.header(3, 0, 1)
            .string("k")
            .u32(GgufValueType.ARRAY.id())
            .u32(GgufValueType.U32.id())
            .u64(1L << 40)
            .zeros(8)
            .write(dir.resolve("array.gguf"));
    assertBadInput(
        () -> GgufFile.open(array), "array.gguf", "truncated", "1099511627776 u32 values");
    Path info =
        RawGguf.header(3, 1, 0)
            .string("blk.0.attn_q.weight")
            .u32(2)
            .u64(32)
            .write(dir.resolve("info.gguf"));
    assertBadInput(
        () -> GgufFile.open(info), "info.gguf", "truncated", "tensor 'blk.0.attn_q.weight'");
  }

  @Test
  void badMetadataIsRefused() throws IOException {
    Path type = RawGguf.header(3, 0, 1).string("k").u32(13).write(dir.resolve("type.gguf"));
    assertBadInput(() -> GgufFile.open(type), "type.gguf", "'k'", "unknown value type 13");
    Path nested =
        RawGguf.header(3, 0, 1)
            .string("k")
            .u32(GgufValueType.ARRAY.id())
            .u32(GgufValueType.ARRAY.id())
            .u64(0)
            .write(dir.resolve("nested.gguf"));
    assertBadInput(() -> GgufFile.open(nested), "nested.gguf", "'k'", "array of arrays");
    Path twice =
        RawGguf.header(3, 0, 2).keyU32("k", 1).keyU32("k", 2).write(dir.resolve("twice.gguf"));
    assertBadInput(() -> GgufFile.open(twice), "twice.gguf", "'k' appears twice");
    Path i32 =
        RawGguf.header(3, 0, 1)
            .string(GgufFile.ALIGNMENT_KEY)
            .u32(GgufValueType.I32.id())
            .u32(32)
            .write(dir.resolve("i32.gguf"));
    assertBadInput(() -> GgufFile.open(i32), "i32.gguf", "general.alignment is i32", "u32");
    Path odd =
        RawGguf.header(3, 0, 1).keyU32(GgufFile.ALIGNMENT_KEY, 48).write(dir.resolve("odd.gguf"));
    assertBadInput(() -> GgufFile.open(odd), "odd.gguf", "48 is not a power of two");
  }

  @Test
  void unknownTensorTypeIsRefused() throws IOException {
    Path k =
        RawGguf.header(3, 1, 0)
            .tensor("w", new long[] {256}, 12, 0)
            .pad(32)
            .zeros(144)
            .write(dir.resolve("q4k.gguf"));
    assertBadInput(() -> GgufFile.open(k), "q4k.gguf", "tensor 'w'", "ggml type 12", "q4_0");
    Path unknown =
        RawGguf.header(3, 1, 0).tensor("w", new long[] {32}, 99, 0).write(dir.resolve("t99.gguf"));
    assertBadInput(() -> GgufFile.open(unknown), "t99.gguf", "tensor 'w'", "ggml type 99");
  }

  @Test
  void rowsThatAreNotWholeBlocksAreRefused() throws IOException {
    // ne[0] = 48 is the innermost dim: 1.5 q4_0 blocks per row
    Path file =
        RawGguf.header(3, 1, 0)
            .tensor("w", new long[] {48, 2}, Q4_0, 0)
            .pad(32)
            .zeros(64)
            .write(dir.resolve("rows.gguf"));
    assertBadInput(
        () -> GgufFile.open(file), "rows.gguf", "tensor 'w'", "rows of 48", "block size 32");
  }

  @Test
  void badShapesAreRefused() throws IOException {
    Path dims =
        RawGguf.header(3, 1, 0)
            .tensor("w", new long[] {1, 1, 1, 1, 1}, F32, 0)
            .write(dir.resolve("dims.gguf"));
    assertBadInput(
        () -> GgufFile.open(dims), "dims.gguf", "tensor 'w'", "5 dimensions", "at most 4");
    Path huge =
        RawGguf.header(3, 1, 0)
            .tensor("w", new long[] {1L << 62, 8}, F32, 0)
            .write(dir.resolve("huge.gguf"));
    assertBadInput(() -> GgufFile.open(huge), "huge.gguf", "tensor 'w'", "overflows");
    Path negative =
        RawGguf.header(3, 1, 0).tensor("w", new long[] {-1}, F32, 0).write(dir.resolve("neg.gguf"));
    assertBadInput(() -> GgufFile.open(negative), "neg.gguf", "tensor 'w'", "18446744073709551615");
    Path twice =
        RawGguf.header(3, 2, 0)
            .tensor("w", new long[] {8}, F32, 0)
            .tensor("w", new long[] {8}, F32, 32)
            .pad(32)
            .zeros(64)
            .write(dir.resolve("twice.gguf"));
    assertBadInput(() -> GgufFile.open(twice), "twice.gguf", "tensor 'w' appears twice");
  }

  @Test
  void tensorDataPastTheEndIsRefused() throws IOException {
    // a q4_0 [1, 32] tensor needs 18 bytes; the data block has 10
    Path file =
        RawGguf.header(3, 1, 0)
            .tensor("output.weight", new long[] {32, 1}, Q4_0, 0)
            .pad(32)
            .zeros(10)
            .write(dir.resolve("short.gguf"));
    assertBadInput(
        () -> GgufFile.open(file),
        "short.gguf",
        "tensor 'output.weight'",
        "needs 18 bytes",
        "has only 10",
        "truncated");
    Path far =
        RawGguf.header(3, 1, 0)
            .tensor("w", new long[] {32}, Q4_0, -32)
            .pad(32)
            .zeros(18)
            .write(dir.resolve("far.gguf"));
    assertBadInput(() -> GgufFile.open(far), "far.gguf", "tensor 'w'", "18446744073709551584");
  }

  @Test
  void misalignedTensorIsRefused() throws IOException {
    Path file =
        RawGguf.header(3, 1, 0)
            .tensor("w", new long[] {4}, F32, 16)
            .pad(32)
            .zeros(32)
            .write(dir.resolve("misaligned.gguf"));
    assertBadInput(
        () -> GgufFile.open(file),
        "misaligned.gguf",
        "tensor 'w'",
        "data offset 16",
        "alignment 32");
  }

  @Test
  void overlappingTensorsAreRefused() throws IOException {
    // 'a' is q4_0 [64]: 36 bytes from 0; 'b' is aligned at 32 but starts inside 'a'
    Path file =
        RawGguf.header(3, 2, 0)
            .tensor("a", new long[] {64}, Q4_0, 0)
            .tensor("b", new long[] {4}, F32, 32)
            .pad(32)
            .zeros(64)
            .write(dir.resolve("overlap.gguf"));
    assertBadInput(() -> GgufFile.open(file), "overlap.gguf", "tensor 'b'", "overlaps tensor 'a'");
  }

  @Test
  void metadataAccessorsNameTheFileAndKey() throws IOException {
    Path file = dir.resolve("meta.gguf");
    try (GgufWriter w = GgufWriter.create(file, false)) {
      w.putString("s", "x");
      w.putU64("big", -1L);
      w.putArray("longs", GgufValueType.I64, new long[] {1L << 40});
      w.finish();
    }
    try (GgufFile gguf = GgufFile.open(file)) {
      GgufMetadata meta = gguf.metadata();
      assertBadInput(() -> meta.string("missing"), "meta.gguf", "'missing' is missing");
      assertBadInput(() -> meta.integer("s"), "meta.gguf", "'s' is string, expected an integer");
      assertBadInput(() -> meta.strings("s"), "meta.gguf", "expected an array of string");
      assertBadInput(() -> meta.integer("big"), "meta.gguf", "'big'", "18446744073709551615");
      assertBadInput(
          () -> meta.ints("longs"), "meta.gguf", "'longs' element 0", "does not fit an int");
      assertBadInput(() -> meta.floats("longs"), "meta.gguf", "'longs' is an array of i64");
      assertBadInput(() -> gguf.info("nope"), "meta.gguf", "no tensor 'nope'");
    }
  }
}
