package llmc.formats.gguf;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.regex.Pattern;
import llmc.formats.BadInputException;
import llmc.formats.Json;
import llmc.formats.ModelFolder;

/**
 * The tokenizer of a Hugging Face model folder as llama.cpp reads it from GGUF: every {@code
 * tokenizer.ggml.*} key and {@code tokenizer.chat_template}, following llama.cpp's converter
 * ({@code convert_hf_to_gguf.py} and gguf-py's {@code SpecialVocab}) wherever that converter is
 * right, and saying below where llmc departs from it and why.
 *
 * <h2>Which tokenizer</h2>
 *
 * <ul>
 *   <li><b>{@code tokenizer.model} (SentencePiece BPE)</b>, as the converter's {@code
 *       _set_vocab_sentencepiece}: {@code model = "llama"}, {@code pre = "default"}; {@code
 *       config.json}'s {@code vocab_size} slots, each first {@code [PAD<i>]} with score -10000 and
 *       type UNUSED, then piece i's text, score and type for every piece below vocab_size (pieces
 *       beyond it are dropped with a warning); then {@code added_tokens.json} (USER_DEFINED, score
 *       -1000) and the added tokens of {@code tokenizer_config.json}'s {@code added_tokens_decoder}
 *       (CONTROL when {@code special} or the text looks special like {@code <|...|>}, else
 *       USER_DEFINED with {@code ▁} turned back into spaces; score -1000). Departures: a
 *       USER_DEFINED piece keeps its type (the converter's SentencePieceProcessor test chain turns
 *       it into NORMAL, so llama.cpp would no longer match it whole as SentencePiece does); without
 *       an {@code added_tokens_decoder}, {@code tokenizer.json}'s {@code added_tokens} play its
 *       part (older folders); {@code add_dummy_prefix = false} is written as {@code
 *       tokenizer.ggml.add_space_prefix = false}. A Unigram model is refused: llama.cpp's "llama"
 *       tokenizer merges pieces BPE-style by score, which is not Unigram's best segmentation.
 *   <li><b>SentencePiece-style {@code tokenizer.json}</b> (BPE with {@code byte_fallback}, {@code
 *       ▁} for spaces) and no {@code tokenizer.model}: {@code model = "llama"}, the tokens in id
 *       order, padded to vocab_size as above. llama.cpp's converter ({@code LlamaHfVocab}) writes
 *       the score -1000 for every token; llama.cpp's SPM tokenizer repeatedly merges the adjacent
 *       pair whose concatenation has the highest score (ties: leftmost), so equal scores turn it
 *       into a left-to-right merger that tokenizes differently from the file. llmc instead gives
 *       each token made by a merge the score {@code -rank} of the first merge in {@code merges}
 *       that makes it, so that the highest score is the earliest merge, exactly Hugging Face's
 *       order (lowest rank first) whenever the merges list holds every pair whose concatenation is
 *       a token, which is what Hugging Face's SentencePiece conversion writes. Tokens no merge
 *       makes (single characters) get {@code -(merges + k)} for the k-th of them, below every merge
 *       as in a SentencePiece model; byte tokens {@code <0xXX>} (type BYTE) and the model's {@code
 *       unk_token} (UNKNOWN) get 0; added tokens are typed and scored as above.
 *   <li><b>Byte-level BPE {@code tokenizer.json}</b> (a ByteLevel pre-tokenizer), as {@code
 *       _set_vocab_gpt2}: {@code model = "gpt2"}, the tokens in id order as stored (byte-level
 *       characters; added tokens as their text), {@code [PAD<i>]} UNUSED for ids no token has up to
 *       vocab_size, types NORMAL / CONTROL (special or special-looking added tokens) / USER_DEFINED
 *       (other added tokens), no scores, {@code merges} as {@code "a b"} strings (pairs stored as
 *       {@code ["a", "b"]} are joined the same way, a space inside a part written as {@code Ġ} like
 *       gguf-py). {@code tokenizer.ggml.pre} names llama.cpp's pre-tokenizer: the converter
 *       recognizes it by hashing a test tokenization; llmc recognizes the exact pre-tokenizer
 *       shapes whose llama.cpp regexes are the same: ByteLevel alone ({@code "gpt-2"}, llama.cpp's
 *       spelling), Digits(individual) + ByteLevel ({@code "smollm"}, SmolLM and SmolLM2), the Llama
 *       3 split regex with {@code ignore_merges} ({@code "llama-bpe"}) and Qwen2's ({@code
 *       "qwen2"}); anything else is written as {@code "default"} with a warning.
 *   <li>Anything else (WordPiece, Unigram, WordLevel, BPE that is neither) is refused with a
 *       BadInputException.
 * </ul>
 *
 * <h2>Special tokens, as gguf-py's SpecialVocab</h2>
 *
 * bos / eos / unk / sep / pad / cls / mask ids: the {@code <type>_token} text of {@code
 * tokenizer_config.json} (llmc also reads {@code special_tokens_map.json} when tokenizer_config
 * lacks one) looked up among {@code tokenizer.json}'s added tokens (llmc also looks in the
 * vocabulary), then {@code config.json}'s {@code <type>_token_id}; the first found wins, ids
 * outside the vocabulary are dropped with a warning. {@code add_bos_token} / {@code add_eos_token}:
 * tokenizer_config's booleans, else what a TemplateProcessing post-processor adds; for a byte-level
 * tokenizer with neither, {@code add_bos_token = false} is written (Hugging Face adds nothing
 * there, while llama.cpp's own default differs between versions and pre-tokenizers). {@code
 * tokenizer.chat_template}: tokenizer_config's string, else {@code chat_template.jinja}.
 *
 * <p>Token texts must be distinct (llama.cpp asserts it when loading); a folder whose tokens
 * collide is refused, and so is a token or merge holding an unpaired surrogate (a lone JSON escape
 * such as \\udc00), which UTF-8 cannot store: written as '?', it could collide with another.
 */
