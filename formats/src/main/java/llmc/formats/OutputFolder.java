package llmc.formats;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.HexFormat;
import java.util.concurrent.ThreadLocalRandom;

/** A temporary folder next to the target, renamed into place only when complete. */
public final class OutputFolder implements AutoCloseable {

  private final Path target;
  private final Path temp;
  private final boolean overwrite;
  private boolean committed;

  private OutputFolder(Path target, Path temp, boolean overwrite) {
    this.target = target;
    this.temp = temp;
    this.overwrite = overwrite;
  }

  /** Temp folder: {@code .<name>.tmp-<pid>-<random>} beside the target. */
  public static OutputFolder create(Path target, boolean overwrite) {
    Path absolute = target.toAbsolutePath().normalize();
    if (absolute.getFileName() == null) {
      throw new BadInputException(target + ": not a usable output folder");
    }
    checkTarget(target, absolute, overwrite);
    try {
      Files.createDirectories(absolute.getParent());
      Path temp = absolute.resolveSibling("." + absolute.getFileName() + ".tmp-" + uniqueSuffix());
      Files.createDirectory(temp);
      return new OutputFolder(absolute, temp, overwrite);
    } catch (IOException e) {
      throw new BadInputException(target + ": cannot create output folder: " + e.getMessage(), e);
    }
  }

  private static void checkTarget(Path given, Path absolute, boolean overwrite) {
    if (!Files.exists(absolute, LinkOption.NOFOLLOW_LINKS)) {
      return;
    }
    if (!overwrite) {
      throw new InvalidSettingException(
          "{out} %s already exists; set {overwrite} or remove it", given);
    }
    if (!Files.isDirectory(absolute, LinkOption.NOFOLLOW_LINKS)) {
      throw new BadInputException(
          given + " exists and is not a folder; remove it or choose another output");
    }
  }

  private static String uniqueSuffix() {
    return ProcessHandle.current().pid()
        + "-"
        + HexFormat.of().toHexDigits(ThreadLocalRandom.current().nextInt());
  }

  /** Where to write now. */
  public Path dir() {
    return temp;
  }

  public Path target() {
    return target;
  }

  /**
   * Moves the finished folder into place; an existing target (with overwrite) is moved aside, then
   * deleted.
   */
  public void commit() {
    if (committed) {
      return;
    }
    checkTarget(target, target, overwrite);
    try {
      if (Files.exists(target, LinkOption.NOFOLLOW_LINKS)) {
        Path old = target.resolveSibling("." + target.getFileName() + ".old-" + uniqueSuffix());
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
