package llmc.formats.gguf;

import static llmc.formats.gguf.GgufTestFiles.decode;
import static llmc.formats.gguf.GgufTestFiles.encode;
import static llmc.formats.gguf.GgufTestFiles.hex;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;
import llmc.formats.InvalidSettingException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * GgufWriter then GgufFile: every metadata type, every tensor type, and the bytes at known offsets.
 * The layout (offsets, padding after every tensor, info order) is llama.cpp's: a file written like
 * the first test was also read by llama.cpp's own gguf_init_from_file (libggml-base.so of the npm
 * package @node-llama-cpp/linux-x64 3.22.1, data loaded, every tensor dequantized by it to the same
 * floats), and GgufFile read a file written by its gguf_write_to_file; that check needs the
 * package, so it is not part of this suite.
 */
class GgufRoundTripTest {

  @TempDir Path dir;

  private static float[] gaussian(int n, long seed) {
    Random random = new Random(seed);
    float[] values = new float[n];
    for (int i = 0; i < n; i++) {
      values[i] = (float) random.nextGaussian();
    }
    return values;
  }

  private List<String> listing() throws IOException {
    try (Stream<Path> files = Files.list(dir)) {
      return files.map(p -> p.getFileName().toString()).sorted().toList();
    }
  }

  /** Every scalar and array value type. */
  private static void putEveryType(GgufWriter w) {
    w.putString("general.architecture", "llama");
    w.putU8("t.u8", 255);
    w.putI8("t.i8", -128);
    w.putU16("t.u16", 65535);
    w.putI16("t.i16", -32768);
    w.putU32("t.u32", 4294967295L);
    w.putI32("t.i32", Integer.MIN_VALUE);
    w.putU64("t.u64", 1L << 40);
    w.putI64("t.i64", Long.MIN_VALUE);
    w.putF32("t.f32", 1e-5f);
    w.putF64("t.f64", Math.PI);
    w.putBool("t.bool", true);
    w.putArray("a.u8", GgufValueType.U8, new long[] {0, 255});
    w.putArray("a.i8", GgufValueType.I8, new long[] {-128, 127});
    w.putArray("a.u16", GgufValueType.U16, new long[] {65535});
    w.putArray("a.i16", GgufValueType.I16, new long[] {-2, 3});
    w.putArray("a.u32", GgufValueType.U32, new long[] {4294967295L, 1});
    w.putArray("a.i32", GgufValueType.I32, new long[] {-1, 2, 3});
    w.putArray("a.u64", GgufValueType.U64, new long[] {-1L});
    w.putArray("a.i64", GgufValueType.I64, new long[] {Long.MAX_VALUE});
    w.putArray("a.f32", new float[] {0.5f, -1e-6f});
    w.putArray("a.f64", new double[] {Math.E});
    w.putArray("a.bool", new boolean[] {true, false, true});
    w.putArray("tokenizer.ggml.tokens", List.of("<s>", "é", "", "▁the"));
    w.putArray("a.empty", List.of());
  }

