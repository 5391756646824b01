package llmc.cli;

import java.io.PrintWriter;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.LongSupplier;
import llmc.pipeline.Progress;
import me.tongfei.progressbar.ProgressBar;
import me.tongfei.progressbar.ProgressBarBuilder;
import me.tongfei.progressbar.ProgressBarStyle;

/** A stage's {@link Progress} shown on stderr in a {@link ProgressMode}. */
final class ConsoleProgress {
  /**
   * Plain mode: at most one line per task in this many nanoseconds (besides the first and last).
   */
  static final long PLAIN_INTERVAL_NANOS = 5_000_000_000L;

  private ConsoleProgress() {}

  static Progress of(ProgressMode mode, PrintWriter err) {
    return switch (mode) {
      case OFF -> Progress.NONE;
      case PLAIN -> new Plain(err, System::nanoTime, PLAIN_INTERVAL_NANOS);
      case BAR -> new Bars();
    };
  }

  /**
   * One line per update, "llmc: gptq: layer 3/8 (38%, 12 s, about 20 s left)": the first and the
   * last of each task, and in between at most one every interval. No carriage returns or escape
   * sequences, so logs and CI consoles show it as it is.
   */
  static final class Plain implements Progress {
    private final PrintWriter err;
    private final LongSupplier clock;
    private final long interval;
    private final Map<String, Task> tasks = new LinkedHashMap<>();

    private static final class Task {
      long started;
      long printedAt;
      long done = -1;
      long total;
      boolean printed; // the latest state is printed
    }

    Plain(PrintWriter err, LongSupplier clock, long intervalNanos) {
      this.err = err;
      this.clock = clock;
      this.interval = intervalNanos;
    }

    @Override
    public synchronized void update(String task, long done, long total) {
      long now = clock.getAsLong();
      Task t = tasks.get(task);
      boolean first = t == null || done < t.done; // a task seen again starts over
      if (first) {
        t = new Task();
        t.started = now;
        tasks.put(task, t);
      }
      t.done = done;
      t.total = total;
      t.printed = false;
      if (first || (total > 0 && done >= total) || now - t.printedAt >= interval) {
        print(task, t, now);
      }
    }

    @Override
    public synchronized void finished() {
      long now = clock.getAsLong();
      tasks.forEach(
          (name, t) -> {
            if (!t.printed) {
              print(name, t, now);
            }
          });
      tasks.clear();
    }

    private void print(String name, Task t, long now) {
      StringBuilder line = new StringBuilder("llmc: ").append(clean(name)).append(' ');
      line.append(t.done);
      if (t.total > 0) {
        line.append('/').append(t.total);
        double seconds = (now - t.started) / 1e9;
        line.append(
            String.format(" (%d%%, %s", Math.round(100.0 * t.done / t.total), time(seconds)));
        if (t.done > 0 && t.done < t.total && seconds > 0) {
          line.append(", about ")
              .append(time(seconds / t.done * (t.total - t.done)))
              .append(" left");
        }
        line.append(')');
      }
      err.println(line);
      err.flush();
      t.printedAt = now;
      t.printed = true;
    }

    private static String time(double seconds) {
      if (seconds < 10) {
        return String.format(java.util.Locale.ROOT, "%.1f s", seconds);
      }
      if (seconds < 60) {
        return String.format("%.0f s", seconds);
      }
      long s = Math.round(seconds);
      return s < 3600
          ? String.format("%d min %02d s", s / 60, s % 60)
          : String.format("%d h %02d min", s / 3600, s % 3600 / 60);
    }

    /** A task name as printed: control characters replaced, so no line can carry any. */
    private static String clean(String s) {
      StringBuilder b = new StringBuilder(s.length());
      s.codePoints().forEach(c -> b.appendCodePoint(Character.isISOControl(c) ? '?' : c));
      return b.toString();
    }
  }

  /**
   * A progress bar per task (me.tongfei:progressbar on stderr) with rate and ETA; a task's bar is
   * closed when it is complete or the stage says it {@link #finished()}.
   */
  static final class Bars implements Progress {
    private final Map<String, ProgressBar> bars = new LinkedHashMap<>();

    @Override
    public synchronized void update(String task, long done, long total) {
      ProgressBar bar = bars.get(task);
      if (bar != null && (done < bar.getCurrent() || total != bar.getMax())) {
        bar.close(); // the task starts over
        bar = null;
      }
      if (bar == null) {
        bar =
            new ProgressBarBuilder()
                .setTaskName(task)
                .setInitialMax(Math.max(total, 0))
                .setStyle(ProgressBarStyle.COLORFUL_UNICODE_BAR)
                .setUpdateIntervalMillis(250)
                .continuousUpdate()
                .showSpeed()
                .build();
        bars.put(task, bar);
      }
      bar.stepTo(done);
      if (total > 0 && done >= total) {
        bar.close();
        bars.remove(task);
      }
    }

    @Override
    public synchronized void finished() {
      bars.values().forEach(ProgressBar::close);
      bars.clear();
    }
  }
}
