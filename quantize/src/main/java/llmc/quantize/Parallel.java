package llmc.quantize;

import java.util.concurrent.ForkJoinPool;
import java.util.concurrent.ForkJoinTask;
import java.util.function.IntConsumer;
import java.util.stream.IntStream;

/**
 * Runs independent tasks on a fixed pool ({@code -Dllmc.threads=T}, default: all processors). Every
 * output element is written by exactly one task whose arithmetic does not depend on the thread that
 * runs it, so results are identical for any thread count and schedule.
 */
final class Parallel {
  static final int THREADS = Integer.getInteger("llmc.threads", Runtime.getRuntime().availableProcessors());
  private static final ForkJoinPool POOL = new ForkJoinPool(Math.max(1, THREADS));

  private Parallel() {
  }

  /** {@code body.accept(i)} for {@code i in [0, tasks)}, in parallel; returns when all are done. */
  static void forEach(int tasks, IntConsumer body) {
    if (tasks <= 0) {
      return;
    }
    if (tasks == 1 || THREADS <= 1) {
      for (int i = 0; i < tasks; i++) {
        body.accept(i);
      }
      return;
    }
    if (ForkJoinTask.getPool() == POOL) {   // nested: already on a worker
      IntStream.range(0, tasks).parallel().forEach(body);
      return;
    }
    POOL.submit(() -> IntStream.range(0, tasks).parallel().forEach(body)).join();
  }
}
