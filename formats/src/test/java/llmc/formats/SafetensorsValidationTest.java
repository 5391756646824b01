package llmc.formats;

import static llmc.formats.TestFiles.assertBadInput;
import static llmc.formats.TestFiles.safetensors;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Every malformed file is rejected with one line naming the file and, where there is one, the
 * tensor.
 */
class SafetensorsValidationTest {

  @TempDir Path dir;

  private static String entry(String name, String dtype, String shape, long begin, long end) {
    return "\""
        + name
        + "\":{\"dtype\":\""
        + dtype
        + "\",\"shape\":"
        + shape
        + ",\"data_offsets\":["
        + begin
        + ","
        + end
        + "]}";
  }

  @Test
  void truncatedFileShorterThan8BytesIsRejected() throws IOException {
    Path file = Files.write(dir.resolve("short.safetensors"), new byte[] {1, 2, 3, 4, 5});
    assertBadInput(() -> SafetensorsFile.open(file), "short.safetensors", "5 bytes");
  }

  @Test
  void headerLengthPastEndOfFileIsRejected() throws IOException {
    Path file = TestFiles.raw(dir.resolve("past.safetensors"), 1000, "{}", 10);
    assertBadInput(
        () -> SafetensorsFile.open(file), "past.safetensors", "header length 1000", "20 bytes");
    Path negative = TestFiles.raw(dir.resolve("huge.safetensors"), -1, "{}", 0);
    assertBadInput(
        () -> SafetensorsFile.open(negative), "huge.safetensors", "18446744073709551615");
  }

  @Test
  void invalidJsonHeaderIsRejected() throws IOException {
    Path file = safetensors(dir.resolve("json.safetensors"), "{\"w\": {\"dtype\": ", 0);
    assertBadInput(() -> SafetensorsFile.open(file), "json.safetensors", "not valid JSON");
    Path array = safetensors(dir.resolve("array.safetensors"), "[1, 2]", 0);
    assertBadInput(() -> SafetensorsFile.open(array), "array.safetensors", "not a JSON object");
    Path trailing = safetensors(dir.resolve("trailing.safetensors"), "{} {}", 0);
    assertBadInput(() -> SafetensorsFile.open(trailing), "trailing.safetensors", "not valid JSON");
  }

  @Test
  void invalidUtf8HeaderIsRejected() throws IOException {
    Path file = dir.resolve("utf8.safetensors");
    Files.write(file, new byte[] {4, 0, 0, 0, 0, 0, 0, 0, '{', (byte) 0xC3, 0x28, '}'});
    assertBadInput(() -> SafetensorsFile.open(file), "utf8.safetensors", "UTF-8");
  }

  @Test
  void unknownDtypeIsRejected() throws IOException {
    Path file =
        safetensors(
            dir.resolve("dtype.safetensors"), "{" + entry("w.weight", "F12", "[2]", 0, 8) + "}", 8);
    assertBadInput(() -> SafetensorsFile.open(file), "dtype.safetensors", "'w.weight'", "F12");
  }

  @Test
  void shapeAndOffsetsMismatchIsRejected() throws IOException {
    Path file =
        safetensors(
            dir.resolve("mismatch.safetensors"),
            "{" + entry("w.weight", "F32", "[3]", 0, 8) + "}",
            8);
    assertBadInput(
        () -> SafetensorsFile.open(file),
        "mismatch.safetensors",
        "'w.weight'",
        "hold 8 bytes",
        "needs 12");
  }

  @Test
  void negativeOrOverflowingShapeIsRejected() throws IOException {
    Path negative =
        safetensors(
            dir.resolve("negative.safetensors"), "{" + entry("w", "F32", "[-1, 2]", 0, 8) + "}", 8);
    assertBadInput(() -> SafetensorsFile.open(negative), "negative.safetensors", "'w'", "-1");
    Path overflow =
        safetensors(
            dir.resolve("overflow.safetensors"),
            "{" + entry("w", "F32", "[4294967296, 4294967296]", 0, 8) + "}",
            8);
    assertBadInput(
        () -> SafetensorsFile.open(overflow), "overflow.safetensors", "'w'", "overflows");
  }

  @Test
  void missingOrMistypedFieldsAreRejected() throws IOException {
    Path noShape =
        safetensors(
            dir.resolve("noshape.safetensors"),
            "{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}",
            4);
    assertBadInput(() -> SafetensorsFile.open(noShape), "noshape.safetensors", "'w'", "shape");
    Path floatOffsets =
        safetensors(
            dir.resolve("floatoffsets.safetensors"),
            "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4.5]}}",
            4);
    assertBadInput(
        () -> SafetensorsFile.open(floatOffsets),
        "floatoffsets.safetensors",
        "'w'",
        "data_offsets");
  }

  @Test
  void offsetsOutsideDataBlockAreRejected() throws IOException {
    Path file =
        safetensors(
            dir.resolve("outside.safetensors"), "{" + entry("w", "F32", "[4]", 0, 16) + "}", 8);
    assertBadInput(
        () -> SafetensorsFile.open(file), "outside.safetensors", "'w'", "outside the data block");
    Path reversed =
        safetensors(
            dir.resolve("reversed.safetensors"), "{" + entry("w", "F32", "[0]", 8, 0) + "}", 8);
    assertBadInput(
        () -> SafetensorsFile.open(reversed), "reversed.safetensors", "'w'", "begin after end");
  }

