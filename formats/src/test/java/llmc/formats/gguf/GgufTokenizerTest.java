package llmc.formats.gguf;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import llmc.formats.Json;
import llmc.formats.ModelFolder;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Tokenizer metadata for GGUF, written with GgufWriter and read back with GgufFile. Expected values
 * were read by hand from the files: stories260K's tokenizer.model protobuf (piece 259 "▁t" score
 * -0, 260 "he" -1, 265 "▁the" -6, 511 U+200A -252; types UNKNOWN, CONTROL, CONTROL, then BYTE for
 * ids 3 to 258), its tokenizer.json (165 merges; "▁ha" first made by merge 43; 102 single
 * characters after them), SmolLM2's tokenizer.json (48900 merges, the first "Ġ t"; 17 special added
 * tokens).
 */
class GgufTokenizerTest {

  @TempDir Path temp;

  private static Path stories() {
    Path dir = Path.of(System.getProperty("llmc.root", "..")).resolve("samples/models/stories260K");
    Assumptions.assumeTrue(Files.isDirectory(dir), "no " + dir);
    return dir;
  }

  private static Path smollm() {
    Path dir =
        Path.of(System.getProperty("llmc.shared", "../shared"), "models", "smollm2-135m-shape");
    Assumptions.assumeTrue(Files.isDirectory(dir), "no " + dir);
    return dir;
  }

  private GgufTokenizer tokenizer(Path dir) {
    try (ModelFolder folder = ModelFolder.open(dir)) {
      return GgufTokenizer.from(folder);
    }
  }

  /** The tokenizer's keys in a GGUF without tensors, read back. */
  private GgufMetadata written(GgufTokenizer tokenizer) {
    Path file = temp.resolve("tok-" + System.nanoTime() + ".gguf");
    try (GgufWriter writer = GgufWriter.create(file, false)) {
      writer.putString("general.architecture", "llama");
      tokenizer.writeTo(writer);
      writer.finish();
    }
    try (GgufFile gguf = GgufFile.open(file)) {
      return gguf.metadata();
    }
  }

  private Path copyWithout(Path from, String... left) throws IOException {
    Path dir = Files.createDirectories(temp.resolve("model-" + System.nanoTime()));
    try (var files = Files.list(from)) {
      for (Path f : files.toList()) {
        String name = f.getFileName().toString();
        if (!List.of(left).contains(name) && !name.endsWith(".safetensors")) {
          Files.copy(f, dir.resolve(name));
        }
      }
    }
    return dir;
  }

