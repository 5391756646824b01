package llmc.formats.gguf;

import com.code_intelligence.jazzer.junit.DictionaryEntries;
import com.code_intelligence.jazzer.junit.FuzzTest;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import llmc.formats.FuzzFiles;
import llmc.formats.ModelFolder;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.condition.EnabledIfSystemProperty;

/**
 * Fuzzes tokenizer.model: SentencePieceModel.read of any bytes, every piece, then for a BPE model
 * the GGUF tokenizer built from it (in a folder with stories260K's config.json, vocab_size 512),
 * written to a GGUF file and read back. Without JAZZER_FUZZ the method runs its corpus under {@code
 * src/test/resources/llmc/formats/gguf/SentencePieceModelFuzzTestInputs/read}; scripts/fuzz.sh
 * fuzzes it.
 */
@Timeout(10)
class SentencePieceModelFuzzTest {

  /** stories260K's config.json, cut to what ModelFolder and GgufTokenizer read. */
  private static final String CONFIG =
      """
      {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 64,
       "intermediate_size": 172, "num_hidden_layers": 5, "num_attention_heads": 8,
       "num_key_value_heads": 4, "head_dim": 8, "vocab_size": 512, "max_position_embeddings": 512,
       "rms_norm_eps": 1e-05, "rope_theta": 10000.0, "bos_token_id": 1, "eos_token_id": 2}
      """;

  // Protobuf field keys (field << 3 | wire type) of ModelProto, SentencePiece, TrainerSpec and
  // NormalizerSpec, the pieces' markers, and normalizer names. Not "\n" (field 1,
  // length-delimited):
  // Jazzer 0.30.0 writes a line break into its dictionary file unescaped, and libFuzzer then
  // refuses the whole dictionary.
  @DictionaryEntries({
    "\u0012",
    "\u001a",
    "\u0015",
    "\u0018",
    "\u0018\u0001",
    "\u0018\u0002",
    "\u0018\u0003",
    "\u0018\u0006",
    " ",
    "\u0001",
    "\u0002",
    "\u0003",
    "\u0006",
    "\u2581",
    "<unk>",
    "<s>",
    "</s>",
    "<0x0A>",
    "identity",
    "nmt_nfkc"
  })
  @FuzzTest(maxDuration = "60s")
  void read(byte[] data) {
    Path dir = FuzzFiles.folder("sentencepiece");
    GgufTokenizerFuzzTest.writeConfig(dir, CONFIG);
    Path file = FuzzFiles.write("sentencepiece", "tokenizer.model", data);
    FuzzFiles.expectBadInputOrSuccess(
        file,
        () -> {
          SentencePieceModel model = SentencePieceModel.read(file);
          for (SentencePieceModel.Piece p : model.pieces()) {
            p.piece().length();
            p.score();
            p.type();
          }
          model.normalizerName();
          model.addDummyPrefix();
          model.removeExtraWhitespaces();
          if (model.modelType() == SentencePieceModel.BPE) {
            GgufTokenizer tokenizer;
            try (ModelFolder folder = ModelFolder.open(dir)) {
              tokenizer = GgufTokenizer.from(folder);
            }
            tokenizer.warnings();
            GgufTokenizerFuzzTest.writeAndReadBack(tokenizer, "sentencepiece-gguf");
          }
        });
  }

  @Test
  void seedsParse() {
    FuzzFiles.assertSeedsParse(getClass(), "read", this::read);
  }

  /** Writes the corpus's seeds (run once by hand: -Dllmc.fuzz.writeSeeds=true). */
  @Test
  @EnabledIfSystemProperty(named = "llmc.fuzz.writeSeeds", matches = "true")
  void writeSeeds() throws IOException {
    Path stories =
        Path.of(
            System.getProperty("llmc.root", ".."), "samples/models/stories260K/tokenizer.model");
    FuzzFiles.seed(getClass(), "read", "stories260K", Files.readAllBytes(stories));
    // A BPE model with every piece type, a normalizer name, both flags off and fields llmc skips
    // (TrainerSpec.vocab_size, a fixed64, SentencePiece's unknown field 9).
    Proto bpe = new Proto();
    bpe.message(1, piece("<unk>", 0, 2));
    bpe.message(1, piece("<s>", 0, 3));
    bpe.message(1, piece("</s>", 0, 3));
    bpe.message(1, piece("<0x0A>", 0, 6));
    bpe.message(1, piece("<0xC3>", 0, 6));
    bpe.message(1, piece("<|user|>", 0, 4));
    bpe.message(1, piece("<unused0>", 0, 5));
    bpe.message(1, piece("\u2581t", -0f, 1).varint(9, 1));
    bpe.message(1, piece("he", -1, 1));
    bpe.message(1, piece("\u2581the", -2, 1));
    bpe.message(1, piece("\u2581", -3, 0));
    bpe.message(1, piece("t", -4, 0));
    bpe.message(1, piece("h", -5, 0));
    bpe.message(1, piece("e", -6, 0));
    bpe.message(1, piece("é", -7, 0));
    bpe.message(2, new Proto().varint(3, 2).varint(4, 15).fixed64(20, 7));
    bpe.message(3, new Proto().string(1, "identity").varint(3, 0).varint(4, 0));
    FuzzFiles.seed(getClass(), "read", "bpe-by-hand", bpe.bytes());
    // A Unigram model (no TrainerSpec: the default), with the default normalizer.
    Proto unigram = new Proto();
    unigram.message(1, piece("<unk>", 0, 2));
    unigram.message(1, piece("\u2581a", -1.5f, 0));
    unigram.message(1, piece("b", -2.25f, 0));
    unigram.message(3, new Proto().string(1, "nmt_nfkc"));
    FuzzFiles.seed(getClass(), "read", "unigram-by-hand", unigram.bytes());
  }

  /** SentencePiece { piece, score, type } (type 0: not written, NORMAL by default). */
  private static Proto piece(String text, float score, int type) {
    Proto p = new Proto().string(1, text).fixed32(2, Float.floatToIntBits(score));
    return type == 0 ? p : p.varint(3, type);
  }

  /** A protobuf message in the wire format. */
  private static final class Proto {
    private final ByteArrayOutputStream out = new ByteArrayOutputStream();

    Proto varint(int field, long value) {
      raw(field << 3);
      raw(value);
      return this;
    }

    Proto fixed32(int field, int value) {
      raw(field << 3 | 5);
      for (int i = 0; i < 4; i++) {
        out.write(value >>> (8 * i));
      }
      return this;
    }

    Proto fixed64(int field, long value) {
      raw(field << 3 | 1);
      for (int i = 0; i < 8; i++) {
        out.write((int) (value >>> (8 * i)));
      }
      return this;
    }

    Proto string(int field, String value) {
      return bytes(field, value.getBytes(StandardCharsets.UTF_8));
    }

    Proto message(int field, Proto value) {
      return bytes(field, value.bytes());
    }

    private Proto bytes(int field, byte[] value) {
      raw(field << 3 | 2);
      raw(value.length);
      out.writeBytes(value);
      return this;
    }

    private void raw(long v) {
      while ((v & ~0x7fL) != 0) {
        out.write((int) (v & 0x7f) | 0x80);
        v >>>= 7;
      }
      out.write((int) v);
    }

    byte[] bytes() {
      return out.toByteArray();
    }
  }
}