  @Test
  void everyMetadataTypeAndTensorTypeRoundTrips() throws IOException {
    Path file = dir.resolve("model.gguf");
    float[] f32 = {1, -2.5f, 3e-8f}; // [3]
    float[] f16 = {0.5f, -1.25f, 2, 3, 4, 65504, -0.0f, 0x1p-10f, 7, 8}; // [2, 5]
    float[] q40 = gaussian(2 * 64, 1); // [2, 64]
    float[] q51 = gaussian(2 * 32, 2); // [2, 32]
    float[] q80 = gaussian(2 * 64, 3); // [2, 64]
    int[] q41Codes = new int[3 * 32]; // [3, 32] from codes
    for (int i = 0; i < q41Codes.length; i++) {
      q41Codes[i] = i % 16;
    }
    float[] q41Scales = {0.5f, 0.25f, 2};
    float[] q41Mins = {-1, 0, -8.5f};
    byte[] q50Block = encode(GgmlType.Q5_0, gaussian(32, 4)); // [1, 32] as raw bytes

    List<GgufTensorInfo> declared;
    try (GgufWriter w = GgufWriter.create(file, false)) {
      w.alignment(64);
      putEveryType(w);
      w.declare("f32.weight", GgmlType.F32, 3);
      w.declare("f16.weight", GgmlType.F16, 2, 5);
      w.declare("q4_0.weight", GgmlType.Q4_0, 2, 64);
      w.declare("q4_1.weight", GgmlType.Q4_1, 3, 32);
      w.declare("q5_0.weight", GgmlType.Q5_0, 1, 32);
      w.declare("q5_1.weight", GgmlType.Q5_1, 2, 32);
      w.declare("q8_0.weight", GgmlType.Q8_0, 2, 64);
      declared = w.tensors();
      w.writeFloats("f32.weight", f32);
      w.writeFloats("f16.weight", f16);
      w.writeFloats("q4_0.weight", Arrays.copyOfRange(q40, 0, 64)); // one row per call
      w.writeFloats("q4_0.weight", Arrays.copyOfRange(q40, 64, 128));
      w.writeCodes("q4_1.weight", q41Codes, q41Scales, q41Mins);
      w.writeBytes("q5_0.weight", MemorySegment.ofArray(q50Block));
      w.writeFloats("q5_1.weight", q51);
      w.writeFloats("q8_0.weight", q80);
      assertFalse(Files.exists(file), "the target appears only on finish()");
      assertEquals(file.toAbsolutePath(), w.finish());
    }
    assertEquals(List.of("model.gguf"), listing());

    // Data offsets: each tensor starts at the previous end rounded up to 64 (llama.cpp requires
    // exactly this):
    // f32 12 bytes -> 64, f16 20 -> 64, q4_0 4 blocks x 18 = 72 -> 128, q4_1 3 x 20 = 60 -> 64,
    // q5_0 22 -> 64, q5_1 2 x 24 = 48 -> 64, q8_0 4 x 34 = 136 -> 192.
    long[] offsets = {0, 64, 128, 256, 320, 384, 448};
    long dataBytes = 448 + 192;

    byte[] bytes = Files.readAllBytes(file);
    ByteBuffer le = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
    assertEquals("GGUF", new String(bytes, 0, 4, StandardCharsets.US_ASCII));
    assertEquals(3, le.getInt(4)); // version
    assertEquals(7, le.getLong(8)); // tensor count
    assertEquals(1 + 25, le.getLong(16)); // metadata count: general.alignment + 25 keys
    assertEquals(17, le.getLong(24)); // the first key: u64 length 17, "general.alignment",
    assertEquals("general.alignment", new String(bytes, 32, 17, StandardCharsets.US_ASCII));
    assertEquals(GgufValueType.U32.id(), le.getInt(49)); // u32 type 4,
    assertEquals(64, le.getInt(53)); // value 64
    // the tensor info of q4_0.weight, found by its name: u32 n_dims 2, ne = [64, 2] (innermost
    // first),
    // u32 type 2, u64 offset 128
    int info = indexOf(bytes, "q4_0.weight".getBytes(StandardCharsets.US_ASCII)) + 11;
    assertEquals(2, le.getInt(info));
    assertEquals(64, le.getLong(info + 4));
    assertEquals(2, le.getLong(info + 12));
    assertEquals(2, le.getInt(info + 20));
    assertEquals(128, le.getLong(info + 24));

    try (GgufFile gguf = GgufFile.open(file)) {
      assertEquals(3, gguf.version());
      assertEquals(64, gguf.alignment());
      assertEquals(0, gguf.dataStart() % 64);
      assertEquals(bytes.length, gguf.dataStart() + dataBytes);
      assertEquals(declared, gguf.tensors());
      for (int i = 0; i < offsets.length; i++) {
        assertEquals(offsets[i], gguf.tensors().get(i).offset(), gguf.tensors().get(i).name());
      }
      GgufTensorInfo q40Info = gguf.info("q4_0.weight");
      assertArrayEquals(new long[] {2, 64}, q40Info.shape());
      assertArrayEquals(new long[] {64, 2}, q40Info.ne());
      assertEquals(72, q40Info.byteSize());

      assertArrayEquals(f32, gguf.floats("f32.weight"));
      assertArrayEquals(f16, gguf.floats("f16.weight")); // all exact in f16
      assertArrayEquals(
          decode(GgmlType.Q4_0, encode(GgmlType.Q4_0, q40)), gguf.floats("q4_0.weight"));
      float[] q41 = gguf.floats("q4_1.weight");
      for (int i = 0; i < q41.length; i++) {
        assertEquals(q41Codes[i] * q41Scales[i / 32] + q41Mins[i / 32], q41[i]);
      }
      assertEquals(hex(q50Block), hex(gguf.bytes("q5_0.weight").toArray(ValueLayout.JAVA_BYTE)));
      assertArrayEquals(
          decode(GgmlType.Q5_1, encode(GgmlType.Q5_1, q51)), gguf.floats("q5_1.weight"));
      assertArrayEquals(
          decode(GgmlType.Q8_0, encode(GgmlType.Q8_0, q80)), gguf.floats("q8_0.weight"));

      GgufMetadata meta = gguf.metadata();
      assertEquals(26, meta.keys().size());
      assertEquals("general.alignment", meta.keys().iterator().next());
      assertEquals("llama", meta.string("general.architecture"));
      assertEquals(255, meta.integer("t.u8"));
      assertEquals(-128, meta.integer("t.i8"));
      assertEquals(65535, meta.integer("t.u16"));
      assertEquals(-32768, meta.integer("t.i16"));
      assertEquals(4294967295L, meta.integer("t.u32"));
      assertEquals(Integer.MIN_VALUE, meta.integer("t.i32"));
      assertEquals(1L << 40, meta.integer("t.u64"));
      assertEquals(Long.MIN_VALUE, meta.integer("t.i64"));
      assertEquals(GgufValueType.U16, meta.type("t.u16"));
      assertEquals(1e-5f, meta.f32("t.f32"));
      assertEquals(Math.PI, meta.value("t.f64"));
      assertTrue(meta.bool("t.bool"));
      assertArrayEquals(new int[] {0, 255}, meta.ints("a.u8"));
      assertArrayEquals(new int[] {-128, 127}, meta.ints("a.i8"));
      assertArrayEquals(new int[] {65535}, meta.ints("a.u16"));
      assertArrayEquals(new int[] {-2, 3}, meta.ints("a.i16"));
      assertArrayEquals(new long[] {4294967295L, 1}, (long[]) meta.value("a.u32"));
      assertArrayEquals(new int[] {-1, 2, 3}, meta.ints("a.i32"));
      assertArrayEquals(new long[] {-1L}, (long[]) meta.value("a.u64")); // the raw 64 bits
      assertArrayEquals(new long[] {Long.MAX_VALUE}, (long[]) meta.value("a.i64"));
      assertArrayEquals(new float[] {0.5f, -1e-6f}, meta.floats("a.f32"));
      assertArrayEquals(new double[] {Math.E}, (double[]) meta.value("a.f64"));
      assertArrayEquals(new boolean[] {true, false, true}, (boolean[]) meta.value("a.bool"));
      assertEquals(GgufValueType.BOOL, meta.elementType("a.bool"));
      assertEquals(List.of("<s>", "é", "", "▁the"), meta.strings("tokenizer.ggml.tokens"));
      assertEquals(List.of(), meta.strings("a.empty"));
    }
  }