public final class GgufTokenizer {

  /** llama.cpp's token types ({@code tokenizer.ggml.token_type}). */
  public static final int NORMAL = 1;

  public static final int UNKNOWN = 2;
  public static final int CONTROL = 3;
  public static final int USER_DEFINED = 4;
  public static final int UNUSED = 5;
  public static final int BYTE = 6;

  static final float PAD_SCORE = -10000f;
  static final float ADDED_SCORE = -1000f;

  /**
   * SpecialVocab's types and the GGUF key suffix each is written under (gguf-py's spelling,
   * "seperator" too).
   */
  private static final Map<String, String> SPECIAL_KEYS = new LinkedHashMap<>();

  static {
    SPECIAL_KEYS.put("bos", "bos_token_id");
    SPECIAL_KEYS.put("eos", "eos_token_id");
    SPECIAL_KEYS.put("unk", "unknown_token_id");
    SPECIAL_KEYS.put("sep", "seperator_token_id");
    SPECIAL_KEYS.put("pad", "padding_token_id");
    SPECIAL_KEYS.put("cls", "cls_token_id");
    SPECIAL_KEYS.put("mask", "mask_token_id");
  }

  private static final Pattern BYTE_TOKEN = Pattern.compile("<0x[0-9A-Fa-f]{2}>");
  private static final String SPACE_MARK = "\u2581"; // ▁

  /** Llama 3's split regex (tokenizer.json's Split pattern); llama.cpp's "llama-bpe". */
  static final String LLAMA3_REGEX =
      "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}"
          + "| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

  /** Qwen2's split regex; llama.cpp's "qwen2". */
  static final String QWEN2_REGEX =
      "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}"
          + "| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

  private final String model;
  private final String pre;
  private final List<String> tokens;
  private final float[] scores; // null for gpt2
  private final int[] types;
  private final List<String> merges; // gpt2 only
  private final Map<String, Integer> specialIds; // GGUF key -> id
  private final Map<String, Boolean> flags; // GGUF key -> value
  private final String chatTemplate; // may be null
  private final List<String> warnings;

  private GgufTokenizer(
      Vocab v, Map<String, Integer> specialIds, Map<String, Boolean> flags, String chatTemplate) {
    this.model = v.model;
    this.pre = v.pre;
    this.tokens = List.copyOf(v.tokens);
    this.scores = v.scores == null ? null : v.scores.clone();
    this.types = v.types.clone();
    this.merges = List.copyOf(v.merges);
    this.specialIds = Map.copyOf(specialIds);
    this.flags = Map.copyOf(flags);
    this.chatTemplate = chatTemplate;
    this.warnings = List.copyOf(v.warnings);
  }

  /**
   * From a Hugging Face model folder: tokenizer.model (SentencePiece) if present, else
   * tokenizer.json.
   */
  public static GgufTokenizer from(ModelFolder folder) {
    Sources src = new Sources(folder);
    Optional<Path> spm = folder.file("tokenizer.model");
    Vocab vocab;
    if (spm.isPresent()) {
      vocab = sentencePiece(src, spm.get());
    } else if (src.tokenizerJson != null) {
      vocab = fromTokenizerJson(src);
    } else {
      throw new BadInputException(
          folder.dir()
              + ": no tokenizer.model or tokenizer.json; copy the model's "
              + "tokenizer files into the folder");
    }
    vocab.checkDistinct(src.tokenizerSource());
    Map<String, Integer> ids = new LinkedHashMap<>();
    Map<String, Boolean> flags = new LinkedHashMap<>();
    specialVocab(src, vocab, ids, flags);
    if (vocab.addSpacePrefix != null) {
      flags.put("tokenizer.ggml.add_space_prefix", vocab.addSpacePrefix);
    }
    return new GgufTokenizer(vocab, ids, flags, chatTemplate(src, vocab.warnings));
  }

  /** "llama" (SentencePiece) or "gpt2" (byte-level BPE). */
  public String model() {
    return model;
  }

  /**
   * tokenizer.ggml.pre: "default" for SentencePiece, llama.cpp's pre-tokenizer name for byte-level
   * BPE.
   */
  public String pre() {
    return pre;
  }