  @Test
  void overlappingTensorsAreRejected() throws IOException {
    Path file =
        safetensors(
            dir.resolve("overlap.safetensors"),
            "{" + entry("a", "F32", "[2]", 0, 8) + "," + entry("b", "F32", "[2]", 4, 12) + "}",
            12);
    assertBadInput(
        () -> SafetensorsFile.open(file), "overlap.safetensors", "'b'", "overlaps tensor 'a'");
  }

  @Test
  void holeBetweenTensorsIsRejected() throws IOException {
    Path file =
        safetensors(
            dir.resolve("hole.safetensors"),
            "{" + entry("a", "F32", "[2]", 0, 8) + "," + entry("b", "F32", "[2]", 12, 20) + "}",
            20);
    assertBadInput(
        () -> SafetensorsFile.open(file), "hole.safetensors", "'b'", "4 unused bytes", "'a'");
    Path late =
        safetensors(
            dir.resolve("late.safetensors"), "{" + entry("a", "F32", "[2]", 8, 16) + "}", 16);
    assertBadInput(
        () -> SafetensorsFile.open(late), "late.safetensors", "'a'", "start at offset 0");
  }

  @Test
  void trailingBytesAfterLastTensorAreRejected() throws IOException {
    Path file =
        safetensors(
            dir.resolve("trailing.safetensors"), "{" + entry("a", "F32", "[2]", 0, 8) + "}", 12);
    assertBadInput(
        () -> SafetensorsFile.open(file),
        "trailing.safetensors",
        "4 bytes after the last tensor",
        "'a'");
  }

  @Test
  void duplicateTensorNamesAreRejected() throws IOException {
    Path file =
        safetensors(
            dir.resolve("duplicate.safetensors"),
            "{"
                + entry("w.weight", "F32", "[2]", 0, 8)
                + ","
                + entry("w.weight", "F32", "[2]", 8, 16)
                + "}",
            16);
    assertBadInput(
        () -> SafetensorsFile.open(file), "duplicate.safetensors", "duplicate", "w.weight");
  }

  @Test
  void nonStringMetadataIsRejected() throws IOException {
    Path file =
        safetensors(dir.resolve("meta.safetensors"), "{\"__metadata__\":{\"format\":1}}", 0);
    assertBadInput(
        () -> SafetensorsFile.open(file), "meta.safetensors", "'format'", "not a string");
  }

  @Test
  void lineBreaksInNamesDoNotBreakTheOneLineMessage() throws IOException {
    Path file =
        safetensors(
            dir.resolve("newline.safetensors"), "{" + entry("a\\nb", "F99", "[2]", 0, 8) + "}", 8);
    assertBadInput(() -> SafetensorsFile.open(file), "newline.safetensors", "'a b'");
  }

  @Test
  void emptyFileWithMetadataOnlyIsValid() throws IOException {
    Path file =
        safetensors(
            dir.resolve("empty.safetensors"), "{\"__metadata__\":{\"format\":\"pt\"}}  ", 0);
    try (SafetensorsFile f = SafetensorsFile.open(file)) {
      org.junit.jupiter.api.Assertions.assertEquals(Map.of("format", "pt"), f.metadata());
      org.junit.jupiter.api.Assertions.assertEquals(0, f.tensors().size());
      assertBadInput(() -> f.info("missing"), "empty.safetensors", "'missing'");
    }
  }

  @Test
  void missingShardNamedInIndexIsRejected() throws IOException {
    try (SafetensorsWriter writer = new SafetensorsWriter(dir, 8, Map.of())) {
      writer.writeFloats("a", DType.F32, new long[] {2}, new float[2]);
      writer.writeFloats("b", DType.F32, new long[] {2}, new float[2]);
      writer.finish();
    }
    Files.delete(dir.resolve("model-00002-of-00002.safetensors"));
    assertBadInput(
        () -> Checkpoint.open(dir),
        "model-00002-of-00002.safetensors",
        "model.safetensors.index.json",
        "'b'");
  }

  @Test
  void indexNamingTensorAbsentFromItsShardIsRejected() throws IOException {
    try (SafetensorsWriter writer = new SafetensorsWriter(dir, 8, Map.of())) {
      writer.writeFloats("a", DType.F32, new long[] {2}, new float[2]);
      writer.writeFloats("b", DType.F32, new long[] {2}, new float[2]);
      writer.finish();
    }
    Files.writeString(
        dir.resolve("model.safetensors.index.json"),
        "{\"metadata\":{\"total_size\":16},"
            + "\"weight_map\":{\"a\":\"model-00001-of-00002.safetensors\",\"b\":\"model-00001-of-00002.safetensors\"}}");
    assertBadInput(
        () -> Checkpoint.open(dir),
        "model.safetensors.index.json",
        "'b'",
        "model-00001-of-00002.safetensors");
    Files.writeString(
        dir.resolve("model.safetensors.index.json"),
        "{\"weight_map\":{\"a\":\"../model-00001-of-00002.safetensors\"}}");
    assertBadInput(() -> Checkpoint.open(dir), "model.safetensors.index.json", "outside");
  }

  @Test
  void folderWithoutSafetensorsIsRejected() {
    assertBadInput(() -> Checkpoint.open(dir), dir.toString(), "no model.safetensors");
  }
}
