package llmc.cli;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import llmc.formats.BadInputException;
import llmc.formats.InvalidSettingException;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;

/**
 * The {@code llmc} command: exit 0 on success, 1 on an internal error, 2 on bad input or usage, 3
 * when {@code eval}'s quality gates failed.
 */
@Command(
    name = "llmc",
    mixinStandardHelpOptions = true,
    versionProvider = Llmc.Version.class,
    description =
        "Compress large language models (Hugging Face checkpoints) and measure what it costs.",
    subcommands = {
      QuantizeCommand.class,
      PruneCommand.class,
      DistillCommand.class,
      ExportCommand.class,
      InspectCommand.class,
      EvalCommand.class,
      CompareCommand.class,
      GenerateCommand.class,
      RunCommand.class,
      RandomModelCommand.class,
      CompletionCommand.class,
      CommandLine.HelpCommand.class
    },
    footer = {
      "",
      "Example:",
      "  llmc eval samples/models/stories260K --data samples/data/tinystories/valid.jsonl"
    })
public final class Llmc {
  public static final int OK = 0;
  public static final int INTERNAL_ERROR = 1;
  public static final int BAD_INPUT = 2;

  /**
   * {@code eval} measured what it was asked to and a quality gate failed; the report says which.
   */
  public static final int QUALITY_GATE_FAILED = 3;

  /** Where llmc runs: whether stderr is a terminal, and the environment variables. */
  record Environment(boolean stderrIsTerminal, Map<String, String> env) {
    static Environment current() {
      return new Environment(ProgressMode.stderrIsTerminal(), System.getenv());
    }

    /** The environment of the llmc command line that {@code command} belongs to. */
    static Environment of(CommandSpec command) {
      return command != null && command.root().userObject() instanceof Llmc llmc
          ? llmc.environment
          : current();
    }
  }

  private final Environment environment;

  private Llmc(Environment environment) {
    this.environment = environment;
  }

  public static void main(String[] args) {
    System.exit(run(args));
  }

  /** Runs the command line and returns its exit code (tests call this instead of main). */
  public static int run(String... args) {
    return run(
        new java.io.PrintWriter(System.out, true), new java.io.PrintWriter(System.err, true), args);
  }

  /** Runs with the given stdout and stderr. */
  public static int run(java.io.PrintWriter out, java.io.PrintWriter err, String... args) {
    return run(out, err, Environment.current(), args);
  }

  /**
   * Runs with the given stdout, stderr and environment (whether stderr is a terminal, the variables
   * that choose how progress is shown).
   */
  static int run(
      java.io.PrintWriter out, java.io.PrintWriter err, Environment environment, String... args) {
    CommandLine cli = new CommandLine(new Llmc(environment));
    cli.setOut(out);
    cli.setErr(err);
    cli.setParameterExceptionHandler(Llmc::usageError);
    cli.setExecutionExceptionHandler(
        (e, commandLine, parseResult) -> {
          boolean verbose =
              parseResult.hasMatchedOption("--verbose")
                  || parseResult.subcommands().stream()
                      .anyMatch(p -> p.hasMatchedOption("--verbose"));
          String environmental = environmentalFailure(e);
          if (environmental == null && outOfMemory(e)) {
            environmental = outOfMemoryMessage();
          }
          if (environmental != null) {
            commandLine.getErr().println("llmc: error: " + environmental);
            if (verbose) {
              e.printStackTrace(commandLine.getErr());
            }
            return BAD_INPUT;
          }
          if (e instanceof BadInputException) {
            String message =
                e instanceof InvalidSettingException invalid
                    ? invalid.message(
                        setting -> SettingFlags.flag(commandLine.getCommandSpec(), setting))
                    : e.getMessage();
            commandLine.getErr().println("llmc: error: " + message);
            if (verbose) {
              e.printStackTrace(commandLine.getErr());
            }
            return BAD_INPUT;
          }
          commandLine
              .getErr()
              .println(
                  "llmc: internal error: "
                      + e
                      + (verbose ? "" : " (run with --verbose for the stack trace)"));
          if (verbose) {
            e.printStackTrace(commandLine.getErr());
          }
          return INTERNAL_ERROR;
        });
    try {
      return cli.execute(args);
    } catch (OutOfMemoryError e) {
      // an Error is not the execution handler's: the heap is free again once the stack unwinds
      err.println("llmc: error: " + outOfMemoryMessage());
      if (java.util.Arrays.asList(args).contains("--verbose")) {
        e.printStackTrace(err);
      }
      return BAD_INPUT;
    }
  }

