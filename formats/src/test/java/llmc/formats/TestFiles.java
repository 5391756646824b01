package llmc.formats;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import org.junit.jupiter.api.function.Executable;

/** Hand-made safetensors files and assertions on user-facing errors. */
public final class TestFiles {

  private TestFiles() {}

  /** u64 LE header length | header | dataBytes zero bytes. */
  static Path safetensors(Path file, String header, int dataBytes) throws IOException {
    return raw(file, header.getBytes(StandardCharsets.UTF_8).length, header, dataBytes);
  }

  /** Like safetensors() but with any declared header length. */
  static Path raw(Path file, long declaredHeaderLength, String header, int dataBytes)
      throws IOException {
    byte[] json = header.getBytes(StandardCharsets.UTF_8);
    ByteBuffer bytes =
        ByteBuffer.allocate(8 + json.length + dataBytes).order(ByteOrder.LITTLE_ENDIAN);
    bytes.putLong(declaredHeaderLength).put(json);
    Files.write(file, bytes.array());
    return file;
  }

  /** The call fails with a one-line BadInputException containing every expected fragment. */
  public static BadInputException assertBadInput(Executable call, String... fragments) {
    BadInputException e = assertThrows(BadInputException.class, call);
    String message = e.getMessage();
    assertFalse(message.contains("\n") || message.contains("\r"), "not one line: " + message);
    for (String fragment : fragments) {
      assertTrue(message.contains(fragment), "'" + fragment + "' missing from: " + message);
    }
    return e;
  }

  static String sha256(Path file) throws IOException {
    try {
      return HexFormat.of()
          .formatHex(MessageDigest.getInstance("SHA-256").digest(Files.readAllBytes(file)));
    } catch (NoSuchAlgorithmException e) {
      throw new AssertionError(e);
    }
  }
}