  /** Number of tokens written (config.json's vocab_size). */
  public int size() {
    return tokens.size();
  }

  /**
   * Human-readable notes for the report (e.g. "pre-tokenizer unknown, wrote 'default'"); may be
   * empty.
   */
  public List<String> warnings() {
    return warnings;
  }

  /** Puts every tokenizer.ggml.* key (and tokenizer.chat_template when there is one). */
  public void writeTo(GgufWriter writer) {
    writer.putString("tokenizer.ggml.model", model);
    writer.putString("tokenizer.ggml.pre", pre);
    writer.putArray("tokenizer.ggml.tokens", tokens);
    if (scores != null) {
      writer.putArray("tokenizer.ggml.scores", scores);
    }
    writer.putArray(
        "tokenizer.ggml.token_type",
        GgufValueType.I32,
        Arrays.stream(types).asLongStream().toArray());
    if (!merges.isEmpty()) {
      writer.putArray("tokenizer.ggml.merges", merges);
    }
    for (String suffix : SPECIAL_KEYS.values()) {
      Integer id = specialIds.get(suffix);
      if (id != null) {
        writer.putU32("tokenizer.ggml." + suffix, id);
      }
    }
    for (String key :
        List.of(
            "tokenizer.ggml.add_bos_token",
            "tokenizer.ggml.add_eos_token",
            "tokenizer.ggml.add_sep_token",
            "tokenizer.ggml.add_space_prefix")) {
      Boolean value = flags.get(key);
      if (value != null) {
        writer.putBool(key, value);
      }
    }
    if (chatTemplate != null) {
      writer.putString("tokenizer.chat_template", chatTemplate);
    }
  }

  // ---- the vocabulary
  // ----------------------------------------------------------------------------------

  /** What is being built: tokens, scores (null for gpt2), types, merges. */
  private static final class Vocab {
    String model;
    String pre = "default";
    List<String> tokens;
    float[] scores;
    int[] types;
    List<String> merges = List.of();
    Boolean addSpacePrefix;
    final List<String> warnings = new ArrayList<>();

    /** vocabSize slots of [PAD<i>], UNUSED (score -10000 when scored). */
    Vocab(String model, int vocabSize, boolean scored) {
      this.model = model;
      tokens = new ArrayList<>(vocabSize);
      for (int i = 0; i < vocabSize; i++) {
        tokens.add("[PAD" + i + "]");
      }
      types = new int[vocabSize];
      Arrays.fill(types, UNUSED);
      if (scored) {
        scores = new float[vocabSize];
        Arrays.fill(scores, PAD_SCORE);
      }
    }

    void set(int id, String text, float score, int type) {
      tokens.set(id, text);
      if (scores != null) {
        scores[id] = score;
      }
      types[id] = type;
    }

    int size() {
      return tokens.size();
    }

    /**
     * Token texts must be Unicode text (GGUF stores them as UTF-8: an unpaired surrogate, which a
     * JSON escape such as \\ud800 can make, would be written as '?' and could collide) and
     * distinct.
     */
    void checkDistinct(Path source) {
      for (int i = 0; i < tokens.size(); i++) {
        int at = Json.unpairedSurrogate(tokens.get(i));
        if (at >= 0) {
          throw new BadInputException(
              source
                  + ": token "
                  + i
                  + " holds an unpaired surrogate (\\u"
                  + HexFormat.of().toHexDigits(tokens.get(i).charAt(at))
                  + " at character "
                  + at
                  + "), which is not Unicode text and cannot be written to GGUF as UTF-8");
        }
      }
      Map<String, Integer> seen = new HashMap<>();
      for (int i = 0; i < tokens.size(); i++) {
        Integer before = seen.putIfAbsent(tokens.get(i), i);
        if (before != null) {
          throw new BadInputException(
              source
                  + ": tokens "
                  + before
                  + " and "
                  + i
                  + " are both '"
                  + tokens.get(i)
                  + "'; llama.cpp needs distinct token texts, so this tokenizer cannot "
                  + "be exported to GGUF");
        }
      }
    }
  }

