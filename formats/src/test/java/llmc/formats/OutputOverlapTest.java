package llmc.formats;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Stream;
import llmc.formats.gguf.GgufWriter;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * An output never overlaps an input, however the paths are spelled: both writers (a folder, a GGUF
 * file) refuse a target that is, contains or lies inside the model folder, with {@code overwrite}
 * set, before writing anything.
 */
class OutputOverlapTest {

  @TempDir Path tmp;
  private Path model;

  enum Writer {
    FOLDER,
    GGUF;

    AutoCloseable create(Path target, Path input) {
      return switch (this) {
        case FOLDER -> OutputFolder.create(target, true, List.of(input));
        case GGUF -> GgufWriter.create(target, true, List.of(input));
      };
    }

    /** A target of this writer's kind directly inside {@code dir}. */
    Path inside(Path dir) {
      return dir.resolve(this == FOLDER ? "q4" : "model.gguf");
    }
  }

  @BeforeEach
  void modelFolder() throws IOException {
    model = Files.createDirectories(tmp.resolve("models/m"));
    Files.writeString(model.resolve("config.json"), "{}");
    Files.writeString(model.resolve("model.safetensors"), "weights");
    Files.writeString(model.resolve(OutputFolder.REPORT), "{}"); // even an llmc output is an input
  }

  /** Every file under tmp with its content. */
  private Map<String, String> snapshot() throws IOException {
    Map<String, String> files = new TreeMap<>();
    try (Stream<Path> all = Files.walk(tmp)) {
      for (Path p : all.toList()) {
        files.put(
            tmp.relativize(p).toString(),
            Files.isRegularFile(p) ? Files.readString(p) : Files.isDirectory(p) ? "/" : "link");
      }
    }
    return files;
  }

  private void assertRefused(Writer writer, Path target, Path input, String why)
      throws IOException {
    Map<String, String> before = snapshot();
    InvalidSettingException e =
        (InvalidSettingException)
            TestFiles.assertBadInput(() -> writer.create(target, input).close(), why);
    assertEquals(List.of("out", "out"), e.settings());
    assertEquals(before, snapshot(), "nothing written, nothing deleted");
  }

  @ParameterizedTest
  @EnumSource(Writer.class)
  void outEqualToTheInputIsRefused(Writer writer) throws IOException {
    assertRefused(writer, model, model, "is the input " + model);
  }

  @ParameterizedTest
  @EnumSource(Writer.class)
  void outContainingTheInputIsRefused(Writer writer) throws IOException {
    assertRefused(writer, tmp.resolve("models"), model, "contains the input " + model);
    assertRefused(writer, tmp, model, "contains the input " + model);
  }

  @ParameterizedTest
  @EnumSource(Writer.class)
  void outInsideTheInputIsRefused(Writer writer) throws IOException {
    assertRefused(writer, writer.inside(model), model, "lies inside the input " + model);
    assertRefused(
        writer, writer.inside(model.resolve("new/deeper")), model, "lies inside the input");
  }

  @ParameterizedTest
  @EnumSource(Writer.class)
  void relativeAndDotFormsOfTheInputAreRefused(Writer writer) throws IOException {
    Path relative = Path.of("").toAbsolutePath().relativize(model);
    assertFalse(relative.isAbsolute());
    assertRefused(writer, relative, model, "is the input");
    assertRefused(writer, relative.resolve("."), model, "is the input");
    assertRefused(writer, model.resolve("."), model, "is the input");
    assertRefused(writer, model.resolve("x/.."), model, "is the input");
    assertRefused(writer, model.resolve(".."), model, "contains the input");
    assertRefused(writer, model, relative.resolve("."), "is the input");
  }

  @ParameterizedTest
  @EnumSource(Writer.class)
  void outThroughASymbolicLinkIsRefused(Writer writer) throws IOException {
    Path link = Files.createSymbolicLink(tmp.resolve("link"), model);
    assertRefused(writer, link, model, "is the input");
    assertRefused(writer, writer.inside(link), model, "lies inside the input");
    Path parentLink = Files.createSymbolicLink(tmp.resolve("parent-link"), tmp.resolve("models"));
    assertRefused(writer, parentLink, model, "contains the input");
    assertRefused(writer, parentLink.resolve("m"), model, "is the input");
    // the input given through a link, the target by its real path
    assertRefused(writer, model, link, "is the input");
    assertRefused(writer, writer.inside(model), link, "lies inside the input");
  }

  @ParameterizedTest
  @EnumSource(Writer.class)
  void aSiblingWhoseNameStartsLikeTheInputIsAllowed(Writer writer) throws Exception {
    Path sibling = tmp.resolve("models").resolve(writer == Writer.FOLDER ? "m-q4" : "m.gguf");
    try (AutoCloseable out = writer.create(sibling, model)) {
      assertTrue(Files.isDirectory(tmp.resolve("models")));
    }
    assertFalse(Files.exists(sibling), "closed without commit: nothing left");
  }

  @Test
  void theTwoArgumentFormsProtectNoInput() throws IOException {
    try (OutputFolder out = OutputFolder.create(tmp.resolve("out"), false)) {
      assertEquals(tmp.resolve("out"), out.target());
    }
    try (GgufWriter out = GgufWriter.create(tmp.resolve("out.gguf"), false)) {
      assertEquals(tmp.resolve("out.gguf"), out.target());
    }
  }
}
