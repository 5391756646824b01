package llmc.model.kernels;

import java.util.concurrent.ForkJoinPool;
import java.util.concurrent.ForkJoinTask;
import java.util.function.IntConsumer;
import java.util.stream.IntStream;

/**
 * Runs independent tasks on one fixed pool. Threads: {@link #configure} (the CLI's {@code
 * --threads}), else {@code -Dllmc.threads=T}, else all processors. Every output element is written
 * by exactly one task whose arithmetic does not depend on the thread that runs it, so results are
 * identical for any thread count and schedule.
 */
public final class Parallel {
  private static int requested =
      Integer.getInteger("llmc.threads", Runtime.getRuntime().availableProcessors());
  private static ForkJoinPool pool;

  private Parallel() {}

  /**
   * Sets the thread count; effective only before the first parallel task. {@code threads <= 0}
   * keeps the default.
   */
  public static synchronized void configure(int threads) {
    if (threads > 0 && pool == null) {
      requested = threads;
    }
  }

  public static synchronized int threads() {
    return Math.max(1, requested);
  }

  private static synchronized ForkJoinPool pool() {
    if (pool == null) {
      pool = new ForkJoinPool(threads());
    }
    return pool;
  }

  /** {@code body.accept(i)} for {@code i in [0, tasks)}, in parallel; returns when all are done. */
  public static void forEach(int tasks, IntConsumer body) {
    if (tasks <= 0) {
      return;
    }
    ForkJoinPool p = pool();
    if (tasks == 1 || p.getParallelism() <= 1) {
      for (int i = 0; i < tasks; i++) {
        body.accept(i);
      }
      return;
    }
    if (ForkJoinTask.getPool() == p) { // nested: already on a worker
      IntStream.range(0, tasks).parallel().forEach(body);
      return;
    }
    p.submit(() -> IntStream.range(0, tasks).parallel().forEach(body)).join();
  }
}
