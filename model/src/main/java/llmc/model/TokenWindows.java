package llmc.model;

import java.util.ArrayList;
import java.util.List;

/**
 * Protocol P1 / C1 token windows: documents tokenized, concatenated, cut into windows of L tokens.
 */
public final class TokenWindows {
  private static final int REPORT_EVERY = 256;

  private TokenWindows() {}

  /** The concatenated token stream of all documents (BOS per document as the tokenizer says). */
  public static int[] stream(Tokenizer tokenizer, List<String> documents) {
    return stream(tokenizer, documents, done -> {});
  }

  /**
   * As {@link #stream(Tokenizer, List)}, telling {@code tokenized} how many documents are done
   * every {@value #REPORT_EVERY} documents and at the end.
   */
  public static int[] stream(
      Tokenizer tokenizer, List<String> documents, java.util.function.IntConsumer tokenized) {
    List<int[]> parts = new ArrayList<>(documents.size());
    long total = 0;
    for (String document : documents) {
      int[] ids = tokenizer.encodeDocument(document);
      parts.add(ids);
      total += ids.length;
      if (parts.size() % REPORT_EVERY == 0 || parts.size() == documents.size()) {
        tokenized.accept(parts.size());
      }
    }
    if (total > Integer.MAX_VALUE - 8) {
      throw new llmc.formats.BadInputException(
          "the documents hold "
              + total
              + " tokens, more than one token stream can (2^31 - 9): use a smaller data file");
    }
    int[] stream = new int[Math.toIntExact(total)];
    int at = 0;
    for (int[] part : parts) {
      System.arraycopy(part, 0, stream, at, part.length);
      at += part.length;
    }
    return stream;
  }

  /**
   * Non-overlapping windows of {@code seqLen} from the start, the last partial one dropped; at most
   * {@code max} (≤ 0: all).
   */
  public static List<int[]> first(int[] stream, int seqLen, int max) {
    int available = stream.length / seqLen;
    int count = max > 0 ? Math.min(max, available) : available;
    List<int[]> windows = new ArrayList<>(count);
    for (int w = 0; w < count; w++) {
      int[] window = new int[seqLen];
      System.arraycopy(stream, w * seqLen, window, 0, seqLen);
      windows.add(window);
    }
    return windows;
  }
}
