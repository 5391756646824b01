package llmc.cli;

import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.PrintWriter;
import llmc.formats.Json;
import llmc.model.Engines;
import llmc.pipeline.Progress;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/** Options every command has: machine-readable output, verbosity, progress, threads. */
public final class CommonOptions {
  @Option(names = "--json", description = "Print one JSON object on stdout and nothing else there.")
  boolean json;

  @Option(
      names = {"-v", "--verbose"},
      description = "Stack traces for errors.")
  boolean verbose;

  @Option(
      names = {"-q", "--quiet"},
      description = "No progress on stderr (errors and warnings are still printed).")
  boolean quiet;

  @Option(
      names = "--threads",
      paramLabel = "N",
      defaultValue = "${env:LLMC_THREADS:-0}",
      description =
          "Compute threads, for llmc's own kernels and PyTorch's intra-op threads (default: the"
              + " environment variable LLMC_THREADS, else 0 = one per physical core).")
  int threads;

  /** The command this mixin belongs to (its stderr, and through its root the environment). */
  @Spec(Spec.Target.MIXEE)
  CommandSpec command;

  void configureEngine() {
    Engines.configure(threads);
  }

  void print(PrintWriter out, ObjectNode result) {
    try {
      out.println(Json.mapper().writerWithDefaultPrettyPrinter().writeValueAsString(result));
      out.flush();
    } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
      throw new IllegalStateException(e);
    }
  }

  /**
   * A stage's progress on this command's stderr: a bar per task on a terminal, plain rate-limited
   * lines elsewhere or with CI=true, nothing with --quiet ({@link ProgressMode}).
   */
  Progress progress() {
    return ConsoleProgress.of(progressMode(), command.commandLine().getErr());
  }

  ProgressMode progressMode() {
    Llmc.Environment environment = Llmc.Environment.of(command);
    return ProgressMode.decide(quiet, environment.stderrIsTerminal(), environment.env());
  }
}