  private static int indexOf(byte[] haystack, byte[] needle) {
    outer:
    for (int i = 0; i + needle.length <= haystack.length; i++) {
      for (int j = 0; j < needle.length; j++) {
        if (haystack[i + j] != needle[j]) {
          continue outer;
        }
      }
      return i;
    }
    throw new AssertionError("not found");
  }

  @Test
  void defaultAlignmentIs32AndIsNotWrittenAsAKey() throws IOException {
    Path file = dir.resolve("small.gguf");
    try (GgufWriter w = GgufWriter.create(file, false)) {
      w.putString("general.architecture", "llama");
      w.declare("a", GgmlType.F32, 5); // 20 bytes -> 32
      w.declare("b", GgmlType.Q8_0, 32); // 34 bytes -> 64
      w.declare("c", GgmlType.F16, 1);
      w.writeFloats("a", new float[] {1, 2, 3, 4, 5});
      w.writeFloats("b", gaussian(32, 5));
      w.writeFloats("c", new float[] {-1});
      w.finish();
    }
    try (GgufFile gguf = GgufFile.open(file)) {
      assertEquals(32, gguf.alignment());
      assertFalse(gguf.metadata().contains(GgufFile.ALIGNMENT_KEY));
      assertEquals(
          List.of(0L, 32L, 96L), gguf.tensors().stream().map(GgufTensorInfo::offset).toList());
      assertEquals(0, gguf.dataStart() % 32);
      assertEquals(
          Files.size(file), gguf.dataStart() + 128); // zero padding after the last tensor too
      assertArrayEquals(new float[] {-1}, gguf.floats("c"));
    }
  }

