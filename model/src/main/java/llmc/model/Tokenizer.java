package llmc.model;

import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonLocation;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.JsonToken;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HexFormat;
import llmc.formats.BadInputException;
import llmc.formats.Json;
import llmc.formats.ModelFolder;

/**
 * The model's own {@code tokenizer.json} through Hugging Face tokenizers (DJL's binding). Special
 * tokens are never added by the tokenizer's template: BOS is put in front of each document here,
 * when the tokenizer config asks for it (PROTOCOLS.md), so that the rule is the same for every
 * model.
 */
public final class Tokenizer implements AutoCloseable {
  /** A plain parser (duplicate keys allowed, as Hugging Face does), for {@link #checkJson}. */
  private static final JsonFactory JSON = new JsonFactory();

  private final HuggingFaceTokenizer tokenizer;
  private final Path json;
  private final int vocabSize;
  private final int bosId;
  private final int eosId;
  private final boolean addBos;

  private Tokenizer(
      HuggingFaceTokenizer tokenizer,
      Path json,
      int vocabSize,
      int bosId,
      int eosId,
      boolean addBos) {
    this.tokenizer = tokenizer;
    this.json = json;
    this.vocabSize = vocabSize;
    this.bosId = bosId;
    this.eosId = eosId;
    this.addBos = addBos;
  }

  public static Tokenizer open(ModelFolder folder) {
    Path json =
        folder
            .tokenizerJson()
            .orElseThrow(
                () ->
                    new BadInputException(
                        folder.dir()
                            + ": no tokenizer.json; llmc reads the Hugging Face tokenizers format"));
    checkJson(json);
    Engines.configure(0);
    HuggingFaceTokenizer tokenizer;
    try {
      tokenizer =
          HuggingFaceTokenizer.builder()
              .optTokenizerPath(json)
              .optAddSpecialTokens(false)
              .optTruncation(false)
              .optPadding(false)
              .build();
    } catch (IOException | RuntimeException e) {
      throw new BadInputException(json + ": cannot load the tokenizer (" + e.getMessage() + ")", e);
    }
    Integer bos = folder.config().bosTokenId();
    Integer eos = folder.config().eosTokenId();
    boolean addBos = folder.addBosToken() && bos != null;
    int vocab = folder.config().vocabSize();
    for (Integer special : new Integer[] {bos, eos}) {
      if (special != null && (special < 0 || special >= vocab)) {
        tokenizer.close();
        throw new BadInputException(
            folder.dir().resolve("config.json")
                + ": token id "
                + special
                + " (bos_token_id or eos_token_id) is outside the vocabulary [0, "
                + vocab
                + ") of vocab_size");
      }
    }
    return new Tokenizer(
        tokenizer, json, vocab, bos == null ? -1 : bos, eos == null ? -1 : eos, addBos);
  }

  /** The deepest nesting of arrays and objects that Hugging Face tokenizers' parser accepts. */
  static final int MAX_JSON_DEPTH = 127;

  /**
   * Refuses a tokenizer.json that Hugging Face tokenizers' JSON parser (serde_json) would refuse:
   * its syntax, a string holding an unpaired surrogate (a lone {@code \\ud800} escape), a number
   * beyond the double range ({@code 1e400}), arrays and objects nested deeper than {@value
   * #MAX_JSON_DEPTH}. The native library (tokenizers 0.21 in DJL 0.36) reports these as errors,
   * except inside the {@code "decoder"} value, where its deserializer unwraps the parse result and
   * the panic aborts the whole JVM; so the text it is given is checked here first. It reads the
   * file as UTF-8 with malformed bytes replaced, as DJL does.
   */
  static void checkJson(Path json) {
    String text;
    try {
      text = new String(Files.readAllBytes(json), StandardCharsets.UTF_8);
    } catch (IOException e) {
      throw new BadInputException(json + ": cannot read: " + e.getMessage(), e);
    }
    try (JsonParser p = JSON.createParser(text)) {
      int depth = 0;
      for (JsonToken t = p.nextToken(); t != null; t = p.nextToken()) {
        switch (t) {
          case START_OBJECT, START_ARRAY -> {
            if (++depth > MAX_JSON_DEPTH) {
              throw refused(
                  json, p, "arrays and objects nested more than " + MAX_JSON_DEPTH + " deep");
            }
          }
          case END_OBJECT, END_ARRAY -> depth--;
          case FIELD_NAME, VALUE_STRING -> {
            String s = p.getText();
            int at = Json.unpairedSurrogate(s);
            if (at >= 0) {
              throw refused(
                  json,
                  p,
                  "a string holds an unpaired surrogate (\\u"
                      + HexFormat.of().toHexDigits(s.charAt(at))
                      + "), which is not Unicode text");
            }
          }
          case VALUE_NUMBER_INT, VALUE_NUMBER_FLOAT -> {
            if (!Double.isFinite(p.getDoubleValue())) {
              throw refused(json, p, "the number " + p.getText() + " is out of range");
            }
          }
          default -> {}
        }
      }
    } catch (JsonProcessingException e) {
      throw new BadInputException(json + ": not valid JSON: " + Json.describe(e), e);
    } catch (IOException e) {
      throw new BadInputException(json + ": cannot read: " + e.getMessage(), e);
    }
  }

  private static BadInputException refused(Path json, JsonParser p, String what) {
    JsonLocation at = p.currentTokenLocation();
    return new BadInputException(
        json
            + ": "
            + what
            + " (line "
            + at.getLineNr()
            + ", column "
            + at.getColumnNr()
            + "); Hugging Face tokenizers cannot read it");
  }

  /**
   * One document: {@code [BOS] + tokens(text)}, no EOS. A tokenizer that fails on the text, or
   * gives an id outside config.json's vocab_size (the model has no embedding row for it), is
   * refused naming its tokenizer.json.
   */
  public int[] encodeDocument(String text) {
    long[] ids;
    try {
      ids = text.isEmpty() ? new long[0] : tokenizer.encode(text, false, false).getIds();
    } catch (RuntimeException e) {
      throw new BadInputException(json + ": cannot tokenize a text (" + e.getMessage() + ")", e);
    }
    int offset = addBos ? 1 : 0;
    int[] out = new int[ids.length + offset];
    if (addBos) {
      out[0] = bosId;
    }
    for (int i = 0; i < ids.length; i++) {
      if (ids[i] < 0 || ids[i] >= vocabSize) {
        throw new BadInputException(
            json
                + ": the tokenizer gives token id "
                + ids[i]
                + ", outside config.json's vocab_size "
                + vocabSize
                + "; the tokenizer does not belong to this model");
      }
      out[i + offset] = (int) ids[i];
    }
    return out;
  }

  /** The text of {@code ids}, special tokens left out; a tokenizer that fails is refused. */
  public String decode(int[] ids) {
    long[] longs = new long[ids.length];
    for (int i = 0; i < ids.length; i++) {
      longs[i] = ids[i];
    }
    try {
      return tokenizer.decode(longs, true);
    } catch (RuntimeException e) {
      throw new BadInputException(json + ": cannot decode token ids (" + e.getMessage() + ")", e);
    }
  }

  public int bosId() {
    return bosId;
  }

  public int eosId() {
    return eosId;
  }

  public boolean addsBos() {
    return addBos;
  }

  @Override
  public void close() {
    tokenizer.close();
  }
}
