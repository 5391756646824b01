package llmc.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A command never destroys its input and reads only files inside the model folder. Every case runs
 * on a copy of stories260K in a temporary folder (never on samples/ itself): the command exits 2
 * with one line, the model's files keep their bytes, and no output appears.
 */
class InputSafetyTest {
  @TempDir Path dir;

  /** dir/work/stories260K, a copy of the sample model. */
  private Path model;

  @BeforeEach
  void copyOfTheSampleModel() throws IOException {
    model = Files.createDirectories(dir.resolve("work/stories260K"));
    try (Stream<Path> files = Files.list(Path.of(Cli.stories()))) {
      for (Path f : files.toList()) {
        Files.copy(f, model.resolve(f.getFileName()));
      }
    }
  }

  /** Every path under dir with the bytes of each file. */
  private Map<String, String> snapshot() throws IOException {
    Map<String, String> all = new TreeMap<>();
    try (Stream<Path> files = Files.walk(dir)) {
      for (Path p : files.toList()) {
        all.put(
            dir.relativize(p).toString(),
            Files.isSymbolicLink(p)
                ? "-> " + Files.readSymbolicLink(p)
                : Files.isRegularFile(p) ? Arrays.toString(Files.readAllBytes(p)) : "/");
      }
    }
    return all;
  }

  /**
   * Runs the command: exit 2, one line on stderr naming every fragment, nothing on stdout, and
   * every file under dir (the model included) exactly as before.
   */
  private String refused(List<String> args, String... fragments) throws IOException {
    Map<String, String> before = snapshot();
    Cli r = Cli.run(args.toArray(String[]::new));
    assertEquals(2, r.exitCode(), r.err());
    List<String> lines = r.err().lines().filter(l -> l.startsWith("llmc: ")).toList();
    assertEquals(1, lines.size(), r.err());
    assertTrue(lines.get(0).startsWith("llmc: error: "), lines.get(0));
    for (String fragment : fragments) {
      assertTrue(lines.get(0).contains(fragment), fragment + " missing from: " + lines.get(0));
    }
    assertEquals("", r.out());
    assertEquals(before, snapshot(), "the model is unchanged and nothing was written");
    return lines.get(0);
  }

  private List<String> quantize(Path out, String... more) {
    List<String> args =
        new ArrayList<>(
            List.of(
                "quantize",
                model.toString(),
                "--out",
                out.toString(),
                "--method",
                "rtn",
                "--format",
                "dense",
                "--json"));
    args.addAll(List.of(more));
    return args;
  }

  @Test
  void quantizeOutOntoTheModelWithOverwriteExitsTwoAndKeepsTheModel() throws IOException {
    refused(quantize(model, "--overwrite"), model.toString(), "is the input");
    refused(quantize(model.resolve("."), "--overwrite"), "is the input");
  }

  @Test
  void quantizeOutOntoAFolderContainingTheModelExitsTwoAndKeepsTheModel() throws IOException {
    // even a folder that looks like llmc's own output is not replaced when it holds the input
    Files.writeString(dir.resolve("work/llmc-report.json"), "{}");
    refused(quantize(dir.resolve("work"), "--overwrite"), "contains the input " + model);
  }

  @Test
  void quantizeOutInsideTheModelExitsTwo() throws IOException {
    refused(quantize(model.resolve("q4")), "lies inside the input");
  }

  @Test
  void quantizeToGgufOntoTheModelAndExportIntoItExitTwo() throws IOException {
    refused(
        List.of(
            "quantize",
            model.toString(),
            "--method",
            "rtn",
            "--format",
            "gguf",
            "--gguf-type",
            "q8_0",
            "--out",
            model.toString(),
            "--overwrite"),
        "is the input");
    refused(
        List.of(
            "export",
            model.toString(),
            "--type",
            "f32",
            "--out",
            model.resolve("model.gguf").toString()),
        "lies inside the input");
  }

  @Test
  void pruneOutOntoTheModelWithOverwriteExitsTwo() throws IOException {
    refused(
        List.of(
            "prune",
            model.toString(),
            "--out",
            model.toString(),
            "--method",
            "magnitude",
            "--sparsity",
            "0.5",
            "--overwrite"),
        "is the input");
  }

  @Test
  void overwriteOfAFolderLlmcDidNotWriteExitsTwoAndKeepsIt() throws IOException {
    Path mine = Files.createDirectories(dir.resolve("mine"));
    Files.writeString(mine.resolve("notes.txt"), "keep me");
    refused(quantize(mine, "--overwrite"), mine.toString(), "llmc did not write it");
  }

  @Test
  void saveStatsOntoTheModelFolderExitsTwoAndWritesNoOutput() throws IOException {
    Path out = dir.resolve("out");
    refused(
        List.of(
            "quantize",
            model.toString(),
            "--out",
            out.toString(),
            "--format",
            "dense",
            "--calib",
            Cli.valid(),
            "--nsamples",
            "2",
            "--save-stats",
            model.toString()),
        "--save-stats " + model,
        "is the input");
    assertFalse(Files.exists(out));
  }

  @Test
  void quantizeOutInsideTheSavedStatisticsItReadsExitsTwo() throws IOException {
    Path stats = dir.resolve("stats");
    Cli saved =
        Cli.run(
            "quantize",
            model.toString(),
            "--out",
            dir.resolve("first").toString(),
            "--format",
            "dense",
            "--calib",
            Cli.valid(),
            "--nsamples",
            "2",
            "--seq-len",
            "64",
            "--save-stats",
            stats.toString());
    assertEquals(0, saved.exitCode(), saved.err());
    refused(
        List.of(
            "quantize",
            model.toString(),
            "--out",
            stats.resolve("inner").toString(),
            "--format",
            "dense",
            "--stats",
            stats.toString()),
        "--out " + stats.resolve("inner"),
        stats.toString());
  }

  @Test
  void aTokenizerLinkedOutsideTheModelFolderExitsTwoAndWritesNoOutput() throws IOException {
    Path outside = Files.move(model.resolve("tokenizer.json"), dir.resolve("tokenizer.json"));
    Files.createSymbolicLink(model.resolve("tokenizer.json"), outside);
    Path out = dir.resolve("out");
    refused(
        quantize(out),
        model.resolve("tokenizer.json").toString(),
        "links to " + outside.toRealPath(),
        "copy the file into the folder");
    assertFalse(Files.exists(out));
    refused(
        List.of("export", model.toString(), "--type", "f32", "--out", dir.resolve("x.gguf") + ""),
        "tokenizer.json",
        "copy the file into the folder");
  }
}