  private static Vocab sentencePiece(Sources src, Path file) {
    SentencePieceModel spm = SentencePieceModel.read(file);
    if (spm.modelType() != SentencePieceModel.BPE) {
      throw new BadInputException(
          file
              + ": a SentencePiece "
              + (spm.modelType() == SentencePieceModel.UNIGRAM
                  ? "Unigram"
                  : "type " + spm.modelType())
              + " model; llama.cpp's 'llama' tokenizer merges pieces BPE-style and would tokenize it "
              + "differently, so llmc exports only SentencePiece BPE tokenizers to GGUF");
    }
    int vocabSize = src.vocabSize;
    Vocab v = new Vocab("llama", vocabSize, true);
    List<SentencePieceModel.Piece> pieces = spm.pieces();
    if (pieces.size() > vocabSize) {
      v.warnings.add(
          file.getFileName()
              + " has "
              + pieces.size()
              + " pieces but config.json's vocab_size is "
              + vocabSize
              + "; pieces "
              + vocabSize
              + " and above were left out");
    }
    for (int id = 0; id < Math.min(vocabSize, pieces.size()); id++) {
      SentencePieceModel.Piece p = pieces.get(id);
      v.set(id, p.piece(), p.score(), p.type());
    }
    if (!spm.normalizerName().isEmpty() && !spm.normalizerName().equals("identity")) {
      v.warnings.add(
          file.getFileName()
              + " normalizes text with '"
              + spm.normalizerName()
              + "', which llama.cpp does not do: texts that this normalization changes tokenize differently");
    }
    if (!spm.addDummyPrefix()) {
      v.addSpacePrefix = false;
    }
    src.addedTokensJson()
        .forEach(
            (text, id) -> {
              if (id >= vocabSize) {
                v.warnings.add(
                    "added_tokens.json: token "
                        + id
                        + " ('"
                        + text
                        + "') is outside vocab_size "
                        + vocabSize
                        + " and was left out");
              } else {
                v.set(id, text, ADDED_SCORE, USER_DEFINED);
              }
            });
    applyAddedTokens(src, v);
    return v;
  }

  /**
   * The added tokens of tokenizer_config's added_tokens_decoder (else tokenizer.json's
   * added_tokens) override their slots: CONTROL when special or special-looking, else USER_DEFINED
   * with ▁ written as a space; -1000.
   */
  private static void applyAddedTokens(Sources src, Vocab v) {
    for (AddedToken t : src.addedTokens(true)) {
      if (t.id >= v.size()) {
        v.warnings.add(
            "added token "
                + t.id
                + " ('"
                + t.content
                + "') is outside vocab_size "
                + v.size()
                + " and was left out");
        continue;
      }
      if (v.types[t.id] != UNUSED && !v.tokens.get(t.id).equals(t.content)) {
        v.warnings.add(
            "token "
                + t.id
                + " '"
                + v.tokens.get(t.id)
                + "' replaced by the added token '"
                + t.content
                + "'");
      }
      if (t.special || looksSpecial(t.content)) {
        v.set(t.id, t.content, ADDED_SCORE, CONTROL);
      } else {
        v.set(t.id, t.content.replace(SPACE_MARK, " "), ADDED_SCORE, USER_DEFINED);
      }
    }
  }

  /** gguf-py's does_token_look_special. */
  static boolean looksSpecial(String text) {
    return text.equals("<pad>")
        || text.equals("<mask>")
        || text.equals("<2mass>")
        || text.equals("[@BOS@]")
        || (text.startsWith("<|") && text.endsWith("|>"))
        || (text.startsWith("<\uff5c") && text.endsWith("\uff5c>"))
        || (text.startsWith("<unused") && text.endsWith(">"));
  }

  private static Vocab fromTokenizerJson(Sources src) {
    Path file = src.tokenizerJsonPath;
    JsonNode modelNode = src.tokenizerJson.get("model");
    if (!(modelNode instanceof ObjectNode bpe)) {
      throw new BadInputException(
          file + ": no \"model\" object; is this a Hugging Face tokenizer.json?");
    }
    String type = text(bpe.get("type"));
    if (type == null && bpe.get("merges") != null) {
      type = "BPE";
    }
    if (!"BPE".equals(type)) {
      throw new BadInputException(
          file
              + ": a "
              + (type == null ? "untyped" : type)
              + " tokenizer; llmc "
              + "exports only BPE tokenizers (byte-level, or SentencePiece-style with byte_fallback) to GGUF");
    }
    if (!(bpe.get("vocab") instanceof ObjectNode vocabJson)) {
      throw new BadInputException(file + ": model.vocab is not an object of token -> id");
    }
    List<String[]> merges = readMerges(file, bpe.get("merges"));
    List<JsonNode> preTokenizers = flatten(src.tokenizerJson.get("pre_tokenizer"), "pretokenizers");
    boolean byteLevel =
        preTokenizers.stream().anyMatch(p -> "ByteLevel".equals(text(p.get("type"))));
    boolean byteFallback = bpe.path("byte_fallback").asBoolean(false);
    if (byteLevel) {
      return byteLevel(src, bpe, vocabJson, merges, preTokenizers);
    }
    if (byteFallback) {
      return sentencePieceJson(src, bpe, vocabJson, merges, preTokenizers);
    }
    throw new BadInputException(
        file
            + ": a BPE tokenizer that is neither byte-level (ByteLevel pre-tokenizer) nor "
            + "SentencePiece-style (byte_fallback); llama.cpp has no tokenizer that would reproduce it");
  }

  /** Tokens by id from model.vocab and the added tokens; ids must be below vocab_size. */
  private static String[] tokensById(Sources src, ObjectNode vocabJson) {
    String[] byId = new String[src.vocabSize];
    for (Map.Entry<String, JsonNode> e : vocabJson.properties()) {
      put(src, byId, e.getValue(), e.getKey());
    }
    for (AddedToken t : src.addedTokens(false)) {
      put(src, byId, src.tokenizerJson.numberNode(t.id), t.content);
    }
    return byId;
  }

