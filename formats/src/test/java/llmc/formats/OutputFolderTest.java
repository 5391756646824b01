package llmc.formats;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class OutputFolderTest {

  @TempDir Path parent;

  private List<String> listing() throws IOException {
    try (Stream<Path> files = Files.list(parent)) {
      return files.map(p -> p.getFileName().toString()).sorted().toList();
    }
  }

  @Test
  void commitRenamesTempFolderIntoPlace() throws IOException {
    Path target = parent.resolve("out");
    try (OutputFolder out = OutputFolder.create(target, false)) {
      assertEquals(parent, out.dir().getParent());
      assertTrue(out.dir().getFileName().toString().startsWith(".out.tmp-"));
      Files.writeString(out.dir().resolve("config.json"), "{}");
      assertFalse(Files.exists(target));
      out.commit();
    }
    assertEquals(List.of("out"), listing());
    assertEquals("{}", Files.readString(target.resolve("config.json")));
  }

  @Test
  void closeWithoutCommitDeletesEverything() throws IOException {
    try (OutputFolder out = OutputFolder.create(parent.resolve("out"), false)) {
      Files.createDirectories(out.dir().resolve("sub"));
      Files.writeString(out.dir().resolve("sub/file.bin"), "x");
    }
    assertEquals(List.of(), listing());
  }

  @Test
  void existingTargetNeedsOverwrite() throws IOException {
    Path target = Files.createDirectory(parent.resolve("out"));
    Files.writeString(target.resolve("old.txt"), "old");
    TestFiles.assertBadInput(
        () -> OutputFolder.create(target, false), target.toString(), "set overwrite");
    try (OutputFolder out = OutputFolder.create(target, true)) {
      Files.writeString(out.dir().resolve("new.txt"), "new");
      out.commit();
    }
    assertEquals(List.of("out"), listing());
    try (Stream<Path> files = Files.list(target)) {
      assertEquals(List.of(target.resolve("new.txt")), files.toList());
    }
  }

  @Test
  void overwriteRefusesToReplaceAFile() throws IOException {
    Path target = Files.writeString(parent.resolve("out"), "a file");
    TestFiles.assertBadInput(
        () -> OutputFolder.create(target, true), target.toString(), "not a folder");
  }
}
