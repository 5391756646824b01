package llmc.cli;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Pattern;
import llmc.formats.Json;

/**
 * Runs llmc in-process and keeps what it printed; stderr without the plain progress lines (the
 * tests' stderr is no terminal), which CliUxTest checks.
 */
record Cli(int exitCode, String out, String err) {
  /** A plain progress line: "llmc: eval: window 3/40 (8%, 1.2 s, about 14 s left)". */
  static final Pattern PROGRESS =
      Pattern.compile(
          "(?m)^llmc: (?!error|internal error|warning).* \\d+(/\\d+ \\(\\d+%[^)]*\\))?\\R");

  static Cli run(String... args) {
    StringWriter out = new StringWriter();
    StringWriter err = new StringWriter();
    int code = Llmc.run(new PrintWriter(out, true), new PrintWriter(err, true), args);
    return new Cli(code, out.toString(), PROGRESS.matcher(err.toString()).replaceAll(""));
  }

  JsonNode json() {
    try {
      return Json.mapper().readTree(out);
    } catch (IOException e) {
      throw new AssertionError("stdout is not one JSON object: " + out, e);
    }
  }

  /**
   * The command line of {@code llmc} in a child JVM (this test run's Java and class path), with
   * {@code jvmOptions} before the class; the llmc arguments go after it.
   */
  static List<String> child(String... jvmOptions) {
    List<String> command = new ArrayList<>();
    command.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
    command.addAll(List.of(jvmOptions));
    command.addAll(
        List.of(
            "--add-modules",
            "jdk.incubator.vector",
            "--enable-native-access=ALL-UNNAMED",
            "-Dai.djl.offline=true",
            "-cp",
            System.getProperty("java.class.path"),
            Llmc.class.getName()));
    return command;
  }

  static Path root() {
    return Path.of(System.getProperty("llmc.root", "..")).toAbsolutePath().normalize();
  }

  static String stories() {
    return root().resolve("samples/models/stories260K").toString();
  }

  static String valid() {
    return root().resolve("samples/data/tinystories/valid.jsonl").toString();
  }

  static Path shared() {
    return Path.of(System.getProperty("llmc.shared", "../../shared")).toAbsolutePath().normalize();
  }
}