  private static void put(Sources src, String[] byId, JsonNode idNode, String text) {
    if (!idNode.canConvertToInt() || idNode.intValue() < 0) {
      throw new BadInputException(
          src.tokenizerJsonPath
              + ": token '"
              + text
              + "' has id "
              + idNode
              + ", not a non-negative integer");
    }
    int id = idNode.intValue();
    if (id >= byId.length) {
      throw new BadInputException(
          src.tokenizerJsonPath
              + ": token '"
              + text
              + "' has id "
              + id
              + " but config.json's vocab_size is "
              + byId.length
              + "; the embedding has no row for it");
    }
    byId[id] = text;
  }

  private static Vocab sentencePieceJson(
      Sources src,
      ObjectNode bpe,
      ObjectNode vocabJson,
      List<String[]> merges,
      List<JsonNode> preTokenizers) {
    Path file = src.tokenizerJsonPath;
    Vocab v = new Vocab("llama", src.vocabSize, true);
    String[] byId = tokensById(src, vocabJson);
    Map<String, Integer> firstRank = new HashMap<>();
    for (int rank = 0; rank < merges.size(); rank++) {
      firstRank.putIfAbsent(merges.get(rank)[0] + merges.get(rank)[1], rank);
    }
    String unk = text(bpe.get("unk_token"));
    Set<Integer> added = new HashSet<>();
    src.addedTokens(true).forEach(t -> added.add(t.id));
    int unmerged = 0;
    for (int id = 0; id < byId.length; id++) {
      String t = byId[id];
      if (t == null || added.contains(id)) {
        continue; // added tokens: applyAddedTokens below
      }
      if (BYTE_TOKEN.matcher(t).matches()) {
        v.set(id, t, 0f, BYTE);
      } else if (t.equals(unk)) {
        v.set(id, t, 0f, UNKNOWN);
      } else if (firstRank.containsKey(t)) {
        v.set(id, t, -(float) firstRank.get(t), NORMAL);
      } else {
        v.set(id, t, -(float) (merges.size() + unmerged++), NORMAL);
      }
    }
    applyAddedTokens(src, v);
    // spaces: "▁" prepended by the normalizer (Prepend) or a Metaspace pre-tokenizer, or not at all
    JsonNode normalizer = src.tokenizerJson.get("normalizer");
    boolean prefix = false;
    for (JsonNode n : flatten(normalizer, "normalizers")) {
      String type = text(n.get("type"));
      if ("Prepend".equals(type) && SPACE_MARK.equals(text(n.get("prepend")))) {
        prefix = true;
      } else if (!"Replace".equals(type)
          || !" ".equals(text(n.path("pattern").get("String")))
          || !SPACE_MARK.equals(text(n.get("content")))) {
        v.warnings.add(
            file.getFileName()
                + ": normalizer "
                + type
                + " is not applied by llama.cpp; "
                + "texts it changes tokenize differently");
      }
    }
    for (JsonNode p : preTokenizers) {
      if ("Metaspace".equals(text(p.get("type")))) {
        String scheme = text(p.get("prepend_scheme"));
        prefix =
            scheme != null ? !scheme.equals("never") : p.path("add_prefix_space").asBoolean(true);
      } else {
        v.warnings.add(
            file.getFileName()
                + ": pre-tokenizer "
                + text(p.get("type"))
                + " is not applied "
                + "by llama.cpp's SentencePiece tokenizer; texts it splits tokenize differently");
      }
    }
    if (!prefix) {
      v.addSpacePrefix = false;
    }
    return v;
  }

  private static Vocab byteLevel(
      Sources src,
      ObjectNode bpe,
      ObjectNode vocabJson,
      List<String[]> merges,
      List<JsonNode> preTokenizers) {
    Path file = src.tokenizerJsonPath;
    Vocab v = new Vocab("gpt2", src.vocabSize, false);
    String[] byId = tokensById(src, vocabJson);
    for (int id = 0; id < byId.length; id++) {
      if (byId[id] != null) {
        v.set(id, byId[id], 0f, NORMAL);
      }
    }
    applyAddedTokens(src, v);
    List<String> joined = new ArrayList<>(merges.size());
    for (String[] m : merges) {
      joined.add(m[0].replace(" ", "\u0120") + " " + m[1].replace(" ", "\u0120"));
    }
    v.merges = joined;
    if (merges.isEmpty()) {
      v.warnings.add(
          file.getFileName() + " has no merges; llama.cpp will tokenize into single bytes");
    }
    boolean ignoreMerges = bpe.path("ignore_merges").asBoolean(false);
    v.pre = preTokenizerName(preTokenizers, ignoreMerges);
    if (v.pre.equals("default")) {
      v.warnings.add(
          file.getFileName()
              + ": pre-tokenizer "
              + src.tokenizerJson.get("pre_tokenizer")
              + " is not one llmc recognizes; wrote tokenizer.ggml.pre 'default', llama.cpp's generic split, "
              + "so some texts may tokenize differently from Hugging Face");
    } else if (ignoreMerges && !v.pre.equals("llama-bpe")) {
      v.warnings.add(
          file.getFileName()
              + ": ignore_merges is set, which llama.cpp's '"
              + v.pre
              + "' pre-tokenizer does not do; some words may tokenize differently");
    }
    JsonNode normalizer = src.tokenizerJson.get("normalizer");
    if (normalizer != null && !normalizer.isNull()) {
      v.warnings.add(
          file.getFileName()
              + ": normalizer "
              + text(normalizer.get("type"))
              + " is not applied by llama.cpp; texts it changes tokenize differently");
    }
    return v;
  }

