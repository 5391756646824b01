package llmc.pipeline;

/**
 * Told how a stage is getting on: {@code done} of {@code total} units of a task ("gptq: layer",
 * "eval: window"). Called from the stage's thread; must be cheap.
 */
@FunctionalInterface
public interface Progress {
  /** Ignores everything. */
  Progress NONE = (task, done, total) -> {};

  void update(String task, long done, long total);

  /** The task is over (a terminal clears its progress line). */
  default void finished() {}
}
