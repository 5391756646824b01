package llmc.formats;

import com.code_intelligence.jazzer.junit.DictionaryEntries;
import com.code_intelligence.jazzer.junit.FuzzTest;
import java.lang.foreign.MemorySegment;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.condition.EnabledIfSystemProperty;

/**
 * Fuzzes the safetensors header (one file: open, then read every tensor) and the shard index (a
 * folder of two valid shards and a fuzzed model.safetensors.index.json). Without JAZZER_FUZZ each
 * method runs its corpus under {@code src/test/resources/llmc/formats/SafetensorsFuzzTestInputs};
 * scripts/fuzz.sh fuzzes them.
 */
@Timeout(10)
class SafetensorsFuzzTest {

  @DictionaryEntries({
    "\"dtype\"",
    "\"shape\"",
    "\"data_offsets\"",
    "\"__metadata__\"",
    "18446744073709551615",
    "9223372036854775807",
    "-1",
    "[]",
    "{}",
    "null",
    "1e400",
    "\"F64\"",
    "\"F32\"",
    "\"F16\"",
    "\"BF16\"",
    "\"I64\"",
    "\"I32\"",
    "\"I16\"",
    "\"I8\"",
    "\"U8\"",
    "\"BOOL\"",
    "\"F8_E4M3\"",
    "\"F8_E5M2\"",
    "\"U16\"",
    "\"U32\"",
    "\"U64\""
  })
  @FuzzTest(maxDuration = "60s")
  void header(byte[] data) {
    Path file = FuzzFiles.write("header", "model.safetensors", data);
    FuzzFiles.expectBadInputOrSuccess(
        file,
        () -> {
          try (SafetensorsFile f = SafetensorsFile.open(file)) {
            f.metadata();
            for (TensorInfo t : f.tensors()) {
              if (t.dtype().isFloat()) {
                f.floats(t.name());
              } else {
                f.ints(t.name());
              }
            }
          }
        });
  }

  @DictionaryEntries({
    "\"weight_map\"",
    "\"metadata\"",
    "\"total_size\"",
    "\"model-00001-of-00002.safetensors\"",
    "\"model-00002-of-00002.safetensors\"",
    "\"a\"",
    "\"b\"",
    "\"c\"",
    "..",
    "/",
    "\\u0000",
    "\".\"",
    "\"model.safetensors.index.json\""
  })
  @FuzzTest(maxDuration = "60s")
  void index(byte[] data) {
    Path dir = shardedFolder();
    FuzzFiles.write("index", Checkpoint.INDEX_FILE, data);
    FuzzFiles.expectBadInputOrSuccess(
        dir,
        () -> {
          try (Checkpoint c = Checkpoint.open(dir)) {
            for (String name : c.names()) {
              c.info(name);
              c.floats(name);
            }
            c.sizeOnDisk();
          }
        });
  }

  private static Path sharded;

  private static synchronized Path shardedFolder() {
    if (sharded == null) {
      sharded = writeShards(FuzzFiles.folder("index"));
    }
    return sharded;
  }

  /** Two shards and their index: a, b in the first, c in the second. */
  private static Path writeShards(Path dir) {
    try (SafetensorsWriter out = new SafetensorsWriter(dir, 32, Map.of("format", "pt"))) {
      out.writeFloats("a", DType.F32, new long[] {2, 3}, new float[] {1, 2, 3, 4, 5, 6});
      out.writeFloats("b", DType.F16, new long[] {4}, new float[] {0.5f, -1, 2, 0});
      out.writeFloats("c", DType.BF16, new long[] {2, 2}, new float[] {1, -2, 3, -4});
      out.finish();
    }
    return dir;
  }

  @Test
  void seedsParse() {
    FuzzFiles.assertSeedsParse(getClass(), "header", this::header);
    FuzzFiles.assertSeedsParse(getClass(), "index", this::index);
  }