  private static boolean outOfMemory(Throwable e) {
    for (Throwable t = e; t != null; t = t.getCause()) {
      if (t instanceof OutOfMemoryError) {
        return true;
      }
    }
    return false;
  }

  /** What the machine refused: more memory than the JVM may take. */
  static String outOfMemoryMessage() {
    return String.format(
        java.util.Locale.ROOT,
        "out of memory: the run needed more than the JVM's heap of %.1f GiB (nothing was written);"
            + " give it more with JAVA_OPTS=-Xmx<size> (at most about 3/4 of the machine's memory),"
            + " or use fewer calibration windows",
        Runtime.getRuntime().maxMemory() / (double) (1L << 30));
  }

  /**
   * A usage error (unknown option, bad number, missing option): one line, the nearest option names
   * when picocli has them, and where the help is; not the whole help.
   */
  private static int usageError(CommandLine.ParameterException e, String[] args) {
    CommandLine command = e.getCommandLine();
    java.io.PrintWriter err = command.getErr();
    String message = e.getMessage().replace('\n', ' ').strip();
    if (e.getArgSpec() instanceof CommandLine.Model.OptionSpec option) {
      // picocli names an option by its longest alias (--wbits); the first is the documented one.
      message = message.replace("'" + option.longestName() + "'", "'" + option.names()[0] + "'");
    }
    err.println("llmc: error: " + message);
    if (e instanceof CommandLine.UnmatchedArgumentException unmatched) {
      List<String> suggestions = unmatched.getSuggestions();
      if (!suggestions.isEmpty()) {
        err.println(
            "llmc: did you mean "
                + String.join(" or ", suggestions.subList(0, Math.min(3, suggestions.size())))
                + "?");
      }
    }
    err.println("llmc: see '" + command.getCommandSpec().qualifiedName() + " --help'");
    return BAD_INPUT;
  }

  /**
   * What the machine refused, not a fault of llmc: a full disk, an unwritable or read-only folder,
   * a file that vanished; the message names the path and the reason. Null for anything else.
   */
  static String environmentalFailure(Throwable e) {
    for (Throwable t = e; t != null; t = t.getCause()) {
      if (t instanceof java.nio.file.FileSystemException fs) {
        String reason = fs.getReason() != null ? fs.getReason() : fs.getClass().getSimpleName();
        return (fs.getFile() != null ? fs.getFile() + ": " : "")
            + reason
            + (fs instanceof java.nio.file.AccessDeniedException ? " (permission denied)" : "");
      }
      String m = t.getMessage();
      if (t instanceof IOException
          && m != null
          && m.matches(
              "(?is).*(no space left on device|disk quota exceeded|file too large|read-only file"
                  + " system|permission denied).*")) {
        String context = e.getMessage() != null && e != t ? e.getMessage() + ": " : "";
        return context + m + " (nothing was written; free space or choose another folder)";
      }
    }
    return null;
  }

  static final class Version implements CommandLine.IVersionProvider {
    @Override
    public String[] getVersion() {
      return new String[] {
        "llmc " + build(),
        "JVM " + System.getProperty("java.vm.name") + " " + System.getProperty("java.version")
      };
    }

    /** "0.1.0-SNAPSHOT (commit cd72b2b013)": the build's version and git commit. */
    static String build() {
      Properties p = new Properties();
      try (InputStream in = Llmc.class.getResourceAsStream("/llmc-version.properties")) {
        if (in != null) {
          p.load(in);
        }
      } catch (IOException e) {
        throw new UncheckedIOException("cannot read llmc-version.properties", e);
      }
      return p.getProperty("version", "unknown")
          + " (commit "
          + commit(p.getProperty("commit"))
          + ")";
    }

    /** The build's abbreviated git commit, or "unknown" when it was built outside git. */
    static String commit(String property) {
      return property != null && property.matches("[0-9a-f]{7,40}(-dirty)?") ? property : "unknown";
    }
  }
}
