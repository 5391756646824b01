package llmc.formats;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.List;
import java.util.function.Consumer;
import java.util.stream.Stream;

/**
 * Scratch files for the fuzz tests (one folder per JVM, reused by every input) and their property:
 * a parser given any bytes either succeeds or throws a one-line {@link BadInputException} that
 * names the file or folder at fault; anything else (another exception, an error, a hang) is a
 * finding. The seeds of each corpus are written by the test class's {@code writeSeeds} method
 * ({@code -Dllmc.fuzz.writeSeeds=true}).
 */
public final class FuzzFiles {

  private static Path scratch;
  private static boolean strict;

  private FuzzFiles() {}

  /** A folder under the per-JVM scratch folder, created empty on first use. */
  public static synchronized Path folder(String name) {
    try {
      if (scratch == null) {
        scratch = Files.createTempDirectory("llmc-fuzz");
        Path root = scratch;
        Runtime.getRuntime().addShutdownHook(new Thread(() -> deleteTree(root)));
      }
      return Files.createDirectories(scratch.resolve(name));
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** {@code data} as the file {@code name} of {@code folder(folder)}. */
  public static Path write(String folder, String name, byte[] data) {
    Path file = folder(folder).resolve(name);
    try {
      Files.write(file, data);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    return file;
  }

  /** Runs the parser; a BadInputException must be one line and name {@code where}. */
  public static void expectBadInputOrSuccess(Path where, Runnable parse) {
    try {
      parse.run();
    } catch (BadInputException e) {
      if (strict) {
        throw new AssertionError("a seed is refused: " + e.getMessage(), e);
      }
      String message = e.getMessage();
      assertNotNull(message, "a BadInputException without a message");
      assertFalse(message.contains("\n") || message.contains("\r"), "not one line: " + message);
      assertTrue(message.contains(where.toString()), "does not name " + where + ": " + message);
    }
  }

  /** The corpus folder of a fuzz test method, as Jazzer looks for it, in the source tree. */
  public static Path inputs(Class<?> test, String method) {
    return Path.of(
        "src/test/resources",
        test.getPackageName().replace('.', '/'),
        test.getSimpleName() + "Inputs",
        method);
  }

  /**
   * Every {@code seed-*} file of the corpus parses without error (so that fuzzing starts from valid
   * files, and the seeds follow the formats as they change).
   */
  public static void assertSeedsParse(Class<?> test, String method, Consumer<byte[]> target) {
    List<Path> seeds;
    try (Stream<Path> files = Files.list(inputs(test, method))) {
      seeds = files.filter(f -> f.getFileName().toString().startsWith("seed-")).sorted().toList();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    assertFalse(seeds.isEmpty(), "no seeds in " + inputs(test, method));
    strict = true;
    try {
      for (Path seed : seeds) {
        try {
          target.accept(read(seed));
        } catch (AssertionError e) {
          throw new AssertionError(seed + ": " + e.getMessage(), e);
        }
      }
    } finally {
      strict = false;
    }
  }

  /** Writes one seed of {@code test}'s {@code method} corpus. */
  public static void seed(Class<?> test, String method, String name, byte[] data) {
    try {
      Path dir = Files.createDirectories(inputs(test, method));
      Files.write(dir.resolve("seed-" + name), data);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  public static byte[] read(Path file) {
    try {
      return Files.readAllBytes(file);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  private static void deleteTree(Path root) {
    try (Stream<Path> paths = Files.walk(root)) {
      paths.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
    } catch (IOException e) {
      // best effort
    }
  }
}
