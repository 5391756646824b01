package llmc.calibration;

import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import llmc.formats.BadInputException;
import llmc.formats.DType;
import llmc.formats.InvalidSettingException;
import llmc.formats.OutputFolder;
import llmc.formats.SafetensorsFile;
import llmc.formats.SafetensorsWriter;
import llmc.model.Linear;

/**
 * Calibration statistics on disk, to calibrate once and compress many times: a folder with {@code
 * statistics.safetensors} holding, per layer and activation, {@code S = sum_t x_t x_t^T} as {@code
 * model.layers.{i}.{activation}.xxt} (F32 {@code [in, in]}); the metadata says how many tokens were
 * summed and where they came from.
 *
 * <p>{@link Writer} replaces an existing folder only when it is such a statistics folder, and never
 * one that overlaps the model it was computed from.
 */
public final class StatisticsStore implements AutoCloseable {
  public static final String FILE = "statistics.safetensors";
  private final SafetensorsFile file;
  private final long tokens;

  private StatisticsStore(SafetensorsFile file) {
    this.file = file;
    String count = file.metadata().get("tokens");
    long parsed = -1;
    try {
      parsed = count == null ? -1 : Long.parseLong(count);
    } catch (NumberFormatException e) {
      // refused below
    }
    if (parsed < 0) {
      throw new BadInputException(
          file.path()
              + ": no token count ('tokens') in the metadata; not statistics saved by llmc");
    }
    this.tokens = parsed;
  }

  public static StatisticsStore open(Path dir) {
    Path path = dir.resolve(FILE);
    if (!Files.isRegularFile(path)) {
      throw new InvalidSettingException("%s: no %s; make one with {saveStats}", dir, FILE);
    }
    SafetensorsFile file = SafetensorsFile.open(path);
    try {
      return new StatisticsStore(file);
    } catch (RuntimeException e) {
      file.close();
      throw e;
    }
  }

  /**
   * Whether {@code dir} is a statistics folder llmc wrote: it holds {@value #FILE} (a file, not a
   * link) with llmc's metadata (the token count).
   */
  public static boolean isStatisticsFolder(Path dir) {
    if (!Files.isRegularFile(dir.resolve(FILE), LinkOption.NOFOLLOW_LINKS)) {
      return false;
    }
    try (StatisticsStore store = open(dir)) {
      return true;
    } catch (BadInputException e) {
      return false;
    }
  }

  /** A statistics folder: {@code {saveStats}}, recognized by {@link #isStatisticsFolder}. */
  static final OutputFolder.Kind FOLDER =
      new OutputFolder.Kind(
          "saveStats", FILE + " with llmc's metadata", StatisticsStore::isStatisticsFolder);

  public static String tensorName(int layer, Linear.Input input) {
    return "model.layers." + layer + "." + input.name().toLowerCase() + ".xxt";
  }

  public Map<String, String> metadata() {
    return file.metadata();
  }

  /** The statistics of one activation, as they were saved. */
  public InputStatistics load(int layer, Linear.Input input, int width) {
    String name = tensorName(layer, input);
    if (!file.contains(name)) {
      throw new BadInputException(
          file.path() + ": no statistics for '" + name + "'; were they saved for this model?");
    }
    long[] shape = file.info(name).shape();
    if (shape.length != 2 || shape[0] != width || shape[1] != width) {
      throw new BadInputException(
          file.path()
              + ": '"
              + name
              + "' is "
              + java.util.Arrays.toString(shape)
              + ", this model needs ["
              + width
              + ", "
              + width
              + "]");
    }
    return InputStatistics.of(width, file.floats(name), tokens);
  }

  @Override
  public void close() {
    file.close();
  }

  /** Writes statistics layer by layer into a folder that appears only when complete. */
  public static final class Writer implements AutoCloseable {
    private final OutputFolder folder;
    private final SafetensorsWriter writer;

    /** Without inputs to protect: {@link #Writer(Path, long, Map, Collection)} with none. */
    public Writer(Path dir, long tokens, Map<String, String> metadata) {
      this(dir, tokens, metadata, List.of());
    }

    /**
     * Statistics into {@code dir}, which may not overlap {@code inputs} (the model folder); an
     * existing {@code dir} is replaced, once the new statistics are complete, only when it is a
     * statistics folder llmc wrote ({@link #isStatisticsFolder}); any other is refused.
     */
    public Writer(Path dir, long tokens, Map<String, String> metadata, Collection<Path> inputs) {
      Map<String, String> all = new TreeMap<>(metadata);
      all.put("tokens", Long.toString(tokens));
      this.folder = OutputFolder.create(dir, true, inputs, FOLDER);
      try {
        this.writer = new SafetensorsWriter(folder.dir(), 0, all);
      } catch (RuntimeException e) {
        folder.close();
        throw e;
      }
    }

    public void add(int layer, Linear.Input input, InputStatistics stats) {
      writer.writeFloats(
          tensorName(layer, input),
          DType.F32,
          new long[] {stats.width(), stats.width()},
          stats.sum());
    }

    public void finish() {
      writer.finish();
      try {
        Files.move(folder.dir().resolve("model.safetensors"), folder.dir().resolve(FILE));
      } catch (java.io.IOException e) {
        throw new java.io.UncheckedIOException(e);
      }
      folder.commit();
    }

    @Override
    public void close() {
      writer.close();
      folder.close();
    }
  }
}
