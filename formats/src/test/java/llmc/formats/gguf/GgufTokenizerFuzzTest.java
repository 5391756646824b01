package llmc.formats.gguf;

import static org.junit.jupiter.api.Assertions.assertEquals;

import com.code_intelligence.jazzer.junit.DictionaryEntries;
import com.code_intelligence.jazzer.junit.FuzzTest;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import llmc.formats.FuzzFiles;
import llmc.formats.Json;
import llmc.formats.ModelFolder;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.condition.EnabledIfSystemProperty;

/**
 * Fuzzes tokenizer.json as GgufTokenizer reads it: any bytes as the tokenizer.json of a model
 * folder whose config.json says vocab_size 64 (bos 1, eos 2; no tokenizer_config.json, so the
 * file's added tokens and post-processor decide the special tokens), then size, model, pre,
 * warnings, the keys written to a GGUF file and read back (as many distinct token texts as
 * vocab_size, which llama.cpp asserts). Without JAZZER_FUZZ the method runs its corpus under {@code
 * src/test/resources/llmc/formats/gguf/GgufTokenizerFuzzTestInputs/fromJson}; scripts/fuzz.sh
 * fuzzes it.
 */
@Timeout(10)
class GgufTokenizerFuzzTest {

  static final String CONFIG =
      """
      {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 32,
       "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2,
       "vocab_size": 64, "max_position_embeddings": 64, "rms_norm_eps": 1e-05,
       "bos_token_id": 1, "eos_token_id": 2}
      """;

  @DictionaryEntries({
    "\"model\"",
    "\"type\"",
    "\"BPE\"",
    "\"vocab\"",
    "\"merges\"",
    "\"byte_fallback\"",
    "\"ignore_merges\"",
    "\"unk_token\"",
    "\"added_tokens\"",
    "\"id\"",
    "\"content\"",
    "\"special\"",
    "\"pre_tokenizer\"",
    "\"pretokenizers\"",
    "\"Sequence\"",
    "\"ByteLevel\"",
    "\"add_prefix_space\"",
    "\"use_regex\"",
    "\"Digits\"",
    "\"individual_digits\"",
    "\"Split\"",
    "\"pattern\"",
    "\"Regex\"",
    "\"behavior\"",
    "\"Isolated\"",
    "\"invert\"",
    "\"Metaspace\"",
    "\"prepend_scheme\"",
    "\"never\"",
    "\"normalizer\"",
    "\"normalizers\"",
    "\"Prepend\"",
    "\"prepend\"",
    "\"Replace\"",
    "\"String\"",
    "\"post_processor\"",
    "\"processors\"",
    "\"TemplateProcessing\"",
    "\"RobertaProcessing\"",
    "\"single\"",
    "\"SpecialToken\"",
    "\"<0x0A>\"",
    "\"<|endoftext|>\"",
    "\"\u2581\"",
    "\"\u0120\"",
    "\"\\ud800\"",
    "2147483648",
    "-1",
    "63",
    "64",
    "null",
    "[]",
    "{}"
  })
  @FuzzTest(maxDuration = "60s")
  void fromJson(byte[] data) {
    Path dir = FuzzFiles.folder("tokenizer");
    writeConfig(dir, CONFIG);
    Path file = FuzzFiles.write("tokenizer", "tokenizer.json", data);
    FuzzFiles.expectBadInputOrSuccess(
        file,
        () -> {
          GgufTokenizer tokenizer;
          try (ModelFolder folder = ModelFolder.open(dir)) {
            tokenizer = GgufTokenizer.from(folder);
          }
          tokenizer.model();
          tokenizer.pre();
          tokenizer.warnings();
          writeAndReadBack(tokenizer, "tokenizer-gguf");
        });
  }