  /** llama.cpp's name for a byte-level pre-tokenizer shape, or "default". */
  static String preTokenizerName(List<JsonNode> p, boolean ignoreMerges) {
    if (p.size() == 1 && isByteLevel(p.get(0), false, true)) {
      return "gpt-2";
    }
    if (p.size() == 2
        && "Digits".equals(text(p.get(0).get("type")))
        && p.get(0).path("individual_digits").asBoolean(false)
        && isByteLevel(p.get(1), false, true)) {
      return "smollm";
    }
    if (p.size() == 2
        && isByteLevel(p.get(1), false, false)
        && "Split".equals(text(p.get(0).get("type")))
        && "Isolated".equals(text(p.get(0).get("behavior")))
        && !p.get(0).path("invert").asBoolean(false)) {
      String regex = text(p.get(0).path("pattern").get("Regex"));
      if (LLAMA3_REGEX.equals(regex) && ignoreMerges) {
        return "llama-bpe";
      }
      if (QWEN2_REGEX.equals(regex) && !ignoreMerges) {
        return "qwen2";
      }
    }
    return "default";
  }

  private static boolean isByteLevel(JsonNode p, boolean addPrefixSpace, boolean useRegex) {
    return "ByteLevel".equals(text(p.get("type")))
        && p.path("add_prefix_space").asBoolean(true) == addPrefixSpace
        && p.path("use_regex").asBoolean(true) == useRegex;
  }

  /** merges as ["a b", ...] or [["a", "b"], ...]. */
  private static List<String[]> readMerges(Path file, JsonNode node) {
    List<String[]> merges = new ArrayList<>();
    if (node == null || node.isNull()) {
      return merges;
    }
    if (!node.isArray()) {
      throw new BadInputException(file + ": model.merges is not an array");
    }
    for (JsonNode m : node) {
      if (m.isTextual()) {
        String s = m.textValue();
        int space = s.indexOf(' ', 1);
        if (space < 0) {
          throw new BadInputException(
              file + ": merge '" + s + "' is not two tokens separated by a space");
        }
        merges.add(new String[] {s.substring(0, space), s.substring(space + 1)});
      } else if (m.isArray() && m.size() == 2 && m.get(0).isTextual() && m.get(1).isTextual()) {
        merges.add(new String[] {m.get(0).textValue(), m.get(1).textValue()});
      } else {
        throw new BadInputException(
            file + ": merge " + m + " is neither \"a b\" nor [\"a\", \"b\"]");
      }
      String[] last = merges.getLast();
      if (Json.unpairedSurrogate(last[0]) >= 0 || Json.unpairedSurrogate(last[1]) >= 0) {
        throw new BadInputException(
            file
                + ": merge "
                + (merges.size() - 1)
                + " holds an unpaired surrogate, which is not Unicode text and cannot be written"
                + " to GGUF as UTF-8");
      }
    }
    return merges;
  }

  /** A Sequence's parts (its {@code listKey} array), a single node as itself, null as nothing. */
  private static List<JsonNode> flatten(JsonNode node, String listKey) {
    List<JsonNode> out = new ArrayList<>();
    if (node == null || node.isNull()) {
      return out;
    }
    if ("Sequence".equals(text(node.get("type"))) && node.get(listKey) != null) {
      for (JsonNode n : node.get(listKey)) {
        out.addAll(flatten(n, listKey));
      }
    } else {
      out.add(node);
    }
    return out;
  }

  private static String text(JsonNode node) {
    return node != null && node.isTextual() ? node.textValue() : null;
  }

  // ---- special tokens
  // ----------------------------------------------------------------------------------