  @Test
  void stories260KFromTheSentencePieceModel() {
    GgufTokenizer tokenizer = tokenizer(stories());
    assertEquals("llama", tokenizer.model());
    assertEquals(512, tokenizer.size());
    assertEquals(List.of(), tokenizer.warnings());
    GgufMetadata m = written(tokenizer);
    assertEquals("llama", m.string("tokenizer.ggml.model"));
    assertEquals("default", m.string("tokenizer.ggml.pre"));
    List<String> tokens = m.strings("tokenizer.ggml.tokens");
    float[] scores = m.floats("tokenizer.ggml.scores");
    int[] types = m.ints("tokenizer.ggml.token_type");
    assertEquals(GgufValueType.I32, m.elementType("tokenizer.ggml.token_type"));
    assertEquals(512, tokens.size());
    assertEquals(512, scores.length);
    assertEquals(512, types.length);
    // special tokens: the protobuf says UNKNOWN, CONTROL, CONTROL with score 0; tokenizer_config's
    // added_tokens_decoder marks all three special, so CONTROL with -1000 as llama.cpp's converter
    // writes
    assertEquals(List.of("<unk>", "<s>", "</s>", "<0x00>"), tokens.subList(0, 4));
    assertArrayEquals(new int[] {3, 3, 3, 6}, Arrays.copyOf(types, 4));
    assertEquals(-1000f, scores[0]);
    assertEquals(-1000f, scores[1]);
    assertEquals("<0x0A>", tokens.get(13));
    assertEquals(6, types[13]);
    assertEquals(0f, scores[13]);
    assertEquals("<0xFF>", tokens.get(258));
    assertEquals("\u2581t", tokens.get(259));
    assertEquals(Float.floatToIntBits(-0f), Float.floatToIntBits(scores[259]));
    assertEquals("he", tokens.get(260));
    assertEquals(-1f, scores[260]);
    assertEquals("\u2581the", tokens.get(265));
    assertEquals(-6f, scores[265]);
    assertEquals("\u2581ha", tokens.get(300));
    assertEquals(-41f, scores[300]);
    assertEquals("\u200a", tokens.get(511));
    assertEquals(-252f, scores[511]);
    assertEquals(1, types[511]);
    assertEquals(1, m.integer("tokenizer.ggml.bos_token_id"));
    assertEquals(2, m.integer("tokenizer.ggml.eos_token_id"));
    assertEquals(0, m.integer("tokenizer.ggml.unknown_token_id"));
    assertEquals(GgufValueType.U32, m.type("tokenizer.ggml.bos_token_id"));
    assertFalse(m.contains("tokenizer.ggml.padding_token_id"));
    assertTrue(m.bool("tokenizer.ggml.add_bos_token"));
    assertFalse(m.bool("tokenizer.ggml.add_eos_token"));
    assertFalse(m.contains("tokenizer.ggml.merges"));
    assertFalse(m.contains("tokenizer.ggml.add_space_prefix"));
    assertFalse(m.contains("tokenizer.chat_template"));
  }

  @Test
  void stories260KFromTokenizerJsonOnlyScoresByMergeRank() throws IOException {
    Path dir = copyWithout(stories(), "tokenizer.model");
    GgufTokenizer tokenizer = tokenizer(dir);
    assertEquals("llama", tokenizer.model());
    assertEquals(512, tokenizer.size());
    assertEquals(List.of(), tokenizer.warnings());
    GgufMetadata m = written(tokenizer);
    List<String> tokens = m.strings("tokenizer.ggml.tokens");
    float[] scores = m.floats("tokenizer.ggml.scores");
    int[] types = m.ints("tokenizer.ggml.token_type");
    // the same texts and types as the SentencePiece model
    GgufMetadata spm = written(tokenizer(stories()));
    assertEquals(spm.strings("tokenizer.ggml.tokens"), tokens);
    assertArrayEquals(spm.ints("tokenizer.ggml.token_type"), types);
    // scores: -(rank of the first merge making the token), then the 102 single characters below all
    // 165
    assertEquals(0f, scores[259], 0f); // "▁t" = merge 0
    assertEquals(-1f, scores[260]); // "he" = merge 1
    assertEquals(-6f, scores[265]); // "▁the" = "▁t he", merge 6 ("▁th e" comes later)
    assertEquals(-43f, scores[300]); // "▁ha"
    assertEquals(-255f, scores[500]); // "\" (a character: 165 + 90)
    assertEquals(-266f, scores[511]); // the last of the 102 characters: 165 + 101
    assertEquals(0f, scores[3]); // <0x00>
    assertEquals(-1000f, scores[1]); // <s>, an added special token
    // the SPM order is kept: scores fall with the id over the merged tokens, as in the protobuf
    float[] spmScores = spm.floats("tokenizer.ggml.scores");
    for (int id = 260; id < 512; id++) {
      assertEquals(
          Float.compare(spmScores[id], spmScores[id - 1]) < 0,
          scores[id] < scores[id - 1],
          "id " + id);
    }
    assertEquals(1, m.integer("tokenizer.ggml.bos_token_id"));
    assertEquals(2, m.integer("tokenizer.ggml.eos_token_id"));
    assertEquals(0, m.integer("tokenizer.ggml.unknown_token_id"));
    assertTrue(m.bool("tokenizer.ggml.add_bos_token"));
    assertFalse(m.contains("tokenizer.ggml.add_space_prefix")); // the normalizer prepends ▁
  }