  /** config.json of the fuzzed folder, written once per JVM. */
  static void writeConfig(Path dir, String json) {
    Path config = dir.resolve(ModelFolder.CONFIG);
    if (!Files.exists(config)) {
      try {
        Files.writeString(config, json);
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    }
  }

  /**
   * The tokenizer's keys in a GGUF file, read back: size() token texts, all distinct (llama.cpp
   * refuses a file whose token texts collide).
   */
  static void writeAndReadBack(GgufTokenizer tokenizer, String folder) {
    Path out = FuzzFiles.folder(folder).resolve("tokenizer.gguf");
    try (GgufWriter writer = GgufWriter.create(out, true)) {
      writer.putString("general.architecture", "llama");
      tokenizer.writeTo(writer);
      writer.finish();
    }
    try (GgufFile gguf = GgufFile.open(out)) {
      List<String> tokens = gguf.metadata().strings("tokenizer.ggml.tokens");
      assertEquals(tokenizer.size(), tokens.size(), "tokens written");
      assertEquals(tokens.size(), new HashSet<>(tokens).size(), "distinct token texts written");
      assertEquals(tokens.size(), gguf.metadata().ints("tokenizer.ggml.token_type").length);
    }
  }

  @Test
  void seedsParse() {
    FuzzFiles.assertSeedsParse(getClass(), "fromJson", this::fromJson);
  }

  /** Writes the corpus's seeds (run once by hand: -Dllmc.fuzz.writeSeeds=true). */
  @Test
  @EnabledIfSystemProperty(named = "llmc.fuzz.writeSeeds", matches = "true")
  void writeSeeds() throws IOException {
    // SentencePiece-style BPE with byte fallback: stories260K's tokenizer.json cut to 48 tokens (3
    // specials, 4 byte tokens, 15 characters and the first 26 merges among them).
    seed(
        "sentencepiece-stories260K",
        """
        {
         "version": "1.0",
         "truncation": null,
         "padding": null,
         "added_tokens": [
          {"id": 0, "content": "<unk>", "single_word": false, "lstrip": false, "rstrip": false,
             "normalized": false, "special": true},
          {"id": 1, "content": "<s>", "single_word": false, "lstrip": false, "rstrip": false,
             "normalized": false, "special": true},
          {"id": 2, "content": "</s>", "single_word": false, "lstrip": false, "rstrip": false,
             "normalized": false, "special": true}
         ],
         "normalizer": {"type": "Sequence", "normalizers": [
           {"type": "Prepend", "prepend": "▁"},
           {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}]},
         "pre_tokenizer": null,
         "post_processor": {"type": "TemplateProcessing",
          "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}},
                     {"Sequence": {"id": "A", "type_id": 0}}],
          "pair": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                   {"SpecialToken": {"id": "<s>", "type_id": 1}}, {"Sequence": {"id": "B", "type_id": 1}}],
          "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}}},
         "decoder": {"type": "Sequence", "decoders": [
           {"type": "Replace", "pattern": {"String": "▁"}, "content": " "}, {"type": "ByteFallback"},
           {"type": "Fuse"}, {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
         "model": {
          "type": "BPE",
          "dropout": null,
          "unk_token": "<unk>",
          "continuing_subword_prefix": null,
          "end_of_word_suffix": null,
          "fuse_unk": true,
          "byte_fallback": true,
          "ignore_merges": false,
          "vocab": {
           "<unk>": 0, "<s>": 1, "</s>": 2, "<0x0A>": 3, "<0x20>": 4, "<0xC3>": 5, "<0xA9>": 6,
           "▁": 7, "t": 8, "h": 9, "e": 10, "s": 11, "a": 12, "w": 13, "n": 14, "d": 15, "o": 16,
           "T": 17, "L": 18, "i": 19, "l": 20, "y": 21, "▁t": 22, "he": 23, "▁a": 24, "▁s": 25,
           "▁w": 26, "nd": 27, "▁the": 28, "ed": 29, "▁to": 30, "▁and": 31, "▁h": 32, "in": 33,
           "▁wa": 34, "▁T": 35, "it": 36, "▁l": 37, "▁d": 38, "▁he": 39, "ay": 40, "▁was": 41,
           "on": 42, "il": 43, "▁The": 44, "id": 45, "is": 46, "at": 47},
          "merges": [
           "▁ t", "h e", "▁ a", "▁ s", "▁ w", "n d", "▁t he", "e d", "▁t o", "▁a nd", "▁ h", "i n",
           "▁w a", "▁ T", "i t", "▁ l", "▁ d", "▁h e", "a y", "▁wa s", "o n", "i l", "▁T he",
           "i d", "i s", "a t"]
         }
        }
        """);
    // Byte-level BPE, SmolLM2-135M's tokenizer.json (pre-tokenizer "smollm") cut to 48 tokens: 3
    // of its 17 specials, 13 characters and the first 32 merges among them.
    String smollm2 =
        """
        {
         "version": "1.0",
         "truncation": null,
         "padding": null,
         "added_tokens": [
          {"id": 0, "content": "<|endoftext|>", "single_word": false, "lstrip": false, "rstrip": false,
             "normalized": false, "special": true},
          {"id": 1, "content": "<|im_start|>", "single_word": false, "lstrip": false, "rstrip": false,
             "normalized": false, "special": true},
          {"id": 2, "content": "<|im_end|>", "single_word": false, "lstrip": false, "rstrip": false,
             "normalized": false, "special": true}
         ],
         "normalizer": null,
         "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
           {"type": "Digits", "individual_digits": true},
           {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true}]},
         "post_processor": null,
         "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true,
                     "use_regex": true},
         "model": {
          "type": "BPE",
          "dropout": null,
          "unk_token": null,
          "continuing_subword_prefix": null,
          "end_of_word_suffix": null,
          "fuse_unk": false,
          "byte_fallback": false,
          "ignore_merges": false,
          "vocab": {
           "<|endoftext|>": 0, "<|im_start|>": 1, "<|im_end|>": 2, "Ġ": 3, "t": 4, "a": 5, "i": 6,
           "n": 7, "e": 8, "o": 9, "h": 10, "r": 11, "s": 12, "0": 13, "1": 14, "Ċ": 15, "Ġt": 16,
           "Ġa": 17, "in": 18, "he": 19, "ĠĠ": 20, "re": 21, "on": 22, "er": 23, "Ġthe": 24,
           "at": 25, "Ġs": 26, "Ġo": 27, "en": 28, "es": 29, "it": 30, "or": 31, "is": 32,
           "an": 33, "ar": 34, "Ġin": 35, "ion": 36, "Ġto": 37, "ĠĠĠĠ": 38, "ro": 39, "as": 40,
           "ent": 41, "Ġh": 42, "Ġth": 43, "Ġe": 44, "Ġre": 45, "st": 46, "Ġn": 47},
          "merges": [
           "Ġ t", "Ġ a", "i n", "h e", "Ġ Ġ", "r e", "o n", "e r", "Ġt he", "a t", "Ġ s", "Ġ o",
           "e n", "e s", "i t", "o r", "i s", "a n", "a r", "Ġ in", "i on", "Ġt o", "ĠĠ ĠĠ", "r o",
           "a s", "en t", "Ġ h", "Ġt h", "Ġ e", "Ġ re", "s t", "Ġ n"]
         }
        }
        """;
    seed("byte-level-smollm2", smollm2);
    // Llama 3's shape ("llama-bpe"): the Split regex, ignore_merges, merges as pairs, the added
    // tokens after the vocabulary and a Sequence post-processor adding <|begin_of_text|>.
    ObjectNode llama3 = (ObjectNode) Json.mapper().readTree(smollm2);
    ObjectNode bpe = (ObjectNode) llama3.get("model");
    ObjectNode vocab = Json.mapper().createObjectNode();
    int id = 0;
    for (Map.Entry<String, JsonNode> e : bpe.get("vocab").properties()) {
      if (!e.getKey().startsWith("<|")) {
        vocab.put(e.getKey(), id++);
      }
    }
    bpe.set("vocab", vocab);
    ArrayNode pairs = Json.mapper().createArrayNode();
    for (JsonNode m : bpe.get("merges")) {
      String[] parts = m.textValue().split(" ");
      pairs.addArray().add(parts[0]).add(parts[1]);
    }
    bpe.set("merges", pairs);
    bpe.put("ignore_merges", true);
    ArrayNode added = llama3.putArray("added_tokens");
    for (String special : List.of("<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>")) {
      added
          .addObject()
          .put("id", id++)
          .put("content", special)
          .put("single_word", false)
          .put("lstrip", false)
          .put("rstrip", false)
          .put("normalized", false)
          .put("special", true);
    }
    llama3.set("pre_tokenizer", splitThenByteLevel(GgufTokenizer.LLAMA3_REGEX));
    llama3.set(
        "post_processor",
        Json.mapper()
            .readTree(
                """
                {"type": "Sequence", "processors": [
                  {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": false,
                   "use_regex": true},
                  {"type": "TemplateProcessing",
                   "single": [{"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 0}},
                              {"Sequence": {"id": "A", "type_id": 0}}],
                   "pair": [{"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 0}},
                            {"Sequence": {"id": "A", "type_id": 0}},
                            {"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 1}},
                            {"Sequence": {"id": "B", "type_id": 1}}],
                   "special_tokens": {"<|begin_of_text|>": {"id": "<|begin_of_text|>",
                     "ids": [%d], "tokens": ["<|begin_of_text|>"]}}}]}
                """
                    .formatted(added.get(0).get("id").intValue())));
    seed("byte-level-llama3", Json.pretty(llama3));
    // Qwen2's shape ("qwen2"): its Split regex, an NFC normalizer (a warning), a ByteLevel
    // post-processor.
    ObjectNode qwen2 = (ObjectNode) Json.mapper().readTree(smollm2);
    qwen2.set("pre_tokenizer", splitThenByteLevel(GgufTokenizer.QWEN2_REGEX));
    qwen2.putObject("normalizer").put("type", "NFC");
    qwen2
        .putObject("post_processor")
        .put("type", "ByteLevel")
        .put("add_prefix_space", false)
        .put("trim_offsets", false)
        .put("use_regex", false);
    seed("byte-level-qwen2", Json.pretty(qwen2));
  }

  /** Split(regex, Isolated) then ByteLevel without its own regex, as Llama 3 and Qwen2 have. */
  private static ObjectNode splitThenByteLevel(String regex) {
    ObjectNode pre = Json.mapper().createObjectNode().put("type", "Sequence");
    ArrayNode parts = pre.putArray("pretokenizers");
    ObjectNode split = parts.addObject().put("type", "Split");
    split.putObject("pattern").put("Regex", regex);
    split.put("behavior", "Isolated").put("invert", false);
    parts
        .addObject()
        .put("type", "ByteLevel")
        .put("add_prefix_space", false)
        .put("trim_offsets", true)
        .put("use_regex", false);
    return pre;
  }

  private void seed(String name, String json) {
    FuzzFiles.seed(getClass(), "fromJson", name, json.getBytes(StandardCharsets.UTF_8));
  }
}
