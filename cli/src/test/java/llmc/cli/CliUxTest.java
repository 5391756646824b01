package llmc.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.File;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Progress on stderr (bar, plain, off), --quiet, --threads' default, completion, --version. */
class CliUxTest {
  @TempDir Path dir;

  private static final Pattern PROGRESS_LINE =
      Pattern.compile("(?m)^llmc: quantize: layer \\d+/\\d+ \\(\\d+%.*\\)$");

  @Test
  void progressModeDecision() {
    assertEquals(ProgressMode.BAR, ProgressMode.decide(false, true, Map.of()));
    assertEquals(ProgressMode.BAR, ProgressMode.decide(false, true, Map.of("CI", "false")));
    assertEquals(ProgressMode.PLAIN, ProgressMode.decide(false, false, Map.of()));
    assertEquals(ProgressMode.PLAIN, ProgressMode.decide(false, true, Map.of("CI", "true")));
    assertEquals(ProgressMode.PLAIN, ProgressMode.decide(false, true, Map.of("CI", "1")));
    assertEquals(ProgressMode.PLAIN, ProgressMode.decide(false, true, Map.of("TERM", "dumb")));
    assertEquals(ProgressMode.OFF, ProgressMode.decide(true, true, Map.of()));
    assertEquals(ProgressMode.OFF, ProgressMode.decide(true, false, Map.of("CI", "true")));
  }

  /** CI=true on a terminal: plain lines naming the task, and not one control character. */
  @Test
  void plainProgressHasNoControlCharacters() {
    Cli r = quantize(new Llmc.Environment(true, Map.of("CI", "true")));
    assertEquals(0, r.exitCode(), r.err());
    assertTrue(PROGRESS_LINE.matcher(r.err()).find(), r.err());
    assertTrue(r.err().contains("llmc: quantize: layer 5/5 (100%"), r.err());
    for (char c : r.err().toCharArray()) {
      assertTrue(c == '\n' || !Character.isISOControl(c), "control character " + (int) c);
    }
  }

  @Test
  void quietHasNoProgress() {
    Cli r = quantize(new Llmc.Environment(false, Map.of("CI", "true")), "--quiet");
    assertEquals(0, r.exitCode(), r.err());
    assertFalse(r.err().contains("layer"), r.err());
    assertTrue(r.out().startsWith("quantized "), r.out());
  }

  /** Plain lines: the first and last of a task, at most one per interval in between. */
  @Test
  void plainLinesAreRateLimited() {
    StringWriter err = new StringWriter();
    long[] now = {0};
    long second = 1_000_000_000L;
    var p = new ConsoleProgress.Plain(new PrintWriter(err, true), () -> now[0], 5 * second);
    for (int i = 1; i <= 100; i++) {
      now[0] = i * second / 2; // two updates a second for 50 s
      p.update("eval: window", i, 100);
    }
    p.finished();
    List<String> lines = err.toString().lines().toList();
    assertEquals("llmc: eval: window 1/100 (1%, 0.0 s)", lines.getFirst());
    assertTrue(
        lines.getLast().startsWith("llmc: eval: window 100/100 (100%, 50 s"), lines.getLast());
    assertTrue(
        lines.get(1).matches("llmc: eval: window 11/100 \\(11%, 5\\.0 s, about 40 s left\\)"),
        lines.get(1));
    assertTrue(lines.size() >= 10 && lines.size() <= 12, lines.toString());
  }

  @Test
  void threadsHelpNamesLlmcThreadsAndPyTorch() {
    String help = Cli.run("quantize", "--help").out().replaceAll("\\s+", " ");
    assertTrue(help.contains("environment variable LLMC_THREADS"), help);
    assertTrue(help.contains("PyTorch's intra-op threads"), help);
  }

  @Test
  void completionScripts() {
    Cli bash = Cli.run("completion", "bash");
    assertEquals(0, bash.exitCode(), bash.err());
    assertTrue(bash.out().contains("complete -F _complete_llmc"), bash.out());
    for (String command :
        List.of("quantize", "prune", "distill", "export", "inspect", "eval", "generate", "run")) {
      assertTrue(bash.out().contains(" " + command), command);
    }
    assertTrue(bash.out().contains("--gguf-type"));
    Cli zsh = Cli.run("completion", "zsh");
    assertTrue(zsh.out().contains("bashcompinit"), zsh.out());
    assertEquals(2, Cli.run("completion", "fish").exitCode());
  }

  @Test
  void versionNamesTheCommit() {
    Cli r = Cli.run("--version");
    assertEquals(0, r.exitCode(), r.err());
    assertTrue(
        Pattern.compile("^llmc \\S+ \\(commit ([0-9a-f]{7,40}|unknown)\\)$", Pattern.MULTILINE)
            .matcher(r.out())
            .find(),
        r.out());
    assertEquals("unknown", Llmc.Version.commit("${llmc.commit}"));
    assertEquals("unknown", Llmc.Version.commit(""));
    assertEquals("cd72b2b013", Llmc.Version.commit("cd72b2b013"));
  }

  /** Under a pseudo-terminal (script(1)) stderr is a terminal: a bar with elapsed / ETA. */
  @Test
  void pseudoTerminalShowsBar() throws Exception {
    Assumptions.assumeTrue(Files.isExecutable(Path.of("/usr/bin/script")), "no script(1)");
    String java = ProcessHandle.current().info().command().orElseThrow();
    String command =
        String.join(
            " ",
            List.of(
                quote(java),
                "--add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED",
                "-cp",
                quote(System.getProperty("java.class.path")),
                "llmc.cli.Llmc quantize",
                quote(Cli.stories()),
                "--out",
                quote(dir.resolve("out").toString()),
                "--method rtn --format compressed-tensors"));
    ProcessBuilder pb =
        new ProcessBuilder("/usr/bin/script", "-qec", command, "/dev/null")
            .redirectErrorStream(true)
            .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")));
    pb.environment().remove("CI");
    pb.environment().put("TERM", "xterm");
    File log = dir.resolve("pty.log").toFile();
    pb.redirectOutput(log);
    Process p = pb.start();
    assertTrue(p.waitFor(120, TimeUnit.SECONDS), "script(1) did not finish");
    String output = Files.readString(log.toPath(), StandardCharsets.UTF_8);
    Assumptions.assumeFalse(
        output.contains("failed to create pseudo-terminal"), "no pseudo-terminal here");
    assertEquals(0, p.exitValue(), output);
    assertTrue(output.contains("quantize: layer 100%"), output);
    assertTrue(
        Pattern.compile("5/5 \\(\\d+:\\d\\d:\\d\\d / \\d+:\\d\\d:\\d\\d\\)").matcher(output).find(),
        output);
    assertTrue(output.contains("\r"), "a bar is redrawn in place");
    assertFalse(PROGRESS_LINE.matcher(output.replace("\r", "")).find(), "no plain lines");
  }

  private Cli quantize(Llmc.Environment environment, String... extra) {
    List<String> args =
        new ArrayList<>(
            List.of(
                "quantize",
                Cli.stories(),
                "--out",
                dir.resolve("out").toString(),
                "--method",
                "rtn",
                "--format",
                "compressed-tensors"));
    args.addAll(List.of(extra));
    StringWriter out = new StringWriter();
    StringWriter err = new StringWriter();
    int code =
        Llmc.run(
            new PrintWriter(out, true),
            new PrintWriter(err, true),
            environment,
            args.toArray(String[]::new));
    return new Cli(code, out.toString(), err.toString());
  }

  private static String quote(String s) {
    return "'" + s.replace("'", "'\\''") + "'";
  }
}
