package llmc.model;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.code_intelligence.jazzer.junit.DictionaryEntries;
import com.code_intelligence.jazzer.junit.FuzzTest;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import llmc.formats.BadInputException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.condition.EnabledIfSystemProperty;

/**
 * Fuzzes the data readers: TextDataset.read of any bytes as a .jsonl file (field "text") and as a
 * .txt file. The property: success, or a one-line BadInputException naming the file. Without
 * JAZZER_FUZZ each method runs its corpus under {@code
 * src/test/resources/llmc/model/TextDatasetFuzzTestInputs}; scripts/fuzz.sh fuzzes them.
 */
@Timeout(10)
class TextDatasetFuzzTest {

  private static Path scratch;

  @DictionaryEntries({"{\"text\": \"\"}", "\"text\"", "\\n", "\\r\\n", "\\u0000", "\\ud800"})
  @FuzzTest(maxDuration = "60s")
  void jsonl(byte[] data) {
    read("data.jsonl", data);
  }

  @FuzzTest(maxDuration = "60s")
  void txt(byte[] data) {
    read("data.txt", data);
  }

  private static void read(String name, byte[] data) {
    Path file = scratch().resolve(name);
    try {
      Files.write(file, data);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    try {
      TextDataset.read(file, "text");
    } catch (BadInputException e) {
      String message = e.getMessage();
      assertFalse(message.contains("\n") || message.contains("\r"), "not one line: " + message);
      assertTrue(message.contains(file.toString()), "does not name " + file + ": " + message);
    }
  }

  private static synchronized Path scratch() {
    if (scratch == null) {
      try {
        scratch = Files.createTempDirectory("llmc-fuzz");
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
      Path dir = scratch;
      Runtime.getRuntime()
          .addShutdownHook(
              new Thread(
                  () -> {
                    dir.resolve("data.jsonl").toFile().delete();
                    dir.resolve("data.txt").toFile().delete();
                    dir.resolve("seed.jsonl").toFile().delete();
                    dir.resolve("seed.txt").toFile().delete();
                    dir.toFile().delete();
                  }));
    }
    return scratch;
  }

  /** The seeds are valid data files. */
  @Test
  void seedsParse() throws IOException {
    for (String format : new String[] {"jsonl", "txt"}) {
      try (var seeds = Files.list(corpus(format))) {
        for (Path seed :
            seeds.filter(f -> f.getFileName().toString().startsWith("seed-")).toList()) {
          Path file = scratch().resolve("seed." + format);
          Files.copy(seed, file, java.nio.file.StandardCopyOption.REPLACE_EXISTING);
          assertFalse(TextDataset.read(file, "text").isEmpty(), seed.toString());
        }
      }
    }
  }

  private static Path corpus(String method) {
    return Path.of("src/test/resources/llmc/model/TextDatasetFuzzTestInputs", method);
  }

  /** Writes the corpora's seeds (run once by hand: -Dllmc.fuzz.writeSeeds=true). */
  @Test
  @EnabledIfSystemProperty(named = "llmc.fuzz.writeSeeds", matches = "true")
  void writeSeeds() throws IOException {
    seed(
        "jsonl",
        "documents",
        "{\"text\": \"Once upon a time\"}\n\n{\"text\": \"é \\u4e2d\\n\", \"id\": 2}\r\n");
    seed("jsonl", "other-fields", "{\"id\": 1, \"text\": \"a\", \"meta\": {\"x\": [1, 2]}}\n");
    seed("txt", "story", "Once upon a time, there was a little girl.\nShe liked é and 中.\n");
  }

  private void seed(String method, String name, String text) throws IOException {
    Path dir = Files.createDirectories(corpus(method));
    Files.writeString(dir.resolve("seed-" + name), text, StandardCharsets.UTF_8);
  }
}