  @Test
  void tokenizerJsonOnlyWithoutTokenizerConfigUsesItsAddedTokensAndPostProcessor()
      throws IOException {
    Path dir =
        copyWithout(
            stories(), "tokenizer.model", "tokenizer_config.json", "special_tokens_map.json");
    GgufMetadata m = written(tokenizer(dir));
    int[] types = m.ints("tokenizer.ggml.token_type");
    assertArrayEquals(new int[] {3, 3, 3, 6}, Arrays.copyOf(types, 4));
    assertTrue(m.bool("tokenizer.ggml.add_bos_token")); // TemplateProcessing single = [<s>, A]
    assertFalse(m.contains("tokenizer.ggml.add_eos_token"));
    assertEquals(1, m.integer("tokenizer.ggml.bos_token_id"));
    assertEquals(2, m.integer("tokenizer.ggml.eos_token_id")); // config.json
  }

  @Test
  void smollm2ByteLevel() {
    GgufTokenizer tokenizer = tokenizer(smollm());
    assertEquals("gpt2", tokenizer.model());
    assertEquals("smollm", tokenizer.pre());
    assertEquals(49152, tokenizer.size());
    assertEquals(List.of(), tokenizer.warnings());
    GgufMetadata m = written(tokenizer);
    assertEquals("gpt2", m.string("tokenizer.ggml.model"));
    assertEquals("smollm", m.string("tokenizer.ggml.pre"));
    assertFalse(m.contains("tokenizer.ggml.scores"));
    List<String> tokens = m.strings("tokenizer.ggml.tokens");
    int[] types = m.ints("tokenizer.ggml.token_type");
    assertEquals(49152, tokens.size());
    assertEquals("<|endoftext|>", tokens.get(0));
    assertEquals("<|im_start|>", tokens.get(1));
    assertEquals("<empty_output>", tokens.get(16));
    for (int id = 0; id <= 16; id++) {
      assertEquals(GgufTokenizer.CONTROL, types[id], "id " + id);
    }
    assertEquals(GgufTokenizer.NORMAL, types[17]);
    assertEquals(GgufTokenizer.NORMAL, types[49151]);
    List<String> merges = m.strings("tokenizer.ggml.merges");
    assertEquals(48900, merges.size());
    assertEquals("\u0120 t", merges.get(0));
    assertEquals("\u0120 a", merges.get(1));
    assertEquals("i n", merges.get(2));
    assertEquals(1, m.integer("tokenizer.ggml.bos_token_id"));
    assertEquals(2, m.integer("tokenizer.ggml.eos_token_id"));
    assertEquals(2, m.integer("tokenizer.ggml.padding_token_id"));
    assertFalse(
        m.bool("tokenizer.ggml.add_bos_token")); // no post-processor: Hugging Face adds nothing
  }

  private static final String CONFIG =
      """
            {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 8,
             "intermediate_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2, "vocab_size": %d}
            """;

  /** A tiny byte-level tokenizer.json with merges stored as pairs (one part holding a space). */
  @Test
  void byteLevelMergesAsPairsPadsAndTypesAddedTokens() throws IOException {
    Path dir = Files.createDirectories(temp.resolve("pairs"));
    Files.writeString(dir.resolve("config.json"), CONFIG.formatted(8));
    Files.writeString(
        dir.resolve("tokenizer.json"),
        """
                {"added_tokens": [
                  {"id": 5, "content": "<|end|>", "special": false, "normalized": false},
                  {"id": 6, "content": "hello world", "special": false, "normalized": true}],
                 "normalizer": null,
                 "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true,
                                   "use_regex": true},
                 "post_processor": {"type": "ByteLevel"},
                 "model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2, "a b": 3, "c": 4},
                           "merges": [["a", "b"], ["a b", "c"]]}}
                """);
    GgufTokenizer tokenizer = tokenizer(dir);
    assertEquals("gpt-2", tokenizer.pre());
    GgufMetadata m = written(tokenizer);
    assertEquals(
        List.of("a", "b", "ab", "a b", "c", "<|end|>", "hello world", "[PAD7]"),
        m.strings("tokenizer.ggml.tokens"));
    assertArrayEquals(new int[] {1, 1, 1, 1, 1, 3, 4, 5}, m.ints("tokenizer.ggml.token_type"));
    assertEquals(List.of("a b", "a\u0120b c"), m.strings("tokenizer.ggml.merges"));
    assertFalse(m.bool("tokenizer.ggml.add_bos_token"));
  }

