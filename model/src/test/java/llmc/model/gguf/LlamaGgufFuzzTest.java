package llmc.model.gguf;

import com.code_intelligence.jazzer.junit.DictionaryEntries;
import com.code_intelligence.jazzer.junit.FuzzTest;
import java.nio.file.Path;
import java.util.List;
import llmc.formats.FuzzFiles;
import llmc.formats.gguf.GgmlType;
import llmc.formats.gguf.GgufFile;
import llmc.formats.gguf.GgufValueType;
import llmc.model.LlamaFamily;
import llmc.model.LoadedModel;
import llmc.model.MemoryWeights;
import llmc.model.Rope;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.condition.EnabledIfSystemProperty;

/**
 * Fuzzes the llama GGUF checks: any bytes as a {@code .gguf} file, its family from the metadata
 * alone (LlamaGguf.family through GgufWeights.family, as {@code inspect} reads it), then the file
 * opened as a model as {@code run}, {@code eval} and the stages open one (LoadedModel.open:
 * GgufWeights checks every tensor's name and shape against the family, the runtime reads the
 * embedding) and every tensor read in Hugging Face order. Without JAZZER_FUZZ the method runs its
 * corpus under {@code src/test/resources/llmc/model/gguf/LlamaGgufFuzzTestInputs/family};
 * scripts/fuzz.sh fuzzes it.
 */
@Timeout(10)
class LlamaGgufFuzzTest {

  @DictionaryEntries({
    "GGUF",
    "general.architecture",
    "llama",
    "llama.vocab_size",
    "llama.context_length",
    "llama.embedding_length",
    "llama.block_count",
    "llama.feed_forward_length",
    "llama.rope.dimension_count",
    "llama.attention.head_count",
    "llama.attention.head_count_kv",
    "llama.attention.key_length",
    "llama.attention.value_length",
    "llama.attention.layer_norm_rms_epsilon",
    "llama.rope.freq_base",
    "llama.rope.scaling.type",
    "llama.rope.scaling.factor",
    "linear",
    "none",
    "tokenizer.ggml.tokens",
    "token_embd.weight",
    "output_norm.weight",
    "output.weight",
    "blk.0.",
    "blk.1.",
    "attn_norm.weight",
    "attn_q.weight",
    "attn_k.weight",
    "attn_v.weight",
    "attn_output.weight",
    "ffn_norm.weight",
    "ffn_gate.weight",
    "ffn_up.weight",
    "ffn_down.weight"
  })
  @FuzzTest(maxDuration = "60s")
  void family(byte[] data) {
    Path file = FuzzFiles.write("llama-gguf", "model.gguf", data);
    FuzzFiles.expectBadInputOrSuccess(
        file,
        () -> {
          try (GgufFile gguf = GgufFile.open(file)) {
            touch(GgufWeights.family(gguf));
          }
          try (LoadedModel model = LoadedModel.open(file)) {
            touch(model.family);
            for (String name : model.gguf.names()) {
              model.gguf.shape(name);
              model.gguf.floats(name);
            }
          }
        });
  }

  private static void touch(LlamaFamily f) {
    f.groupSize();
    f.qWidth();
    f.kvWidth();
    f.defaultSeqLen();
    f.toString();
  }

  @Test
  void seedsParse() {
    FuzzFiles.assertSeedsParse(getClass(), "family", this::family);
  }

  /** Writes the corpus's seeds (run once by hand: -Dllmc.fuzz.writeSeeds=true). */
  @Test
  @EnabledIfSystemProperty(named = "llmc.fuzz.writeSeeds", matches = "true")
  void writeSeeds() {
    // The smallest llama: f32, tied embeddings, GQA, a tokenizer.
    seed(
        "tiny-f32-tied",
        new LlamaFamily(
            LlamaFamily.Variant.LLAMA,
            8,
            1,
            2,
            1,
            4,
            8,
            4,
            16,
            1e-5,
            new Rope.Spec(10000, "none", 1, 0, 0, 0),
            true,
            0),
        GgmlType.F32,
        true);
    // f16, an output.weight, two layers, a head size that is not hidden / heads (key_length is
    // written) and linear rope scaling.
    seed(
        "tiny-f16-untied",
        new LlamaFamily(
            LlamaFamily.Variant.LLAMA,
            16,
            2,
            4,
            2,
            8,
            8,
            6,
            32,
            1e-6,
            new Rope.Spec(500000, "linear", 2, 0, 0, 0),
            false,
            0),
        GgmlType.F16,
        false);
    // q4_0 linear layers (the tied embedding in q8_0, ffn_down in f16: its 16 columns are not a
    // block of 32).
    seed(
        "tiny-q4_0-tied",
        new LlamaFamily(
            LlamaFamily.Variant.LLAMA,
            32,
            1,
            2,
            2,
            16,
            16,
            4,
            64,
            1e-5,
            new Rope.Spec(10000, "none", 1, 0, 0, 0),
            true,
            0),
        GgmlType.Q4_0,
        false);
  }

  /** A random model of family {@code f} written as GgufModelWriter exports one. */
  private void seed(String name, LlamaFamily f, GgmlType type, boolean tokenizer) {
    MemoryWeights weights = MemoryWeights.random(f, 7, 0.5, false);
    List<String> names =
        LlamaGguf.writeOrder(f).keySet().stream().filter(weights::contains).toList();
    Path out = FuzzFiles.folder("seeds-llama-gguf").resolve(name + ".gguf");
    try (GgufModelWriter w =
        new GgufModelWriter(
            out,
            true,
            f,
            name,
            type,
            GgufModelWriter.plan(f, weights, names, type, null),
            g -> {
              if (tokenizer) {
                g.putString("tokenizer.ggml.model", "llama");
                g.putArray("tokenizer.ggml.tokens", List.of("<unk>", "<s>", "</s>", "\u2581a"));
                g.putArray("tokenizer.ggml.scores", new float[] {0, 0, 0, -1});
                g.putArray("tokenizer.ggml.token_type", GgufValueType.I32, new long[] {2, 3, 3, 1});
              }
            })) {
      for (GgufModelWriter.Tensor t : w.tensors()) {
        w.writeFloats(t.hfName(), weights.floats(t.hfName()));
      }
      w.finish();
    }
    FuzzFiles.seed(getClass(), "family", name, FuzzFiles.read(out));
  }
}