  @Test
  void metadataOnlyFileHasNoTensors() throws IOException {
    Path file = dir.resolve("meta.gguf");
    try (GgufWriter w = GgufWriter.create(file, false)) {
      w.putString("general.name", "x");
      w.finish();
    }
    try (GgufFile gguf = GgufFile.open(file)) {
      assertEquals(List.of(), gguf.tensors());
      assertEquals("x", gguf.metadata().string("general.name"));
    }
  }

  @Test
  void closeWithoutFinishLeavesNothingAndAFailedCallWritesNothing() throws IOException {
    Path file = dir.resolve("out.gguf");
    try (GgufWriter w = GgufWriter.create(file, false)) {
      w.declare("w", GgmlType.Q4_0, 1, 32);
      assertTrue(w.temp().getFileName().toString().startsWith(".out.gguf.tmp-"));
      assertEquals(List.of(w.temp().getFileName().toString()), listing());
      int[] codes = new int[32];
      codes[3] = 16; // out of range: refused, and the partial bytes are dropped
      assertThrows(
          IllegalArgumentException.class, () -> w.writeCodes("w", codes, new float[] {1}, null));
      long size = Files.size(w.temp());
      codes[3] = 15;
      w.writeCodes("w", codes, new float[] {1}, null);
      assertEquals(size + 32, Files.size(w.temp())); // 18 bytes + 14 of padding
    }
    assertEquals(List.of(), listing());
  }

  @Test
  void existingTargetNeedsOverwrite() throws IOException {
    Path file = Files.writeString(dir.resolve("model.gguf"), "GGUF old");
    InvalidSettingException e =
        (InvalidSettingException)
            GgufTestFiles.assertBadInput(
                () -> GgufWriter.create(file, false), "model.gguf", "already exists");
    assertEquals(List.of("out", "overwrite"), e.settings());
    GgufTestFiles.assertBadInput(() -> GgufWriter.create(dir, true), dir.toString(), "is a folder");
    try (GgufWriter w = GgufWriter.create(file, true)) {
      w.putBool("x", true);
      assertEquals("GGUF old", Files.readString(file));
      w.finish();
    }
    assertEquals(List.of("model.gguf"), listing());
    try (GgufFile gguf = GgufFile.open(file)) {
      assertTrue(gguf.metadata().bool("x"));
    }
  }

  @Test
  void overwriteRefusesATargetThatIsNotAGgufFileAndLeavesItUntouched() throws IOException {
    Path file = Files.writeString(dir.resolve("model.gguf"), "my notes, not a GGUF file");
    InvalidSettingException e =
        (InvalidSettingException)
            GgufTestFiles.assertBadInput(
                () -> GgufWriter.create(file, true, List.of()),
                file.toString(),
                "is not a GGUF file",
                "remove it yourself or choose another out");
    assertEquals(List.of("out", "out"), e.settings());
    assertEquals("my notes, not a GGUF file", Files.readString(file));
    assertEquals(List.of("model.gguf"), listing(), "no temporary file left");
    Path shortFile = Files.writeString(dir.resolve("short.gguf"), "GG");
    GgufTestFiles.assertBadInput(
        () -> GgufWriter.create(shortFile, true, List.of()), "is not a GGUF file");
    assertEquals("GG", Files.readString(shortFile));
  }

