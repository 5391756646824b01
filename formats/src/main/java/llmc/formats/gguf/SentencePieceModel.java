package llmc.formats.gguf;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import llmc.formats.BadInputException;

/**
 * The parts of a SentencePiece {@code tokenizer.model} (a serialized {@code
 * sentencepiece.ModelProto}) that a GGUF tokenizer needs, read by hand from the protobuf wire
 * format:
 *
 * <pre>
 * ModelProto      1: repeated SentencePiece pieces   2: TrainerSpec   3: NormalizerSpec
 * SentencePiece   1: string piece   2: float score   3: Type (NORMAL=1 default, UNKNOWN=2, CONTROL=3,
 *                 USER_DEFINED=4, UNUSED=5, BYTE=6)
 * TrainerSpec     3: ModelType model_type (UNIGRAM=1 default, BPE=2, WORD=3, CHAR=4)
 * NormalizerSpec  1: string name   3: bool add_dummy_prefix (default true)
 *                 4: bool remove_extra_whitespaces (default true)
 * </pre>
 *
 * Every other field is skipped. The piece types are numbered as GGUF's {@code
 * tokenizer.ggml.token_type}.
 *
 * @param pieces in id order
 * @param modelType TrainerSpec.model_type; {@link #UNIGRAM} when the file does not say
 * @param normalizerName NormalizerSpec.name, "" when absent
 */
public record SentencePieceModel(
    List<Piece> pieces,
    int modelType,
    String normalizerName,
    boolean addDummyPrefix,
    boolean removeExtraWhitespaces) {

  public static final int UNIGRAM = 1;
  public static final int BPE = 2;

  /** One vocabulary entry; {@code type} as SentencePiece.Type (1 NORMAL to 6 BYTE). */
  public record Piece(String piece, float score, int type) {}

  public SentencePieceModel {
    pieces = List.copyOf(pieces);
  }

  public static SentencePieceModel read(Path file) {
    byte[] bytes;
    try {
      bytes = Files.readAllBytes(file);
    } catch (IOException e) {
      throw new BadInputException(file + ": cannot read: " + e.getMessage(), e);
    }
    try {
      return parse(bytes);
    } catch (MalformedException e) {
      throw new BadInputException(
          file
              + ": not a SentencePiece model ("
              + e.getMessage()
              + "); replace it with the model's original tokenizer.model or remove it to use tokenizer.json",
          e);
    }
  }

  static SentencePieceModel parse(byte[] bytes) throws MalformedException {
    List<Piece> pieces = new ArrayList<>();
    int modelType = UNIGRAM;
    String normalizer = "";
    boolean dummyPrefix = true;
    boolean removeWhitespaces = true;
    Reader top = new Reader(bytes, 0, bytes.length);
    while (top.more()) {
      int key = top.key();
      switch (key) {
        case 1 << 3 | 2 -> pieces.add(piece(top.message(), pieces.size()));
        case 2 << 3 | 2 -> {
          Reader trainer = top.message();
          while (trainer.more()) {
            int k = trainer.key();
            if (k == (3 << 3)) {
              modelType = (int) trainer.varint();
            } else {
              trainer.skip(k);
            }
          }
        }
        case 3 << 3 | 2 -> {
          Reader spec = top.message();
          while (spec.more()) {
            int k = spec.key();
            switch (k) {
              case 1 << 3 | 2 -> normalizer = spec.string();
              case 3 << 3 -> dummyPrefix = spec.varint() != 0;
              case 4 << 3 -> removeWhitespaces = spec.varint() != 0;
              default -> spec.skip(k);
            }
          }
        }
        default -> top.skip(key);
      }
    }
    if (pieces.isEmpty()) {
      throw new MalformedException("no pieces");
    }
    return new SentencePieceModel(pieces, modelType, normalizer, dummyPrefix, removeWhitespaces);
  }

  private static Piece piece(Reader r, int index) throws MalformedException {
    String text = null;
    float score = 0;
    int type = 1;
    while (r.more()) {
      int k = r.key();
      switch (k) {
        case 1 << 3 | 2 -> text = r.string();
        case 2 << 3 | 5 -> score = Float.intBitsToFloat(r.fixed32());
        case 3 << 3 -> type = (int) r.varint();
        default -> r.skip(k);
      }
    }
    if (text == null) {
      throw new MalformedException("piece " + index + " has no text");
    }
    if (type < 1 || type > 6) {
      throw new MalformedException("piece " + index + " has unknown type " + type);
    }
    return new Piece(text, score, type);
  }

  /** A truncated or inconsistent protobuf. */
  static final class MalformedException extends Exception {
    MalformedException(String message) {
      super(message);
    }
  }

  /** Protobuf wire format over bytes[from, to). */
  private static final class Reader {
    private final byte[] bytes;
    private int pos;
    private final int end;

    Reader(byte[] bytes, int from, int to) {
      this.bytes = bytes;
      this.pos = from;
      this.end = to;
    }

    boolean more() {
      return pos < end;
    }

    int key() throws MalformedException {
      long key = varint();
      if (key <= 0 || key > Integer.MAX_VALUE) {
        throw new MalformedException("bad field key at byte " + pos);
      }
      return (int) key;
    }

    long varint() throws MalformedException {
      long value = 0;
      for (int shift = 0; shift < 64; shift += 7) {
        if (pos >= end) {
          throw new MalformedException("truncated varint");
        }
        byte b = bytes[pos++];
        value |= (long) (b & 0x7f) << shift;
        if (b >= 0) {
          return value;
        }
      }
      throw new MalformedException("varint longer than 10 bytes");
    }

    int fixed32() throws MalformedException {
      need(4);
      int v = ByteBuffer.wrap(bytes, pos, 4).order(ByteOrder.LITTLE_ENDIAN).getInt();
      pos += 4;
      return v;
    }

    Reader message() throws MalformedException {
      int length = length();
      Reader inner = new Reader(bytes, pos, pos + length);
      pos += length;
      return inner;
    }

    String string() throws MalformedException {
      int length = length();
      try {
        String s =
            StandardCharsets.UTF_8
                .newDecoder()
                .onMalformedInput(CodingErrorAction.REPORT)
                .onUnmappableCharacter(CodingErrorAction.REPORT)
                .decode(ByteBuffer.wrap(bytes, pos, length))
                .toString();
        pos += length;
        return s;
      } catch (CharacterCodingException e) {
        throw new MalformedException("a string at byte " + pos + " is not UTF-8");
      }
    }

    private int length() throws MalformedException {
      long length = varint();
      if (length < 0 || length > end - pos) {
        throw new MalformedException("length " + length + " at byte " + pos + " runs past the end");
      }
      return (int) length;
    }

    private void need(int n) throws MalformedException {
      if (end - pos < n) {
        throw new MalformedException("truncated at byte " + pos);
      }
    }

    void skip(int key) throws MalformedException {
      switch (key & 7) {
        case 0 -> varint();
        case 1 -> {
          need(8);
          pos += 8;
        }
        case 2 -> pos += length();
        case 5 -> {
          need(4);
          pos += 4;
        }
        default ->
            throw new MalformedException("unsupported wire type " + (key & 7) + " at byte " + pos);
      }
    }
  }
}