  /** Writes the seeds of both corpora (run once by hand: -Dllmc.fuzz.writeSeeds=true). */
  @Test
  @EnabledIfSystemProperty(named = "llmc.fuzz.writeSeeds", matches = "true")
  void writeSeeds() {
    // Tiny files, one per dtype family, with metadata.
    Path tiny = FuzzFiles.folder("seeds-tiny");
    try (SafetensorsWriter out = new SafetensorsWriter(tiny, 0, Map.of("format", "pt"))) {
      out.writeFloats("w.f32", DType.F32, new long[] {2, 2}, new float[] {1, -2, 0.5f, 3});
      out.writeFloats("w.f16", DType.F16, new long[] {3}, new float[] {1, -2, 0.5f});
      out.writeFloats("w.bf16", DType.BF16, new long[] {1, 2}, new float[] {1, -2});
      out.writeFloats("w.f64", DType.F64, new long[] {1}, new float[] {7});
      out.write(
          "w.f8",
          DType.F8_E4M3,
          new long[] {2},
          MemorySegment.ofArray(new byte[] {0x38, (byte) 0xc0}));
      out.writeInts("i.i32", DType.I32, new long[] {2}, new int[] {-5, 7});
      out.writeInts("i.i64", DType.I64, new long[] {2}, new int[] {-5, 7});
      out.writeInts("i.u8", DType.U8, new long[] {3}, new int[] {0, 1, 255});
      out.writeInts("i.bool", DType.BOOL, new long[] {2}, new int[] {0, 1});
      out.writeInts("scalar", DType.I16, new long[] {}, new int[] {3});
      out.writeFloats("empty", DType.F32, new long[] {0, 4}, new float[] {});
      out.finish();
    }
    FuzzFiles.seed(
        getClass(), "header", "tiny", FuzzFiles.read(tiny.resolve(Checkpoint.SINGLE_FILE)));
    // stories260K's tensor names and dtypes with every dimension cut to at most 2.
    Path small = FuzzFiles.folder("seeds-stories");
    Path stories =
        Path.of(System.getProperty("llmc.root", ".."), "samples/models/stories260K")
            .resolve(Checkpoint.SINGLE_FILE);
    try (SafetensorsFile in = SafetensorsFile.open(stories);
        SafetensorsWriter out = new SafetensorsWriter(small, 0, in.metadata())) {
      for (TensorInfo t : in.tensors()) {
        long[] shape = Arrays.stream(t.shape()).map(d -> Math.min(d, 2)).toArray();
        int n = (int) Arrays.stream(shape).reduce(1, (a, b) -> a * b);
        float[] values = new float[n];
        for (int i = 0; i < n; i++) {
          values[i] = (i % 5) * 0.25f - 0.5f;
        }
        out.writeFloats(t.name(), t.dtype(), shape, values);
      }
      out.finish();
    }
    FuzzFiles.seed(
        getClass(), "header", "stories260K", FuzzFiles.read(small.resolve(Checkpoint.SINGLE_FILE)));
    FuzzFiles.seed(getClass(), "header", "empty-header", header("{}"));
    FuzzFiles.seed(
        getClass(),
        "header",
        "metadata-only",
        header("{\"__metadata__\":{\"format\":\"pt\",\"note\":\"x\"}}"));

    Path shards = writeShards(FuzzFiles.folder("seeds-index"));
    FuzzFiles.seed(
        getClass(), "index", "two-shards", FuzzFiles.read(shards.resolve(Checkpoint.INDEX_FILE)));
    FuzzFiles.seed(
        getClass(),
        "index",
        "minimal",
        ("{\"weight_map\":{\"a\":\"model-00001-of-00002.safetensors\","
                + "\"c\":\"model-00002-of-00002.safetensors\"}}")
            .getBytes(StandardCharsets.UTF_8));
  }

  /** u64 LE length | JSON, no data. */
  private static byte[] header(String json) {
    byte[] text = json.getBytes(StandardCharsets.UTF_8);
    byte[] out = new byte[8 + text.length];
    for (int i = 0; i < 8; i++) {
      out[i] = (byte) ((long) text.length >>> (8 * i));
    }
    System.arraycopy(text, 0, out, 8, text.length);
    return out;
  }
}