  private static void specialVocab(
      Sources src, Vocab v, Map<String, Integer> ids, Map<String, Boolean> flags) {
    Map<String, String> contents = new LinkedHashMap<>(); // type -> token text
    for (String type : SPECIAL_KEYS.keySet()) {
      String content = tokenText(src.tokenizerConfig.map(c -> c.get(type + "_token")).orElse(null));
      if (content == null) {
        content = tokenText(src.specialTokensMap.map(c -> c.get(type + "_token")).orElse(null));
      }
      if (content != null) {
        contents.put(type, content);
      }
    }
    Map<String, Boolean> add = new LinkedHashMap<>(); // type -> add flag
    postProcessorFlags(src, contents, add, v.warnings);
    src.tokenizerConfig.ifPresent(
        config -> {
          for (String type : List.of("bos", "eos", "sep")) {
            JsonNode flag = config.get("add_" + type + "_token");
            if (flag != null && flag.isBoolean()) {
              add.put(type, flag.booleanValue());
            }
          }
        });
    if (v.model.equals("gpt2") && !add.containsKey("bos")) {
      add.put("bos", false);
    }
    Map<String, Integer> firstIdOf = new HashMap<>();
    for (int i = v.tokens.size() - 1; i >= 0; i--) {
      firstIdOf.put(v.tokens.get(i), i);
    }
    for (Map.Entry<String, String> e : contents.entrySet()) {
      Integer id =
          src.addedTokens(false).stream()
              .filter(t -> t.content.equals(e.getValue()))
              .map(t -> t.id)
              .findFirst()
              .orElse(firstIdOf.get(e.getValue()));
      setSpecial(v, ids, e.getKey(), id, "'" + e.getValue() + "'");
    }
    ObjectNode config = src.config;
    for (String type : SPECIAL_KEYS.keySet()) {
      JsonNode id = config.get(type + "_token_id");
      if (id == null && config.get("text_config") instanceof ObjectNode text) {
        id = text.get(type + "_token_id");
      }
      if (id != null && id.isIntegralNumber() && id.canConvertToInt()) {
        setSpecial(v, ids, type, id.intValue(), "config.json's " + type + "_token_id");
      }
    }
    add.forEach((type, value) -> flags.put("tokenizer.ggml.add_" + type + "_token", value));
  }

  private static void setSpecial(
      Vocab v, Map<String, Integer> ids, String type, Integer id, String what) {
    String key = SPECIAL_KEYS.get(type);
    if (id == null || ids.containsKey(key)) {
      return;
    }
    if (id < 0 || id >= v.size()) {
      v.warnings.add(
          type
              + " token "
              + what
              + " has id "
              + id
              + ", outside the "
              + v.size()
              + " tokens; not written");
      return;
    }
    ids.put(key, id);
  }

  /**
   * SpecialVocab's reading of a TemplateProcessing / RobertaProcessing post-processor (the simple
   * cases).
   */
  private static void postProcessorFlags(
      Sources src, Map<String, String> contents, Map<String, Boolean> add, List<String> warnings) {
    if (src.tokenizerJson == null) {
      return;
    }
    JsonNode post = src.tokenizerJson.get("post_processor");
    if (post == null || post.isNull()) {
      return;
    }
    List<JsonNode> processors =
        post.get("processors") != null
            ? List.copyOf(iterable(post.get("processors")))
            : List.of(post);
    boolean haveConfig = src.tokenizerConfig.isPresent();
    for (JsonNode p : processors) {
      String type = text(p.get("type"));
      if ("RobertaProcessing".equals(type)) {
        add.put("bos", true);
        add.put("eos", true);
        add.put("sep", true);
      } else if ("TemplateProcessing".equals(type)) {
        JsonNode single = p.path("single");
        if (!single.isMissingNode() && !single.isNull() && !single.isArray()) {
          throw new BadInputException(
              src.tokenizerJsonPath
                  + ": the TemplateProcessing post-processor's \"single\" is "
                  + single.getNodeType().toString().toLowerCase(Locale.ROOT)
                  + ", not an array of template pieces");
        }
        if (single.size() <= 1) {
          continue;
        }
        String first = text(single.get(0).path("SpecialToken").get("id"));
        if (first != null) {
          if (!haveConfig) {
            contents.putIfAbsent("bos", first);
          }
          boolean isBos = first.equals(contents.get("bos")) || first.equals(contents.get("cls"));
          add.put("bos", isBos);
          if (!isBos) {
            warnings.add(
                "tokenizer.json's post-processor starts with "
                    + first
                    + ", which is not the bos token; llama.cpp will not add it");
          }
        }
        String last = text(single.get(single.size() - 1).path("SpecialToken").get("id"));
        if (last != null) {
          if (!haveConfig) {
            contents.putIfAbsent("eos", last);
          }
          boolean isEos = last.equals(contents.get("eos"));
          add.put("eos", isEos);
          if (!isEos) {
            warnings.add(
                "tokenizer.json's post-processor ends with "
                    + last
                    + ", which is not the eos token; llama.cpp will not add it");
          }
        }
      }
    }
  }

  private static List<JsonNode> iterable(JsonNode array) {
    List<JsonNode> out = new ArrayList<>();
    array.forEach(out::add);
    return out;
  }

  /** "text" or {"content": "text", ...}. */
  private static String tokenText(JsonNode node) {
    if (node == null) {
      return null;
    }
    if (node.isTextual()) {
      return node.textValue();
    }
    return text(node.get("content"));
  }

