package llmc.cli;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.util.Map;

/**
 * How progress is shown on stderr: a progress bar on a terminal, plain one-line logs without
 * control characters elsewhere (a pipe, a file, CI), or nothing ({@code --quiet}).
 */
enum ProgressMode {
  /** A progress bar per task with ETA, redrawn in place (a terminal). */
  BAR,
  /** One line per update, rate-limited, no control characters (logs, CI). */
  PLAIN,
  /** Nothing. */
  OFF;

  /**
   * The mode for {@code --quiet}, whether stderr is a terminal, and the environment: {@code
   * CI=true} (or any value but {@code false}/{@code 0}, as CI services set it) and {@code
   * TERM=dumb} choose plain lines even on a terminal.
   */
  static ProgressMode decide(boolean quiet, boolean stderrIsTerminal, Map<String, String> env) {
    if (quiet) {
      return OFF;
    }
    if (!stderrIsTerminal || isCi(env) || "dumb".equals(env.get("TERM"))) {
      return PLAIN;
    }
    return BAR;
  }

  static boolean isCi(Map<String, String> env) {
    String ci = env.get("CI");
    if (ci == null) {
      return false;
    }
    String v = ci.trim().toLowerCase(java.util.Locale.ROOT);
    return !v.isEmpty() && !v.equals("false") && !v.equals("0");
  }

  /** Whether file descriptor 2 is a terminal: isatty(2) through the C library. */
  static boolean stderrIsTerminal() {
    try {
      Linker linker = Linker.nativeLinker();
      MethodHandle isatty =
          linker
              .defaultLookup()
              .find("isatty")
              .map(
                  f ->
                      linker.downcallHandle(
                          f, FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT)))
              .orElse(null);
      if (isatty != null) {
        return (int) isatty.invokeExact(2) == 1;
      }
    } catch (Throwable e) {
      // no native access: fall back to the JDK's idea of a terminal (stdin and stdout)
    }
    java.io.Console console = System.console();
    return console != null && console.isTerminal();
  }
}
