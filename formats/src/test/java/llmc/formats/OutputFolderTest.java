package llmc.formats;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
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
    Files.writeString(target.resolve(OutputFolder.REPORT), "{}");
    InvalidSettingException e =
        (InvalidSettingException)
            TestFiles.assertBadInput(
                () -> OutputFolder.create(target, false), target.toString(), "already exists");
    assertEquals(List.of("out", "overwrite"), e.settings());
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
    assertEquals("a file", Files.readString(target));
  }

  /** A folder with a user's files: llmc did not write it, so overwrite may not delete it. */
  private Path foreignFolder() throws IOException {
    Path target = Files.createDirectory(parent.resolve("out"));
    Files.writeString(target.resolve("notes.txt"), "mine");
    Files.createDirectory(target.resolve("photos"));
    Files.writeString(target.resolve("photos/a.jpg"), "jpeg");
    return target;
  }

  private Map<String, String> contents(Path dir) throws IOException {
    Map<String, String> files = new TreeMap<>();
    try (Stream<Path> all = Files.walk(dir)) {
      for (Path p : all.filter(Files::isRegularFile).toList()) {
        files.put(dir.relativize(p).toString(), Files.readString(p));
      }
    }
    return files;
  }

  @Test
  void overwriteOfAFolderWithoutAnLlmcReportIsRefusedAndTheFolderUntouched() throws IOException {
    Path target = foreignFolder();
    Map<String, String> before = contents(target);
    InvalidSettingException e =
        (InvalidSettingException)
            TestFiles.assertBadInput(
                () -> OutputFolder.create(target, true, List.of()),
                target.toString(),
                "llmc did not write it",
                "no " + OutputFolder.REPORT,
                "remove it yourself or choose another out");
    assertEquals(List.of("out", "out"), e.settings());
    assertEquals(before, contents(target));
    assertEquals(List.of("out"), listing(), "no temporary folder left");
  }

  @Test
  void aReportThatIsASymbolicLinkDoesNotMakeAFolderLlmcs() throws IOException {
    Path target = foreignFolder();
    Path elsewhere = Files.writeString(parent.resolve("report.json"), "{}");
    Files.createSymbolicLink(target.resolve(OutputFolder.REPORT), elsewhere);
    TestFiles.assertBadInput(
        () -> OutputFolder.create(target, true, List.of()), "llmc did not write it");
    assertEquals("mine", Files.readString(target.resolve("notes.txt")));
  }

  @Test
  void aForeignFolderThatAppearsBeforeCommitIsNotReplaced() throws IOException {
    Path target = parent.resolve("out");
    try (OutputFolder out = OutputFolder.create(target, true, List.of())) {
      Files.writeString(out.dir().resolve("new.txt"), "new");
      foreignFolder();
      TestFiles.assertBadInput(out::commit, "llmc did not write it");
    }
    assertEquals(Map.of("notes.txt", "mine", "photos/a.jpg", "jpeg"), contents(target));
    assertEquals(List.of("out"), listing(), "no temporary folder left");
  }

  /** An output folder llmc wrote earlier. */
  private Path llmcFolder() throws IOException {
    Path target = Files.createDirectory(parent.resolve("out"));
    Files.writeString(target.resolve("config.json"), "old config");
    Files.writeString(target.resolve(OutputFolder.REPORT), "old report");
    return target;
  }

  @Test
  void overwriteReplacesAnLlmcFolderOnlyAtCommit() throws IOException {
    Path target = llmcFolder();
    try (OutputFolder out = OutputFolder.create(target, true, List.of())) {
      Files.writeString(out.dir().resolve("config.json"), "new config");
      Files.writeString(out.dir().resolve(OutputFolder.REPORT), "new report");
      assertEquals(
          Map.of("config.json", "old config", OutputFolder.REPORT, "old report"),
          contents(target),
          "the old output stays until commit");
      out.commit();
    }
    assertEquals(
        Map.of("config.json", "new config", OutputFolder.REPORT, "new report"), contents(target));
    assertEquals(List.of("out"), listing(), "the old folder and the temporary one are gone");
  }

  @Test
  void aRunThatFailsBeforeCommitLeavesTheOldLlmcFolderIntact() throws IOException {
    Path target = llmcFolder();
    Map<String, String> before = contents(target);
    IllegalStateException failure =
        assertThrows(
            IllegalStateException.class,
            () -> {
              try (OutputFolder out = OutputFolder.create(target, true, List.of())) {
                Files.writeString(out.dir().resolve("config.json"), "half written");
                throw new IllegalStateException("the run failed");
              }
            });
    assertEquals("the run failed", failure.getMessage());
    assertEquals(before, contents(target));
    assertEquals(List.of("out"), listing(), "no temporary folder left");
  }

  /** The PID of a process that has exited. */
  private static long deadPid() throws IOException, InterruptedException {
    Process p = new ProcessBuilder("true").start();
    p.waitFor();
    long pid = p.pid();
    assertFalse(ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false));
    return pid;
  }

  @Test
  void siblingsLeftByKilledRunsAreRemovedAndThoseOfRunningProcessesKept() throws Exception {
    long dead = deadPid();
    long alive = ProcessHandle.current().pid();
    Path staleTmp = Files.createDirectory(parent.resolve(".out.tmp-" + dead + "-0123abcd"));
    Files.writeString(staleTmp.resolve("model.safetensors"), "partial");
    Path staleFile = Files.writeString(parent.resolve(".out.tmp-" + dead + "-89abcdef"), "x");
    Path liveTmp = Files.createDirectory(parent.resolve(".out.tmp-" + alive + "-00000000"));
    Path otherName = Files.createDirectory(parent.resolve(".out2.tmp-" + dead + "-0123abcd"));
    Path notOurs = Files.createDirectory(parent.resolve(".out.tmp-" + dead + "-notours"));
    try (OutputFolder out = OutputFolder.create(parent.resolve("out"), false)) {
      assertFalse(Files.exists(staleTmp));
      assertFalse(Files.exists(staleFile));
      assertTrue(Files.isDirectory(liveTmp));
      assertTrue(Files.isDirectory(otherName));
      assertTrue(Files.isDirectory(notOurs));
    }
  }

  @Test
  void aPreviousOutputMovedAsideByAKilledCommitIsMovedBack() throws Exception {
    Path old = Files.createDirectory(parent.resolve(".out.old-" + deadPid() + "-0123abcd"));
    Files.writeString(old.resolve(OutputFolder.REPORT), "{}");
    Path target = parent.resolve("out");
    assertBadInputAlreadyExists(target);
    assertEquals("{}", Files.readString(target.resolve(OutputFolder.REPORT)));
    assertEquals(List.of("out"), listing());
  }

  private static void assertBadInputAlreadyExists(Path target) {
    TestFiles.assertBadInput(
        () -> OutputFolder.create(target, false), target.toString(), "already exists");
  }

  @Test
  void aStaleSiblingThatHoldsAnInputIsKept() throws Exception {
    Path stale = Files.createDirectory(parent.resolve(".out.tmp-" + deadPid() + "-0123abcd"));
    Path input = Files.createDirectory(stale.resolve("model"));
    try (OutputFolder out = OutputFolder.create(parent.resolve("out"), false, List.of(input))) {
      assertTrue(Files.isDirectory(input));
    }
  }
}