  @Test
  void unknownByteLevelPreTokenizerIsWrittenAsDefaultWithAWarning() throws IOException {
    Path dir = Files.createDirectories(temp.resolve("unknown-pre"));
    Files.writeString(dir.resolve("config.json"), CONFIG.formatted(3));
    Files.writeString(
        dir.resolve("tokenizer.json"),
        """
                {"pre_tokenizer": {"type": "Sequence", "pretokenizers": [
                   {"type": "Split", "pattern": {"Regex": "\\\\d+"}, "behavior": "Isolated", "invert": false},
                   {"type": "ByteLevel", "add_prefix_space": true, "use_regex": true}]},
                 "model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": ["a b"]}}
                """);
    GgufTokenizer tokenizer = tokenizer(dir);
    assertEquals("default", tokenizer.pre());
    assertEquals(1, tokenizer.warnings().size());
    assertTrue(
        tokenizer.warnings().get(0).contains("wrote tokenizer.ggml.pre 'default'"),
        tokenizer.warnings().get(0));
  }

  @Test
  void knownSplitRegexesMapToLlamaCppNames() throws IOException {
    var mapper = Json.mapper();
    String byteLevel =
        "{\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"use_regex\": false}";
    for (String regex : List.of(GgufTokenizer.LLAMA3_REGEX, GgufTokenizer.QWEN2_REGEX)) {
      String split =
          mapper.writeValueAsString(
              mapper
                  .createObjectNode()
                  .put("type", "Split")
                  .put("behavior", "Isolated")
                  .put("invert", false)
                  .set("pattern", mapper.createObjectNode().put("Regex", regex)));
      List<JsonNode> shape = List.of(mapper.readTree(split), mapper.readTree(byteLevel));
      boolean llama3 = regex.equals(GgufTokenizer.LLAMA3_REGEX);
      assertEquals(llama3 ? "llama-bpe" : "qwen2", GgufTokenizer.preTokenizerName(shape, llama3));
      assertEquals("default", GgufTokenizer.preTokenizerName(shape, !llama3));
    }
  }

  @Test
  void refusesWordPieceAndUnigram() throws IOException {
    for (String type : List.of("WordPiece", "Unigram")) {
      Path dir = Files.createDirectories(temp.resolve(type));
      Files.writeString(dir.resolve("config.json"), CONFIG.formatted(3));
      Files.writeString(
          dir.resolve("tokenizer.json"),
          "{\"model\": {\"type\": \"" + type + "\", \"vocab\": {\"a\": 0}}}");
      GgufTestFiles.assertBadInput(
          () -> tokenizer(dir),
          dir.resolve("tokenizer.json").toString(),
          "a " + type + " tokenizer",
          "only BPE");
    }
  }

  @Test
  void refusesASentencePieceUnigramModelAndABrokenOne() throws IOException {
    Path dir = copyWithout(stories(), "tokenizer.model");
    // ModelProto { pieces { piece: "a" score: 0 } trainer_spec { model_type: UNIGRAM } }
    Files.write(
        dir.resolve("tokenizer.model"),
        new byte[] {0x0a, 0x03, 0x0a, 0x01, 'a', 0x12, 0x02, 0x18, 0x01});
    GgufTestFiles.assertBadInput(
        () -> tokenizer(dir), dir.resolve("tokenizer.model").toString(), "Unigram");
    Files.write(dir.resolve("tokenizer.model"), new byte[] {0x0a, 0x7f, 0x0a});
    GgufTestFiles.assertBadInput(
        () -> tokenizer(dir),
        dir.resolve("tokenizer.model").toString(),
        "not a SentencePiece model");
  }