  private static String chatTemplate(Sources src, List<String> warnings) {
    JsonNode template = src.tokenizerConfig.map(c -> c.get("chat_template")).orElse(null);
    if (template != null && template.isTextual()) {
      return template.textValue();
    }
    if (template != null && template.isArray()) {
      for (JsonNode named : template) {
        if ("default".equals(text(named.get("name")))
            && named.get("template") != null
            && named.get("template").isTextual()) {
          warnings.add(
              "tokenizer_config.json has several chat templates; only 'default' was written");
          return named.get("template").textValue();
        }
      }
      warnings.add("tokenizer_config.json's chat templates have no 'default'; none was written");
      return null;
    }
    Path jinja = src.folder.file("chat_template.jinja").orElse(null);
    if (jinja != null) {
      try {
        return Files.readString(jinja);
      } catch (IOException e) {
        throw new BadInputException(jinja + ": cannot read: " + e.getMessage(), e);
      }
    }
    return null;
  }

  // ---- the folder's files
  // ------------------------------------------------------------------------------

  private record AddedToken(int id, String content, boolean special) {}

  /** The tokenizer files of a folder, parsed once. */
  private static final class Sources {
    final ModelFolder folder;
    final Path dir;
    final int vocabSize;
    final ObjectNode config;
    final Path tokenizerJsonPath;
    final ObjectNode tokenizerJson; // null when absent
    final Optional<ObjectNode> tokenizerConfig;
    final Optional<ObjectNode> specialTokensMap;

    Sources(ModelFolder folder) {
      this.folder = folder;
      dir = folder.dir();
      vocabSize = folder.config().vocabSize();
      config = folder.config().json();
      tokenizerJsonPath = dir.resolve("tokenizer.json");
      tokenizerJson = folder.tokenizerJson().map(Sources::readObject).orElse(null);
      tokenizerConfig = folder.tokenizerConfig();
      specialTokensMap = folder.file("special_tokens_map.json").map(Sources::readObject);
    }

    /** The file named in errors about the vocabulary. */
    Path tokenizerSource() {
      return folder.file("tokenizer.model").orElse(tokenizerJsonPath);
    }

    /** added_tokens.json: text -> id. */
    Map<String, Integer> addedTokensJson() {
      Path file = folder.file("added_tokens.json").orElse(null);
      Map<String, Integer> out = new LinkedHashMap<>();
      if (file != null) {
        for (Map.Entry<String, JsonNode> e : readObject(file).properties()) {
          if (!e.getValue().canConvertToInt() || e.getValue().intValue() < 0) {
            throw new BadInputException(
                file
                    + ": token '"
                    + e.getKey()
                    + "' has id "
                    + e.getValue()
                    + ", not a non-negative integer");
          }
          out.put(e.getKey(), e.getValue().intValue());
        }
      }
      return out;
    }

    /**
     * Added tokens in id order: with {@code preferConfig}, tokenizer_config's added_tokens_decoder
     * when it has one (what the converter reads); else tokenizer.json's added_tokens.
     */
    List<AddedToken> addedTokens(boolean preferConfig) {
      List<AddedToken> out = new ArrayList<>();
      JsonNode decoder = tokenizerConfig.map(c -> c.get("added_tokens_decoder")).orElse(null);
      if (preferConfig && decoder instanceof ObjectNode byId && !byId.isEmpty()) {
        Path file = dir.resolve("tokenizer_config.json");
        for (Map.Entry<String, JsonNode> e : byId.properties()) {
          int id;
          try {
            id = Integer.parseInt(e.getKey());
          } catch (NumberFormatException ex) {
            throw new BadInputException(
                file + ": added_tokens_decoder key '" + e.getKey() + "' is not a token id");
          }
          out.add(added(file, id, e.getValue()));
        }
      } else if (tokenizerJson != null && tokenizerJson.get("added_tokens") != null) {
        for (JsonNode t : tokenizerJson.get("added_tokens")) {
          JsonNode id = t.get("id");
          if (id == null || !id.canConvertToInt() || id.intValue() < 0) {
            throw new BadInputException(
                tokenizerJsonPath + ": added token " + t + " has no valid id");
          }
          out.add(added(tokenizerJsonPath, id.intValue(), t));
        }
      }
      out.sort((a, b) -> Integer.compare(a.id, b.id));
      return out;
    }

    private static AddedToken added(Path file, int id, JsonNode t) {
      String content = text(t.get("content"));
      if (id < 0 || content == null) {
        throw new BadInputException(file + ": added token " + id + " has no text (\"content\")");
      }
      return new AddedToken(id, content, t.path("special").asBoolean(false));
    }

    static ObjectNode readObject(Path file) {
      try {
        if (Json.mapper().readTree(Files.readString(file)) instanceof ObjectNode object) {
          return object;
        }
        throw new BadInputException(file + ": not a JSON object");
      } catch (JsonProcessingException e) {
        String what = e.getOriginalMessage();
        throw new BadInputException(
            file
                + ": not valid JSON: "
                + (what.length() > 200 ? what.substring(0, 200) + "..." : what)
                + (e.getLocation() == null
                    ? ""
                    : " (line "
                        + e.getLocation().getLineNr()
                        + ", column "
                        + e.getLocation().getColumnNr()
                        + ")"),
            e);
      } catch (IOException e) {
        throw new BadInputException(file + ": cannot read: " + e.getMessage(), e);
      }
    }
  }
}
