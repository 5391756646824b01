package llmc.formats;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.Collection;
import java.util.List;
import java.util.function.Predicate;

/**
 * A temporary folder next to the target, renamed into place only when complete. The target never
 * overlaps an input ({@link OutputPaths#checkDisjoint}); an existing target is replaced only with
 * {@code overwrite}, only when llmc wrote it (it holds the {@link Kind}'s mark, for outputs {@value
 * #REPORT}), and only by {@link #commit()}, once the new folder is complete.
 */
public final class OutputFolder implements AutoCloseable {

  /** The report every output folder llmc writes holds: what marks a folder as llmc's own. */
  public static final String REPORT = "llmc-report.json";

  /**
   * What an output folder is: the setting that names it in messages ({@code out}), and how a folder
   * that llmc wrote, which {@code overwrite} may replace, is recognized.
   *
   * @param setting the target's setting as the library names it
   * @param mark what such a folder holds, for messages ("llmc-report.json")
   * @param isLlmcFolder whether an existing folder holds the mark
   */
  public record Kind(String setting, String mark, Predicate<Path> isLlmcFolder) {
    /** A model folder llmc writes: {@code {out}}, recognized by its {@value #REPORT}. */
    public static final Kind OUTPUT =
        new Kind(
            "out",
            REPORT,
            dir -> Files.isRegularFile(dir.resolve(REPORT), LinkOption.NOFOLLOW_LINKS));
  }

  private final Path target;
  private final Path temp;
  private final boolean overwrite;
  private final List<Path> inputs;
  private final Kind kind;
  private boolean committed;

  private OutputFolder(Path target, Path temp, boolean overwrite, List<Path> inputs, Kind kind) {
    this.target = target;
    this.temp = temp;
    this.overwrite = overwrite;
    this.inputs = inputs;
    this.kind = kind;
  }

  /** Without inputs to protect: {@link #create(Path, boolean, Collection)} with none. */
  public static OutputFolder create(Path target, boolean overwrite) {
    return create(target, overwrite, List.of());
  }

  /** An output model folder ({@link Kind#OUTPUT}) that must not overlap {@code inputs}. */
  public static OutputFolder create(Path target, boolean overwrite, Collection<Path> inputs) {
    return create(target, overwrite, inputs, Kind.OUTPUT);
  }

  /**
   * Temp folder: {@code .<name>.tmp-<pid>-<random>} beside the target; such folders (and previous
   * outputs moved aside) left by killed runs are removed first ({@link
   * FileTrees#removeStaleSiblings}). Refused: a target that overlaps an input; an existing target
   * without {@code overwrite}, that is not a folder, or that {@code kind} does not recognize as
   * llmc's.
   */
  public static OutputFolder create(
      Path target, boolean overwrite, Collection<Path> inputs, Kind kind) {
    Path absolute = target.toAbsolutePath().normalize();
    if (absolute.getFileName() == null) {
      throw new BadInputException(target + ": not a usable output folder");
    }
    List<Path> protectedInputs = List.copyOf(inputs);
    OutputPaths.checkDisjoint(target, protectedInputs, kind.setting());
    FileTrees.removeStaleSiblings(absolute, protectedInputs);
    checkTarget(target, absolute, overwrite, protectedInputs, kind);
    try {
      Files.createDirectories(absolute.getParent());
      Path temp = FileTrees.sibling(absolute, FileTrees.Sibling.TMP);
      Files.createDirectory(temp);
      return new OutputFolder(absolute, temp, overwrite, protectedInputs, kind);
    } catch (IOException e) {
      throw new BadInputException(target + ": cannot create output folder: " + e.getMessage(), e);
    }
  }

  private static void checkTarget(
      Path given, Path absolute, boolean overwrite, List<Path> inputs, Kind kind) {
    OutputPaths.checkDisjoint(given, inputs, kind.setting());
    if (!Files.exists(absolute, LinkOption.NOFOLLOW_LINKS)) {
      return;
    }
    String out = "{" + kind.setting() + "}";
    if (!overwrite) {
      throw new InvalidSettingException(
          out + " %s already exists; set {overwrite} or remove it", given);
    }
    if (!Files.isDirectory(absolute, LinkOption.NOFOLLOW_LINKS)) {
      throw new InvalidSettingException(
          out + " %s exists and is not a folder; remove it or choose another " + out, given);
    }
    if (!kind.isLlmcFolder().test(absolute)) {
      throw new InvalidSettingException(
          out
              + " %s exists and llmc did not write it (it holds no %s); llmc replaces only its own"
              + " outputs: remove it yourself or choose another "
              + out,
          given,
          kind.mark());
    }
  }

  /** Where to write now. */
  public Path dir() {
    return temp;
  }

  public Path target() {
    return target;
  }

  /**
   * Moves the finished folder into place, after checking the target again; an existing target (with
   * overwrite, written by llmc) is moved aside, then deleted. Before this, an existing target is
   * left as it was.
   */
  public void commit() {
    if (committed) {
      return;
    }
    checkTarget(target, target, overwrite, inputs, kind);
    try {
      if (Files.exists(target, LinkOption.NOFOLLOW_LINKS)) {
        Path old = FileTrees.sibling(target, FileTrees.Sibling.OLD);
        FileTrees.move(target, old);
        FileTrees.move(temp, target);
        committed = true;
        FileTrees.deleteRecursively(old);
      } else {
        FileTrees.move(temp, target);
        committed = true;
      }
    } catch (IOException e) {
      throw new UncheckedIOException("cannot move " + temp + " to " + target, e);
    }
  }

  /** Without commit(): deletes the temporary folder and everything in it. */
  @Override
  public void close() {
    if (!committed) {
      FileTrees.deleteRecursively(temp);
    }
  }
}