  @Test
  void refusesTokensBeyondVocabSizeAndDuplicateTexts() throws IOException {
    Path dir = Files.createDirectories(temp.resolve("beyond"));
    Files.writeString(dir.resolve("config.json"), CONFIG.formatted(2));
    Files.writeString(
        dir.resolve("tokenizer.json"),
        """
                {"pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "use_regex": true},
                 "model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": ["a b"]}}
                """);
    GgufTestFiles.assertBadInput(
        () -> tokenizer(dir), "tokenizer.json", "'ab' has id 2", "vocab_size is 2");
    Files.writeString(dir.resolve("config.json"), CONFIG.formatted(3));
    Files.writeString(
        dir.resolve("tokenizer.json"),
        """
                {"added_tokens": [{"id": 2, "content": "a", "special": true}],
                 "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "use_regex": true},
                 "model": {"type": "BPE", "vocab": {"a": 0, "b": 1}, "merges": []}}
                """);
    GgufTestFiles.assertBadInput(
        () -> tokenizer(dir), "tokenizer.json", "tokens 0 and 2 are both 'a'");
  }

  /** Found by GgufTokenizerFuzzTest's read-back (the regression inputs are in its corpus). */
  @Test
  void refusesUnpairedSurrogatesAndATemplateThatIsNotAnArray() throws IOException {
    Path dir = Files.createDirectories(temp.resolve("hostile"));
    Files.writeString(dir.resolve("config.json"), CONFIG.formatted(4));
    // "\ud800" and "?" are distinct in Java but both '?' once written as UTF-8
    Files.writeString(
        dir.resolve("tokenizer.json"),
        """
        {"pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "use_regex": true},
         "model": {"type": "BPE", "vocab": {"a": 0, "?": 1, "\\ud800": 2}, "merges": []}}
        """);
    GgufTestFiles.assertBadInput(
        () -> tokenizer(dir), "tokenizer.json", "token 2 holds an unpaired surrogate (\\ud800");
    Files.writeString(
        dir.resolve("tokenizer.json"),
        """
        {"pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "use_regex": true},
         "model": {"type": "BPE", "vocab": {"a": 0, "b": 1}, "merges": [["\\udc00", "b"]]}}
        """);
    GgufTestFiles.assertBadInput(
        () -> tokenizer(dir), "tokenizer.json", "merge 0 holds an unpaired surrogate");
    Files.writeString(
        dir.resolve("tokenizer.json"),
        """
        {"post_processor": {"type": "TemplateProcessing", "single": {"a": 1, "b": 2}},
         "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "use_regex": true},
         "model": {"type": "BPE", "vocab": {"a": 0, "b": 1}, "merges": []}}
        """);
    GgufTestFiles.assertBadInput(
        () -> tokenizer(dir),
        "tokenizer.json",
        "post-processor's \"single\" is object, not an array");
  }

  @Test
  void chatTemplateFromTokenizerConfig() throws IOException {
    Path dir = copyWithout(stories(), "tokenizer_config.json");
    Files.writeString(
        dir.resolve("tokenizer_config.json"),
        "{\"add_bos_token\": false, \"chat_template\": \"{{ messages }}\", \"bos_token\": \"<s>\"}");
    GgufMetadata m = written(tokenizer(dir));
    assertEquals("{{ messages }}", m.string("tokenizer.chat_template"));
    assertFalse(m.bool("tokenizer.ggml.add_bos_token"));
    // no added_tokens_decoder: tokenizer.json's added tokens type the specials
    assertEquals(3, m.ints("tokenizer.ggml.token_type")[1]);
  }
}