  @Test
  void aForeignFileThatAppearsBeforeFinishIsNotReplaced() throws IOException {
    Path file = dir.resolve("model.gguf");
    try (GgufWriter w = GgufWriter.create(file, true, List.of())) {
      w.putBool("x", true);
      Files.writeString(file, "appeared meanwhile");
      GgufTestFiles.assertBadInput(w::finish, "is not a GGUF file");
    }
    assertEquals("appeared meanwhile", Files.readString(file));
    assertEquals(List.of("model.gguf"), listing(), "no temporary file left");
  }

  @Test
  void aRunThatFailsBeforeFinishLeavesTheOldGgufFileIntact() throws IOException {
    Path file = dir.resolve("model.gguf");
    try (GgufWriter w = GgufWriter.create(file, false)) {
      w.putString("general.name", "old");
      w.finish();
    }
    byte[] before = Files.readAllBytes(file);
    IllegalStateException failure =
        assertThrows(
            IllegalStateException.class,
            () -> {
              try (GgufWriter w = GgufWriter.create(file, true, List.of())) {
                w.declare("w", GgmlType.F32, 4);
                w.writeFloats("w", new float[] {1, 2, 3, 4});
                throw new IllegalStateException("the run failed");
              }
            });
    assertEquals("the run failed", failure.getMessage());
    assertArrayEquals(before, Files.readAllBytes(file));
    assertEquals(List.of("model.gguf"), listing(), "no temporary file left");
  }

  @Test
  void writerEnforcesDeclareThenWriteInOrder() {
    try (GgufWriter w = GgufWriter.create(dir.resolve("x.gguf"), false)) {
      assertThrows(IllegalArgumentException.class, () -> w.putU8("k", 256));
      assertThrows(IllegalArgumentException.class, () -> w.putI16("k", 40000));
      assertThrows(IllegalArgumentException.class, () -> w.putU32("k", -1));
      assertThrows(
          IllegalArgumentException.class, () -> w.putArray("k", GgufValueType.U8, new long[] {-1}));
      assertThrows(
          IllegalArgumentException.class, () -> w.putArray("k", GgufValueType.F32, new long[] {1}));
      assertThrows(IllegalArgumentException.class, () -> w.putU32(GgufFile.ALIGNMENT_KEY, 64));
      assertThrows(IllegalArgumentException.class, () -> w.alignment(48));
      w.putU32("k", 1);
      assertThrows(IllegalArgumentException.class, () -> w.putString("k", "again"));
      assertThrows(IllegalArgumentException.class, () -> w.declare("q", GgmlType.Q4_0, 2, 48));
      assertThrows(
          IllegalArgumentException.class, () -> w.declare("q", GgmlType.F32, 1, 2, 3, 4, 5));
      assertThrows(IllegalArgumentException.class, () -> w.declare("q", GgmlType.F32, 0));
      assertThrows(
          IllegalArgumentException.class, () -> w.declare("n".repeat(64), GgmlType.F32, 1));
      w.declare("a", GgmlType.F32, 2);
      w.declare("b", GgmlType.Q8_0, 64);
      assertThrows(IllegalArgumentException.class, () -> w.declare("a", GgmlType.F32, 2));
      assertThrows(IllegalStateException.class, () -> w.alignment(64));
      assertThrows(IllegalStateException.class, () -> w.writeFloats("b", new float[64]));
      assertThrows(IllegalArgumentException.class, () -> w.writeFloats("c", new float[2]));
      assertThrows(IllegalArgumentException.class, () -> w.writeFloats("a", new float[3]));
      w.writeFloats("a", new float[] {1, 2});
      assertThrows(IllegalStateException.class, () -> w.writeFloats("a", new float[1]));
      assertThrows(IllegalStateException.class, () -> w.putU8("late", 1));
      assertThrows(IllegalStateException.class, () -> w.declare("late", GgmlType.F32, 1));
      assertThrows(
          IllegalArgumentException.class,
          () -> w.writeBytes("b", MemorySegment.ofArray(new byte[35])));
      w.writeFloats("b", new float[32]);
      IllegalStateException e = assertThrows(IllegalStateException.class, w::finish);
      assertTrue(e.getMessage().contains("'b' has 34 of its 68 bytes"), e.getMessage());
    }
  }
}
