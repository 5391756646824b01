package llmc.formats;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class SafetensorsWriterTest {

  @TempDir Path dir;

  private static final float[] SPECIAL = {
    1.0f,
    -2.0f,
    0x1p-24f,
    Float.POSITIVE_INFINITY,
    Float.NaN,
    65520f,
    1 + 0x1p-8f,
    1 + 3 * 0x1p-8f,
    0f,
    -0f
  };

  private static float[] random(int n, long seed) {
    Random random = new Random(seed);
    float[] values = new float[n];
    for (int i = 0; i < n; i++) {
      values[i] = (float) random.nextGaussian();
    }
    return values;
  }

  private static short[] shorts(MemorySegment bytes) {
    return bytes.toArray(
        java.lang.foreign.ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN));
  }

  /**
   * A tensor decoded to F32 as stored, NaN and infinities included ({@link SafetensorsFile#floats}
   * refuses those: weights must be finite).
   */
  private static float[] decoded(SafetensorsFile file, String name) {
    TensorInfo t = file.info(name);
    float[] values = new float[Math.toIntExact(t.numel())];
    FloatCodec.decodeFloats(t.dtype(), file.bytes(name), 0, values, 0, values.length);
    return values;
  }

  @Test
  void everyFloatDtypeRoundTripsThroughWriterAndReader() throws IOException {
    float[] gaussian = random(1000, 1);
    byte[] e4m3 = {0x7E, 0x38, (byte) 0xC0, 0x01, 0x7F};
    byte[] e5m2 = {0x3C, (byte) 0xC0, 0x7B, 0x01, 0x7C};
    try (SafetensorsWriter writer = new SafetensorsWriter(dir, 0, Map.of("format", "pt"))) {
      writer.writeFloats("f32", DType.F32, new long[] {10, 100}, gaussian);
      writer.writeFloats("f32.special", DType.F32, new long[] {SPECIAL.length}, SPECIAL);
      writer.writeFloats("f64", DType.F64, new long[] {1000}, gaussian);
      writer.writeFloats("f16", DType.F16, new long[] {SPECIAL.length}, SPECIAL);
      writer.writeFloats("bf16", DType.BF16, new long[] {SPECIAL.length}, SPECIAL);
      writer.write("f8e4m3", DType.F8_E4M3, new long[] {5}, MemorySegment.ofArray(e4m3));
      writer.write("f8e5m2", DType.F8_E5M2, new long[] {5}, MemorySegment.ofArray(e5m2));
      writer.finish();
    }
    try (SafetensorsFile file = SafetensorsFile.open(dir.resolve("model.safetensors"))) {
      assertEquals(Map.of("format", "pt"), file.metadata());
      assertArrayEquals(gaussian, file.floats("f32"));
      assertArrayEquals(new long[] {10, 100}, file.info("f32").shape());
      assertArrayEquals(SPECIAL, decoded(file, "f32.special"));
      assertArrayEquals(gaussian, file.floats("f64"));
      BadInputException nonFinite =
          assertThrows(BadInputException.class, () -> file.floats("f32.special"));
      assertTrue(nonFinite.getMessage().contains("'f32.special' holds"), nonFinite.getMessage());

      assertArrayEquals(
          new short[] {
            0x3C00,
            (short) 0xC000,
            0x0001,
            0x7C00,
            0x7E00,
            0x7C00,
            0x3C04,
            0x3C0C,
            0x0000,
            (short) 0x8000
          },
          shorts(file.bytes("f16")));
      assertArrayEquals(
          new float[] {
            1,
            -2,
            5.9604645e-8f,
            Float.POSITIVE_INFINITY,
            Float.NaN,
            Float.POSITIVE_INFINITY,
            1 + 0x1p-8f,
            1 + 3 * 0x1p-8f,
            0,
            -0f
          },
          decoded(file, "f16"));

      assertArrayEquals(
          new short[] {
            0x3F80,
            (short) 0xC000,
            0x3380,
            0x7F80,
            0x7FC0,
            0x4780,
            0x3F80,
            0x3F82,
            0x0000,
            (short) 0x8000
          },
          shorts(file.bytes("bf16")));
      assertArrayEquals(
          new float[] {
            1, -2, 0x1p-24f, Float.POSITIVE_INFINITY, Float.NaN, 65536f, 1, 1 + 0x1p-6f, 0, -0f
          },
          decoded(file, "bf16"));

      assertArrayEquals(new float[] {448, 1, -2, 0x1p-9f, Float.NaN}, decoded(file, "f8e4m3"));
      assertArrayEquals(
          new float[] {1, -2, 57344, 0x1p-16f, Float.POSITIVE_INFINITY}, decoded(file, "f8e5m2"));
    }
  }

  @Test
  void partialReadConvertsTheRequestedRange() throws IOException {
    float[] values = random(64, 2);
    try (SafetensorsWriter writer = new SafetensorsWriter(dir, 0, Map.of())) {
      writer.writeFloats("w", DType.BF16, new long[] {8, 8}, values);
      writer.finish();
    }
    try (SafetensorsFile file = SafetensorsFile.open(dir.resolve("model.safetensors"))) {
      float[] row3 = new float[10];
      file.readFloats("w", 24, row3, 1, 8);
      for (int i = 0; i < 8; i++) {
        assertEquals(Floats.bf16ToF32(Floats.f32ToBf16(values[24 + i])), row3[1 + i]);
      }
      assertEquals(0f, row3[0]);
      assertThrows(IndexOutOfBoundsException.class, () -> file.readFloats("w", 60, row3, 0, 8));
    }
  }

  @Test
  void intDtypesRoundTripAndFloatsRejectsThem() throws IOException {
    int[] qweight = {0x77777777, -1, 0, Integer.MIN_VALUE};
    try (SafetensorsWriter writer = new SafetensorsWriter(dir, 0, Map.of())) {
      writer.writeInts("qweight", DType.I32, new long[] {2, 2}, qweight);
      writer.writeInts("bitmask", DType.U8, new long[] {3}, new int[] {0, 128, 255});
      writer.writeInts("small", DType.I8, new long[] {2}, new int[] {-128, 127});
      writer.writeInts("shape", DType.I64, new long[] {2}, new int[] {4096, 11008});
      assertThrows(
          IllegalArgumentException.class,
          () -> writer.writeInts("bad", DType.U8, new long[] {1}, new int[] {256}));
      writer.finish();
    }
    try (SafetensorsFile file = SafetensorsFile.open(dir.resolve("model.safetensors"))) {
      assertEquals(
          List.of("qweight", "bitmask", "small", "shape"),
          file.tensors().stream().map(TensorInfo::name).toList());
      assertArrayEquals(qweight, file.ints("qweight"));
      assertArrayEquals(new int[] {0, 128, 255}, file.ints("bitmask"));
      assertArrayEquals(new int[] {-128, 127}, file.ints("small"));
      assertArrayEquals(new int[] {4096, 11008}, file.ints("shape"));
      TestFiles.assertBadInput(() -> file.floats("qweight"), "model.safetensors", "qweight", "I32");
    }
  }

  @Test
  void threeShardsWithIndexAndTotalSizeReadBackThroughCheckpoint() throws IOException {
    // 100-byte limit: [a 40, b 40] [c 40, d 40] [big 200 alone]
    Map<String, float[]> tensors = new LinkedHashMap<>();
    tensors.put("a", random(10, 3));
    tensors.put("b", random(10, 4));
    tensors.put("c", random(10, 5));
    tensors.put("d", random(10, 6));
    tensors.put("big", random(50, 7));
    try (SafetensorsWriter writer = new SafetensorsWriter(dir, 100, Map.of("format", "pt"))) {
      tensors.forEach((name, v) -> writer.writeFloats(name, DType.F32, new long[] {v.length}, v));
      writer.finish();
      assertEquals(4, writer.files().size());
    }
    String[] shards = {
      "model-00001-of-00003.safetensors",
      "model-00002-of-00003.safetensors",
      "model-00003-of-00003.safetensors"
    };
    try (Stream<Path> listing = Files.list(dir)) {
      assertEquals(
          List.of(shards[0], shards[1], shards[2], "model.safetensors.index.json"),
          listing.map(p -> p.getFileName().toString()).sorted().toList());
    }
    JsonNode index = Json.mapper().readTree(dir.resolve("model.safetensors.index.json").toFile());
    assertEquals(360, index.get("metadata").get("total_size").longValue());
    JsonNode weightMap = index.get("weight_map");
    assertEquals(List.of("a", "b", "big", "c", "d"), List.copyOf(iterable(weightMap.fieldNames())));
    assertEquals(shards[0], weightMap.get("b").textValue());
    assertEquals(shards[1], weightMap.get("c").textValue());
    assertEquals(shards[2], weightMap.get("big").textValue());

    try (Checkpoint checkpoint = Checkpoint.open(dir)) {
      assertEquals(List.of("a", "b", "big", "c", "d"), List.copyOf(checkpoint.names()));
      assertEquals(3, checkpoint.files().size());
      tensors.forEach((name, v) -> assertArrayEquals(v, checkpoint.floats(name), name));
      assertEquals(dir.resolve(shards[1]), checkpoint.fileOf("d").path());
      long onDisk = 0;
      for (String shard : shards) {
        onDisk += Files.size(dir.resolve(shard));
      }
      assertEquals(onDisk, checkpoint.sizeOnDisk());
      assertEquals(Map.of("format", "pt"), checkpoint.fileOf("big").metadata());
    }
  }

  private static <T> List<T> iterable(java.util.Iterator<T> it) {
    List<T> list = new java.util.ArrayList<>();
    it.forEachRemaining(list::add);
    return list;
  }

  private void writeSample(Path out, long maxShardBytes) {
    try (SafetensorsWriter writer =
        new SafetensorsWriter(out, maxShardBytes, Map.of("format", "pt"))) {
      writer.writeFloats(
          "model.embed_tokens.weight", DType.BF16, new long[] {16, 8}, random(128, 8));
      writer.writeFloats("model.norm.weight", DType.F32, new long[] {8}, random(8, 9));
      writer.writeInts("layer.qweight", DType.I32, new long[] {1, 8}, new int[8]);
      writer.finish();
    }
  }

  @Test
  void sameTensorsGiveByteIdenticalFiles() throws IOException {
    for (String run : List.of("one", "two", "sharded-one", "sharded-two")) {
      Files.createDirectory(dir.resolve(run));
      writeSample(dir.resolve(run), run.startsWith("sharded") ? 64 : 0);
    }
    assertEquals(
        TestFiles.sha256(dir.resolve("one/model.safetensors")),
        TestFiles.sha256(dir.resolve("two/model.safetensors")));
    for (String name :
        List.of(
            "model-00001-of-00002.safetensors",
            "model-00002-of-00002.safetensors",
            "model.safetensors.index.json")) {
      assertEquals(
          TestFiles.sha256(dir.resolve("sharded-one").resolve(name)),
          TestFiles.sha256(dir.resolve("sharded-two").resolve(name)),
          name);
    }
  }

  @Test
  void headerIsSpacePaddedSoDataStartsAtMultipleOf8() throws IOException {
    for (int nameLength = 1; nameLength <= 9; nameLength++) {
      Path out = Files.createDirectory(dir.resolve("n" + nameLength));
      try (SafetensorsWriter writer = new SafetensorsWriter(out, 0, Map.of())) {
        writer.writeFloats("w".repeat(nameLength), DType.F16, new long[] {3}, new float[3]);
        writer.finish();
      }
      byte[] bytes = Files.readAllBytes(out.resolve("model.safetensors"));
      long headerLength = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).getLong();
      assertEquals(0, (8 + headerLength) % 8);
      assertEquals(8 + headerLength + 6, bytes.length);
      String header =
          new String(bytes, 8, (int) headerLength, java.nio.charset.StandardCharsets.UTF_8);
      assertTrue(header.stripTrailing().endsWith("}"));
      assertTrue(header.substring(header.stripTrailing().length()).isBlank());
    }
  }

  @Test
  void headerPutsMetadataFirstThenTensorsInWrittenOrder() throws IOException {
    try (SafetensorsWriter writer = new SafetensorsWriter(dir, 0, Map.of("format", "pt"))) {
      writer.writeFloats("z", DType.F32, new long[] {1}, new float[1]);
      writer.writeFloats("a", DType.F32, new long[] {}, new float[1]);
      writer.finish();
    }
    byte[] bytes = Files.readAllBytes(dir.resolve("model.safetensors"));
    String header = new String(bytes, 8, bytes.length - 16).strip();
    assertEquals(
        "{\"__metadata__\":{\"format\":\"pt\"},\"z\":{\"dtype\":\"F32\",\"shape\":[1],"
            + "\"data_offsets\":[0,4]},\"a\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[4,8]}}",
        header);
  }

  @Test
  void unorderedMetadataIsWrittenSortedByKey() throws IOException {
    try (SafetensorsWriter writer =
        new SafetensorsWriter(dir, 0, Map.of("b", "2", "a", "1", "c", "3"))) {
      writer.finish();
    }
    byte[] bytes = Files.readAllBytes(dir.resolve("model.safetensors"));
    assertEquals(
        "{\"__metadata__\":{\"a\":\"1\",\"b\":\"2\",\"c\":\"3\"}}",
        new String(bytes, 8, bytes.length - 8).strip());
  }

  @Test
  void closeWithoutFinishLeavesNothing() throws IOException {
    try (SafetensorsWriter writer = new SafetensorsWriter(dir, 16, Map.of())) {
      for (int i = 0; i < 5; i++) {
        writer.writeFloats("t" + i, DType.F32, new long[] {4}, new float[4]);
      }
    }
    try (Stream<Path> listing = Files.list(dir)) {
      assertEquals(List.of(), listing.toList());
    }
  }

  @Test
  void wrongDataSizeIsRejected() {
    try (SafetensorsWriter writer = new SafetensorsWriter(dir, 0, Map.of())) {
      assertThrows(
          IllegalArgumentException.class,
          () ->
              writer.write("w", DType.F32, new long[] {2, 2}, MemorySegment.ofArray(new byte[12])));
      assertThrows(
          IllegalArgumentException.class,
          () -> writer.writeFloats("w", DType.F16, new long[] {3}, new float[4]));
      writer.writeFloats("w", DType.F16, new long[] {4}, new float[4]);
      assertThrows(
          IllegalArgumentException.class,
          () -> writer.writeFloats("w", DType.F16, new long[] {4}, new float[4]));
    }
  }

  @Test
  void mappedTensorCopiesVerbatimIntoNewFile() throws IOException {
    writeSample(dir, 0);
    Path copy = Files.createDirectory(dir.resolve("copy"));
    try (SafetensorsFile in = SafetensorsFile.open(dir.resolve("model.safetensors"));
        SafetensorsWriter writer = new SafetensorsWriter(copy, 0, in.metadata())) {
      for (TensorInfo t : in.tensors()) {
        writer.write(t.name(), t.dtype(), t.shape(), in.bytes(t.name()));
      }
      writer.finish();
    }
    assertEquals(
        TestFiles.sha256(dir.resolve("model.safetensors")),
        TestFiles.sha256(copy.resolve("model.safetensors")));
    assertTrue(Files.size(copy.resolve("model.safetensors")) > 256);
  }

  /** The 8-byte header length at the start of a safetensors file. */
  private static long headerLength(Path file) throws IOException {
    try (var channel = java.nio.channels.FileChannel.open(file)) {
      ByteBuffer b = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
      channel.read(b, 0);
      return b.flip().getLong();
    }
  }

  @Test
  void largeShardsKeepTheirDataFileWithTheHeaderInItsRoom() throws IOException {
    float[] a = random(3000, 2);
    float[] b = random(2000, 3);
    // room of 4096 bytes, in place from 1000 data bytes; 2 shards of 12000 and 8000 bytes
    try (SafetensorsWriter writer = new SafetensorsWriter(dir, 12_000, null, 4096, 1000)) {
      writer.writeFloats("a", DType.F32, new long[] {30, 100}, a);
      writer.writeFloats("b", DType.F32, new long[] {2000}, b);
      writer.finish();
    }
    for (String shard :
        List.of("model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors")) {
      Path file = dir.resolve(shard);
      assertEquals(4088, headerLength(file), shard + ": the header fills its room");
      String header = new String(Files.readAllBytes(file), 8, 4088, "UTF-8");
      assertTrue(header.stripTrailing().endsWith("}"), "JSON, then only spaces");
    }
    assertEquals(4096 + 12_000, Files.size(dir.resolve("model-00001-of-00002.safetensors")));
    try (Checkpoint in = Checkpoint.open(dir)) {
      assertArrayEquals(a, in.floats("a"));
      assertArrayEquals(b, in.floats("b"));
    }
    try (Stream<Path> files = Files.list(dir)) {
      assertEquals(
          List.of(
              "model-00001-of-00002.safetensors",
              "model-00002-of-00002.safetensors",
              "model.safetensors.index.json"),
          files.map(f -> f.getFileName().toString()).sorted().toList(),
          "no data file left behind");
    }
  }

  @Test
  void smallShardsAndHeadersTooLongForTheirRoomAreCopiedCompactly() throws IOException {
    float[] a = random(3000, 4);
    // below the in-place size (default room), and above it with a room of 64 bytes
    for (long[] roomAndInPlace : new long[][] {{1 << 20, 16 << 20}, {64, 1000}}) {
      Path out = Files.createDirectories(dir.resolve("room" + roomAndInPlace[0]));
      try (SafetensorsWriter writer =
          new SafetensorsWriter(out, 0, null, roomAndInPlace[0], roomAndInPlace[1])) {
        writer.writeFloats("a", DType.F32, new long[] {3000}, a);
        writer.finish();
      }
      Path file = out.resolve("model.safetensors");
      long header = headerLength(file);
      assertTrue(header < 100 && header % 8 == 0, "compact header: " + header);
      assertEquals(8 + header + 12_000, Files.size(file));
      try (SafetensorsFile in = SafetensorsFile.open(file)) {
        assertArrayEquals(a, in.floats("a"));
      }
    }
  }
}
