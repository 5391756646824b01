package llmc.formats.gguf;

import com.code_intelligence.jazzer.junit.DictionaryEntries;
import com.code_intelligence.jazzer.junit.FuzzTest;
import java.nio.file.Path;
import java.util.List;
import llmc.formats.FuzzFiles;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.condition.EnabledIfSystemProperty;

/**
 * Fuzzes GgufFile: open any bytes, then read every metadata value with its typed accessor and every
 * tensor. Without JAZZER_FUZZ the method runs its corpus under {@code
 * src/test/resources/llmc/formats/gguf/GgufFuzzTestInputs/open}; scripts/fuzz.sh fuzzes it.
 */
@Timeout(10)
class GgufFuzzTest {

  @DictionaryEntries({"GGUF", "general.alignment", "general.architecture", "tokenizer.ggml.tokens"})
  @FuzzTest(maxDuration = "60s")
  void open(byte[] data) {
    Path file = FuzzFiles.write("gguf", "model.gguf", data);
    FuzzFiles.expectBadInputOrSuccess(
        file,
        () -> {
          try (GgufFile gguf = GgufFile.open(file)) {
            GgufMetadata meta = gguf.metadata();
            for (String key : meta.keys()) {
              meta.value(key);
              GgufValueType type = meta.type(key);
              if (type == GgufValueType.ARRAY) {
                GgufValueType element = meta.elementType(key);
                if (element == GgufValueType.STRING) {
                  meta.strings(key);
                } else if (element == GgufValueType.F32) {
                  meta.floats(key);
                } else if (element.isInteger()) {
                  meta.ints(key);
                }
              } else if (type.isInteger()) {
                meta.integer(key);
              } else if (type == GgufValueType.STRING) {
                meta.string(key);
              } else if (type == GgufValueType.F32) {
                meta.f32(key);
              } else if (type == GgufValueType.BOOL) {
                meta.bool(key);
              }
            }
            for (GgufTensorInfo t : gguf.tensors()) {
              gguf.info(t.name());
              gguf.bytes(t.name());
              gguf.floats(t.name());
            }
          }
        });
  }

  @Test
  void seedsParse() {
    FuzzFiles.assertSeedsParse(getClass(), "open", this::open);
  }

  /** Writes the corpus's seeds (run once by hand: -Dllmc.fuzz.writeSeeds=true). */
  @Test
  @EnabledIfSystemProperty(named = "llmc.fuzz.writeSeeds", matches = "true")
  void writeSeeds() {
    Path dir = FuzzFiles.folder("seeds-gguf");
    // Every metadata type and every tensor type llmc reads, tiny.
    Path every = dir.resolve("every-type.gguf");
    try (GgufWriter w = GgufWriter.create(every, true)) {
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
      w.putArray("a.i32", GgufValueType.I32, new long[] {-1, 2, 3});
      w.putArray("a.u64", GgufValueType.U64, new long[] {7});
      w.putArray("a.f32", new float[] {0.5f, -1e-6f});
      w.putArray("a.f64", new double[] {Math.E});
      w.putArray("a.bool", new boolean[] {true, false});
      w.putArray("tokenizer.ggml.tokens", List.of("<s>", "é", "", "▁the"));
      w.putArray("a.empty", List.of());
      w.declare("f32.weight", GgmlType.F32, 3);
      w.declare("f16.weight", GgmlType.F16, 2, 2);
      w.declare("q4_0.weight", GgmlType.Q4_0, 1, 32);
      w.declare("q4_1.weight", GgmlType.Q4_1, 1, 32);
      w.declare("q5_0.weight", GgmlType.Q5_0, 1, 32);
      w.declare("q5_1.weight", GgmlType.Q5_1, 1, 32);
      w.declare("q8_0.weight", GgmlType.Q8_0, 1, 32);
      w.writeFloats("f32.weight", new float[] {1, -2.5f, 3e-8f});
      w.writeFloats("f16.weight", new float[] {0.5f, -1.25f, 2, 3});
      for (String name :
          List.of("q4_0.weight", "q4_1.weight", "q5_0.weight", "q5_1.weight", "q8_0.weight")) {
        float[] row = new float[32];
        for (int i = 0; i < 32; i++) {
          row[i] = (i % 7) * 0.125f - 0.375f;
        }
        w.writeFloats(name, row);
      }
      w.finish();
    }
    FuzzFiles.seed(getClass(), "open", "every-type", FuzzFiles.read(every));
    // A llama-shaped file: the keys LlamaGguf reads, with an alignment of 64.
    Path llama = dir.resolve("llama.gguf");
    try (GgufWriter w = GgufWriter.create(llama, true)) {
      w.alignment(64);
      w.putString("general.architecture", "llama");
      w.putU32("llama.block_count", 1);
      w.putU32("llama.embedding_length", 32);
      w.putU32("llama.feed_forward_length", 32);
      w.putU32("llama.attention.head_count", 2);
      w.putU32("llama.attention.head_count_kv", 1);
      w.putF32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
      w.putF32("llama.rope.freq_base", 10000);
      w.putArray("tokenizer.ggml.scores", new float[] {0, -1});
      w.putArray("tokenizer.ggml.token_type", GgufValueType.I32, new long[] {3, 1});
      w.declare("token_embd.weight", GgmlType.Q8_0, 2, 32);
      w.declare("output_norm.weight", GgmlType.F32, 32);
      float[] values = new float[64];
      for (int i = 0; i < values.length; i++) {
        values[i] = (i % 5) * 0.25f - 0.5f;
      }
      w.writeFloats("token_embd.weight", values);
      w.writeFloats("output_norm.weight", java.util.Arrays.copyOf(values, 32));
      w.finish();
    }
    FuzzFiles.seed(getClass(), "open", "llama", FuzzFiles.read(llama));
    FuzzFiles.seed(
        getClass(),
        "open",
        "header-only",
        new byte[] {
          'G', 'G', 'U', 'F', 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0
        });
  }
}
