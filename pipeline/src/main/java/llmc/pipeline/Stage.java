package llmc.pipeline;

/**
 * One of llmc's jobs, callable from Java: settings that checked themselves in, a typed report out.
 * The command line is one front end over the stages; a recipe runner or a JVM program is another.
 *
 * @param <S> the settings record
 * @param <R> the report record
 */
@FunctionalInterface
public interface Stage<S, R> {
  R run(S settings, Progress progress);

  default R run(S settings) {
    return run(settings, Progress.NONE);
  }
}
