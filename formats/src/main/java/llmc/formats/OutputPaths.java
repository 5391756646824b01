package llmc.formats;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Collection;
import java.util.List;

/**
 * The one rule every writer checks before it writes: an output never overlaps an input. The target
 * may not be an input, contain one (replacing it would delete the input) or lie inside one (writing
 * into a model folder). Paths are compared as real paths, so that {@code .}, {@code ..}, relative
 * paths and symbolic links name the same place however they are spelled.
 */
public final class OutputPaths {

  private OutputPaths() {}

  /**
   * Refuses, with an {@link InvalidSettingException} naming {@code {setting}}, a {@code target}
   * that equals, contains or lies inside any of {@code inputs}. The target is compared as the
   * writers use it (absolute, normalized) with links resolved; inputs with links resolved. A path
   * that does not exist yet is resolved through its nearest existing ancestor.
   *
   * @param setting the target's setting as the library names it ({@code out}, {@code saveStats})
   */
  public static void checkDisjoint(Path target, Collection<Path> inputs, String setting) {
    Path realTarget = realPath(target.toAbsolutePath().normalize());
    for (Path input : List.copyOf(inputs)) {
      Path realInput = realPath(input);
      String why;
      if (realTarget.equals(realInput)) {
        why = "is the input %s; llmc never writes over its input";
      } else if (realInput.startsWith(realTarget)) {
        why = "contains the input %s; replacing it would delete the input";
      } else if (realTarget.startsWith(realInput)) {
        why = "lies inside the input %s; llmc does not write into its input";
      } else {
        continue;
      }
      throw new InvalidSettingException(
          "{" + setting + "} %s " + why + ": choose another {" + setting + "} outside the input",
          shown(target, realTarget),
          shown(input, realInput));
    }
  }

  /**
   * The real path of {@code path}: {@link Path#toRealPath} when it exists; else symbolic links
   * resolved in its nearest existing ancestor and the names below it appended.
   */
  public static Path realPath(Path path) {
    try {
      if (Files.exists(path)) {
        return path.toRealPath();
      }
    } catch (IOException e) {
      throw new BadInputException(path + ": cannot resolve its real path: " + e.getMessage(), e);
    }
    Path absolute = path.toAbsolutePath().normalize();
    Path existing = absolute;
    while (existing != null && !Files.exists(existing)) {
      existing = existing.getParent();
    }
    if (existing == null) {
      return absolute;
    }
    try {
      return existing.toRealPath().resolve(existing.relativize(absolute)).normalize();
    } catch (IOException e) {
      throw new BadInputException(path + ": cannot resolve its real path: " + e.getMessage(), e);
    }
  }

  /** The path as given, and where it really is when links or relative names make them differ. */
  private static String shown(Path given, Path real) {
    return given.equals(real) ? given.toString() : given + " (" + real + ")";
  }
}
