package llmc.model;

import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import java.io.IOException;
import java.nio.file.Path;
import llmc.formats.BadInputException;
import llmc.formats.ModelFolder;

/**
 * The model's own {@code tokenizer.json} through Hugging Face tokenizers (DJL's binding). Special
 * tokens are never added by the tokenizer's template: BOS is put in front of each document here,
 * when the tokenizer config asks for it (PROTOCOLS.md), so that the rule is the same for every
 * model.
 */
public final class Tokenizer implements AutoCloseable {
  private final HuggingFaceTokenizer tokenizer;
  private final int bosId;
  private final int eosId;
  private final boolean addBos;
  private final Path file;
  private final int vocab;

  private Tokenizer(
      HuggingFaceTokenizer tokenizer, int bosId, int eosId, boolean addBos, Path file, int vocab) {
    this.tokenizer = tokenizer;
    this.bosId = bosId;
    this.eosId = eosId;
    this.addBos = addBos;
    this.file = file;
    this.vocab = vocab;
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
        tokenizer, bos == null ? -1 : bos, eos == null ? -1 : eos, addBos, json, vocab);
  }

  /** One document: {@code [BOS] + tokens(text)}, no EOS. */
  public int[] encodeDocument(String text) {
    long[] ids = text.isEmpty() ? new long[0] : tokenizer.encode(text, false, false).getIds();
    int offset = addBos ? 1 : 0;
    int[] out = new int[ids.length + offset];
    if (addBos) {
      out[0] = bosId;
    }
    for (int i = 0; i < ids.length; i++) {
      if (ids[i] < 0 || ids[i] >= vocab) {
        throw new BadInputException(
            file
                + ": the tokenizer gives token id "
                + ids[i]
                + ", outside the model's vocabulary [0, "
                + vocab
                + ") (config.json vocab_size); this tokenizer does not belong to the model");
      }
      out[i + offset] = (int) ids[i];
    }
    return out;
  }

  public String decode(int[] ids) {
    long[] longs = new long[ids.length];
    for (int i = 0; i < ids.length; i++) {
      longs[i] = ids[i];
    }
    return tokenizer.decode(longs, true);
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
