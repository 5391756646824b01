package llmc.formats;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.FileVisitResult;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.SimpleFileVisitor;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HexFormat;
import java.util.List;
import java.util.concurrent.ThreadLocalRandom;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/** File-system helpers shared by the writers. */
public final class FileTrees {

  private FileTrees() {}

  /** Deletes a file or a folder tree; symbolic links are removed, never followed. */
  public static void deleteRecursively(Path root) {
    if (!Files.exists(root, java.nio.file.LinkOption.NOFOLLOW_LINKS)) {
      return;
    }
    try {
      Files.walkFileTree(
          root,
          new SimpleFileVisitor<>() {
            @Override
            public FileVisitResult visitFile(Path file, BasicFileAttributes attrs)
                throws IOException {
              Files.delete(file);
              return FileVisitResult.CONTINUE;
            }

            @Override
            public FileVisitResult postVisitDirectory(Path dir, IOException e) throws IOException {
              if (e != null) {
                throw e;
              }
              Files.delete(dir);
              return FileVisitResult.CONTINUE;
            }
          });
    } catch (IOException e) {
      throw new UncheckedIOException("cannot delete " + root, e);
    }
  }

  static void deleteQuietly(Path file) {
    try {
      Files.deleteIfExists(file);
    } catch (IOException ignored) {
      // best effort on a cleanup path
    }
  }

  /** A rename, atomic where the file system allows it. */
  static void move(Path from, Path to) throws IOException {
    try {
      Files.move(from, to, StandardCopyOption.ATOMIC_MOVE);
    } catch (AtomicMoveNotSupportedException e) {
      Files.move(from, to);
    }
  }

  /**
   * What a writer puts beside its target: the temporary output, or the previous one moved aside.
   */
  public enum Sibling {
    TMP("tmp"),
    OLD("old");

    private final String word;

    Sibling(String word) {
      this.word = word;
    }
  }

  /**
   * {@code .<name>.<tmp|old>-<pid>-<8 hex digits>} beside {@code target}: the process that owns it
   * is in its name, so that a later run can tell a sibling left by a killed run ({@link
   * #removeStaleSiblings}) from one that a running process writes.
   */
  public static Path sibling(Path target, Sibling kind) {
    return target.resolveSibling(
        "."
            + target.getFileName()
            + "."
            + kind.word
            + "-"
            + ProcessHandle.current().pid()
            + "-"
            + HexFormat.of().toHexDigits(ThreadLocalRandom.current().nextInt()));
  }

  /**
   * Cleans up after killed runs that wrote {@code target} (absolute, normalized): every {@link
   * #sibling} whose process no longer runs on this machine is deleted, except that a previous
   * output moved aside by a run killed before it moved the new one in is moved back when the target
   * is missing. Siblings of running processes and anything that is or holds one of {@code inputs}
   * are left alone. Returns what was removed or restored, for the caller to report.
   */
  public static List<Path> removeStaleSiblings(Path target, Collection<Path> inputs) {
    Path parent = target.getParent();
    if (parent == null || !Files.isDirectory(parent)) {
      return List.of();
    }
    Pattern pattern =
        Pattern.compile(
            "\\."
                + Pattern.quote(target.getFileName().toString())
                + "\\.(tmp|old)-(\\d{1,19})-[0-9a-f]{8}");
    List<Path> stale = new ArrayList<>();
    try (Stream<Path> list = Files.list(parent)) {
      for (Path p : (Iterable<Path>) list::iterator) {
        Matcher m = pattern.matcher(p.getFileName().toString());
        if (m.matches() && !running(m.group(2)) && !holdsInput(p, inputs)) {
          stale.add(p);
        }
      }
    } catch (IOException e) {
      return List.of(); // best effort: nothing is cleaned rather than the run refused
    }
    stale.sort(null);
    List<Path> done = new ArrayList<>();
    for (Path p : stale) {
      try {
        boolean old = p.getFileName().toString().contains(".old-");
        if (old && !Files.exists(target, java.nio.file.LinkOption.NOFOLLOW_LINKS)) {
          move(p, target);
        } else {
          deleteRecursively(p);
        }
        done.add(p);
      } catch (IOException | UncheckedIOException e) {
        // best effort: another run may be cleaning up the same folder
      }
    }
    return done;
  }

  private static boolean running(String pid) {
    try {
      long id = Long.parseLong(pid);
      return id == ProcessHandle.current().pid()
          || ProcessHandle.of(id).map(ProcessHandle::isAlive).orElse(false);
    } catch (NumberFormatException e) {
      return true;
    }
  }

  private static boolean holdsInput(Path p, Collection<Path> inputs) {
    for (Path input : inputs) {
      Path in = input.toAbsolutePath().normalize();
      if (in.startsWith(p) || p.startsWith(in)) {
        return true;
      }
    }
    return false;
  }
}
