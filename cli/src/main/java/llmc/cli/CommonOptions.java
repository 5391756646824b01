package llmc.cli;

import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.PrintWriter;
import llmc.formats.Json;
import llmc.model.Engines;
import llmc.pipeline.Progress;
import picocli.CommandLine.Option;

/** Options every command has: machine-readable output, verbosity, threads. */
public final class CommonOptions {
  @Option(names = "--json", description = "Print one JSON object on stdout and nothing else there.")
  boolean json;

  @Option(
      names = {"-v", "--verbose"},
      description = "Stack traces for errors.")
  boolean verbose;

  @Option(
      names = "--threads",
      paramLabel = "N",
      defaultValue = "0",
      description = "Compute threads (default: one per physical core).")
  int threads;

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

  /** A progress line on stderr (overwritten in place on a terminal), never in --json stdout. */
  static void progress(String line) {
    if (System.console() != null) {
      System.err.print("\r" + line + "\u001b[K");
      System.err.flush();
    }
  }

  /** A stage's progress as {@link #progress(String)} lines: "eval: window 3/40". */
  static Progress progress() {
    return new Progress() {
      @Override
      public void update(String task, long done, long total) {
        progress(task + " " + done + "/" + total);
      }

      @Override
      public void finished() {
        endProgress();
      }
    };
  }

  static void endProgress() {
    if (System.console() != null) {
      System.err.print("\r\u001b[K");
      System.err.flush();
    }
  }
}
