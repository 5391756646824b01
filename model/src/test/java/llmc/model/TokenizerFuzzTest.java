package llmc.model;

import com.code_intelligence.jazzer.junit.DictionaryEntries;
import com.code_intelligence.jazzer.junit.FuzzTest;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;
import llmc.formats.FuzzFiles;
import llmc.formats.ModelFolder;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.condition.EnabledIfSystemProperty;

/**
 * Fuzzes the model's tokenizer.json as the runtime reads it (Hugging Face tokenizers through DJL's
 * native binding): any bytes as the tokenizer.json of a folder with stories260K's config.json
 * (vocab_size 512), opened with Tokenizer.open, a short text encoded (Unicode, digits, a surrogate
 * pair, special-token text) and decoded, the empty text encoded. Jazzer steers by llmc's own code
 * only, not inside the native library, so this is mostly a check that no file makes the JVM abort
 * or the Java side throw something else than a BadInputException. Without JAZZER_FUZZ the method
 * runs its corpus under {@code src/test/resources/llmc/model/TokenizerFuzzTestInputs/open};
 * scripts/fuzz.sh fuzzes it.
 */
@Timeout(10)
class TokenizerFuzzTest {

  /** stories260K's config.json, cut to what ModelFolder and Tokenizer read. */
  private static final String CONFIG =
      """
      {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 64,
       "intermediate_size": 172, "num_hidden_layers": 5, "num_attention_heads": 8,
       "num_key_value_heads": 4, "head_dim": 8, "vocab_size": 512, "max_position_embeddings": 512,
       "rms_norm_eps": 1e-05, "rope_theta": 10000.0, "bos_token_id": 1, "eos_token_id": 2}
      """;

  private static final String TEXT =
      "Once upon a time, Lily saw 12 red birds.\n\tÉlan, 中文 and \uD83D\uDE42 <s></s> the end ";

  @DictionaryEntries({
    "\"model\"",
    "\"type\"",
    "\"BPE\"",
    "\"WordPiece\"",
    "\"WordLevel\"",
    "\"Unigram\"",
    "\"vocab\"",
    "\"merges\"",
    "\"byte_fallback\"",
    "\"ignore_merges\"",
    "\"unk_token\"",
    "\"unk_id\"",
    "\"continuing_subword_prefix\"",
    "\"added_tokens\"",
    "\"id\"",
    "\"content\"",
    "\"special\"",
    "\"single_word\"",
    "\"normalized\"",
    "\"pre_tokenizer\"",
    "\"pretokenizers\"",
    "\"Sequence\"",
    "\"ByteLevel\"",
    "\"Split\"",
    "\"Regex\"",
    "\"Metaspace\"",
    "\"Digits\"",
    "\"normalizer\"",
    "\"Prepend\"",
    "\"Replace\"",
    "\"NFKC\"",
    "\"post_processor\"",
    "\"TemplateProcessing\"",
    "\"special_tokens\"",
    "\"decoder\"",
    "\"ByteFallback\"",
    "\"Fuse\"",
    "\"Strip\"",
    "\"<0x0A>\"",
    "\"\u2581\"",
    "\"\u0120\"",
    "\"\\ud800\"",
    "4294967295",
    "-1",
    "511",
    "512",
    "null",
    "[]",
    "{}"
  })
  @FuzzTest(maxDuration = "60s")
  void open(byte[] data) {
    Path dir = FuzzFiles.folder("hf-tokenizer");
    Path config = dir.resolve(ModelFolder.CONFIG);
    if (!Files.exists(config)) {
      try {
        Files.writeString(config, CONFIG);
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    }
    Path file = FuzzFiles.write("hf-tokenizer", "tokenizer.json", data);
    FuzzFiles.expectBadInputOrSuccess(
        file,
        () -> {
          try (ModelFolder folder = ModelFolder.open(dir);
              Tokenizer tokenizer = Tokenizer.open(folder)) {
            tokenizer.decode(tokenizer.encodeDocument(TEXT));
            tokenizer.encodeDocument("");
          }
        });
  }

  @Test
  void seedsParse() {
    FuzzFiles.assertSeedsParse(getClass(), "open", this::open);
  }

  /**
   * Writes the corpus's seeds (run once by hand: -Dllmc.fuzz.writeSeeds=true): stories260K's
   * tokenizer.json, and the seeds of GgufTokenizerFuzzTest (SentencePiece-style and byte-level
   * tokenizer.json files of SmolLM2, Llama 3 and Qwen2 shapes, cut to 48 tokens).
   */
  @Test
  @EnabledIfSystemProperty(named = "llmc.fuzz.writeSeeds", matches = "true")
  void writeSeeds() throws IOException {
    Path root = Path.of(System.getProperty("llmc.root", ".."));
    FuzzFiles.seed(
        getClass(),
        "open",
        "stories260K",
        Files.readAllBytes(root.resolve("samples/models/stories260K/tokenizer.json")));
    Path gguf =
        root.resolve(
            "formats/src/test/resources/llmc/formats/gguf/GgufTokenizerFuzzTestInputs/fromJson");
    try (Stream<Path> seeds = Files.list(gguf)) {
      for (Path seed :
          seeds.filter(f -> f.getFileName().toString().startsWith("seed-")).sorted().toList()) {
        FuzzFiles.seed(
            getClass(),
            "open",
            seed.getFileName().toString().substring("seed-".length()),
            Files.readAllBytes(seed));
      }
    }
  }
}
