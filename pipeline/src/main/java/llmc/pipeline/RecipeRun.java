package llmc.pipeline;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.stream.Stream;
import llmc.formats.BadInputException;
import llmc.formats.FileTrees;
import llmc.formats.InvalidSettingException;
import llmc.formats.Json;
import llmc.formats.OutputFolder;
import llmc.formats.OutputPaths;

/**
 * A recipe's stages run one after the other over a work folder, resumable, with the last model
 * published atomically. Each stage's output stays in the work folder beside a record ({@code
 * N-command.stage.json}: its command line, the SHA-256 of every input, the SHA-256 of its output
 * and its report); with {@link Settings#resume} a stage is reused while its record still matches,
 * and everything after the first stage that runs again runs again. When every stage succeeded, the
 * output folder receives the last model (hard links), one {@code llmc-report.json} for the whole
 * run and the run's model card; when a stage fails, the run stops with its exit code, the output is
 * not written and the report is left in the work folder.
 *
 * <p>What a stage does is the front end's business ({@link Executor}): the command line calls
 * {@code llmc COMMAND ...}; this class only orders, records, checks and publishes.
 */
public final class RecipeRun {
  /** Marks a work folder as a recipe run's, which a new run may clear. */
  public static final String WORK_MARK = "recipe-work.json";

  /** A stage's exit code when it succeeded. */
  public static final int OK = 0;

  private RecipeRun() {}

  /**
   * One stage as planned.
   *
   * @param name its name in the work folder and the report ({@code 2-quantize})
   * @param commandLine the command and its options as the front end runs it: recorded, and compared
   *     on resume
   * @param inputs every path the stage reads (models and data)
   * @param output where it writes (a folder, or a GGUF file), or null ({@code eval})
   * @param threads the thread count the run gives the stage (recorded and compared on resume), or
   *     null when the stage's own options set it or none is given
   */
  public record Stage(
      String name, List<String> commandLine, List<Path> inputs, Path output, Integer threads) {
    public Stage {
      if (name == null || !name.matches("[0-9]+-[a-z-]+")) {
        throw new InvalidSettingException("stage name %s is not N-command", name);
      }
      if (commandLine == null || commandLine.isEmpty()) {
        throw new InvalidSettingException("stage %s has no command line", name);
      }
      commandLine = List.copyOf(commandLine);
      inputs = List.copyOf(inputs);
    }

    /** The command ({@code quantize}). */
    public String command() {
      return commandLine.get(0);
    }
  }

  /**
   * A run.
   *
   * @param recipe the recipe file (its SHA-256 goes in the report)
   * @param model the recipe's input model
   * @param out the output folder
   * @param work the work folder (the stages' outputs and records)
   * @param overrides the overrides the front end applied, as given ({@code quantize.bits=3})
   * @param stages in order
   * @param resume reuse the work folder's stages whose records still match
   * @param overwrite replace {@code out} if llmc wrote it
   * @param version llmc's version, for the report
   */
  public record Settings(
      Path recipe,
      Path model,
      Path out,
      Path work,
      List<String> overrides,
      List<Stage> stages,
      boolean resume,
      boolean overwrite,
      String version) {
    public Settings {
      Objects.requireNonNull(recipe, "recipe");
      Objects.requireNonNull(model, "model");
      Objects.requireNonNull(out, "out");
      Objects.requireNonNull(work, "work");
      if (stages == null || stages.isEmpty()) {
        throw new InvalidSettingException("recipe %s has no stages", recipe);
      }
      overrides = List.copyOf(overrides);
      stages = List.copyOf(stages);
      // The work folder is cleared by a new run: it may hold nothing the run reads but what its
      // own stages wrote.
      List<Path> read = new ArrayList<>(List.of(model, out));
      List<Path> written = new ArrayList<>();
      for (Stage s : stages) {
        s.inputs().stream().filter(i -> !written.contains(i)).forEach(read::add);
        if (s.output() != null) {
          written.add(s.output());
        }
      }
      OutputPaths.checkDisjoint(work, read, "work");
    }

    /** The stage whose output the run publishes: the last that writes one, or null. */
    public Stage last() {
      Stage last = null;
      for (Stage s : stages) {
        if (s.output() != null) {
          last = s;
        }
      }
      return last;
    }
  }

  /** How a front end runs one stage. */
  @FunctionalInterface
  public interface Executor {
    /**
     * Runs the stage, writing its output.
     *
     * @param overwrite whether the output exists (an earlier run's, in the work folder) and is to
     *     be replaced
     * @return its exit code ({@link #OK} or the front end's code for the failure) and its report as
     *     JSON (null when it wrote none)
     */
    Outcome execute(Stage stage, boolean overwrite);
  }

  /** What a stage ended with. */
  public record Outcome(int exitCode, JsonNode report) {}

  /** Told of every stage that ended well. */
  @FunctionalInterface
  public interface Listener {
    void stageEnded(Stage stage, boolean reused, double seconds);
  }

  /**
   * What the run ended with.
   *
   * @param exitCode {@link #OK}, or the failed stage's code
   * @param report the run's report (as stored: no wall times)
   * @param shown the stages' records with {@code reused} and {@code seconds}, for a front end's
   *     {@code --json}
   * @param reportFile where the report was stored (in the output folder, or the work folder when a
   *     stage failed)
   * @param failed the stage that failed, or null
   */
  public record Result(
      int exitCode, ObjectNode report, List<ObjectNode> shown, Path reportFile, Stage failed) {}

  /** Runs the stages; see the class comment. */
  public static Result run(Settings settings, Executor executor, Listener listener) {
    Hashes hashes = new Hashes();
    // The output is checked now, not after hours of work; it is written last.
    try (OutputFolder target =
        OutputFolder.create(settings.out(), settings.overwrite(), List.of(settings.model()))) {
      prepareWork(settings);
      ObjectNode report = Json.mapper().createObjectNode();
      report.put("command", "run");
      report.put("llmc_version", settings.version());
      report.put("recipe", settings.recipe().toAbsolutePath().toString());
      report.put("recipe_sha256", hashes.of(settings.recipe()));
      ArrayNode overrides = report.putArray("set");
      settings.overrides().forEach(overrides::add);
      report.put("model", settings.model().toString());
      report.put("model_sha256", hashes.of(settings.model()));
      ArrayNode stages = report.putArray("stages");
      List<ObjectNode> shown = new ArrayList<>();
      Map<Path, String> outputs = new HashMap<>();
      boolean reusing = settings.resume();
      for (Stage stage : settings.stages()) {
        ObjectNode inputs = Json.mapper().createObjectNode();
        for (Path input : stage.inputs()) {
          inputs.put(input.toString(), outputs.getOrDefault(input, hashes.of(input)));
        }
        Path recordFile = settings.work().resolve(stage.name() + ".stage.json");
        ObjectNode record = reusing ? reusable(recordFile, stage, inputs, hashes) : null;
        reusing = record != null;
        long start = System.nanoTime();
        if (record == null) {
          boolean overwrite =
              stage.output() != null && Files.exists(stage.output(), LinkOption.NOFOLLOW_LINKS);
          Outcome outcome = executor.execute(stage, overwrite);
          record = record(stage, inputs);
          if (outcome.exitCode() != OK) {
            record.put("exit_code", outcome.exitCode());
            if (outcome.report() != null) {
              record.set("report", stored(outcome.report()));
            }
            stages.add(record);
            report.put("exit_code", outcome.exitCode());
            report.put("failed_stage", stage.name());
            Path file = settings.work().resolve(OutputFolder.REPORT);
            write(file, report);
            return new Result(outcome.exitCode(), report, shown, file, stage);
          }
          record.set("report", outcome.report() == null ? null : stored(outcome.report()));
          if (stage.output() != null) {
            record.put("output_sha256", hashes.of(stage.output()));
          }
          write(recordFile, record);
        }
        if (stage.output() != null) {
          outputs.put(stage.output(), record.get("output_sha256").asText());
        }
        stages.add(record);
        double seconds = (System.nanoTime() - start) / 1e9;
        ObjectNode line = record.deepCopy();
        line.put("reused", reusing);
        line.put("seconds", seconds);
        shown.add(line);
        listener.stageEnded(stage, reusing, seconds);
      }
      Stage last = settings.last();
      if (last != null) {
        report.put("final_stage", last.name());
        report.put("final_model_sha256", outputs.get(last.output()));
        link(last.output(), target.dir());
        ModelCard.store(ModelCard.of(settings, report), target.dir());
        report.put("out_sha256", sha256(target.dir())); // the stage's files and the run's card
      }
      report.put("exit_code", OK);
      write(target.dir().resolve(OutputFolder.REPORT), report);
      write(settings.work().resolve(OutputFolder.REPORT), report);
      target.commit();
      return new Result(OK, report, shown, settings.out().resolve(OutputFolder.REPORT), null);
    }
  }

  /**
   * SHA-256 of a file, or of a folder: of its files' relative names and SHA-256s in name order,
   * without llmc-report.json (which names paths).
   */
  public static String sha256(Path path) {
    try {
      if (!Files.isDirectory(path)) {
        return digest(path);
      }
      MessageDigest md = MessageDigest.getInstance("SHA-256");
      List<Path> files;
      try (Stream<Path> walk = Files.walk(path)) {
        files =
            walk.filter(Files::isRegularFile)
                .filter(f -> !f.equals(path.resolve(OutputFolder.REPORT)))
                .sorted()
                .toList();
      }
      for (Path f : files) {
        md.update(
            (path.relativize(f).toString().replace('\\', '/') + " " + digest(f) + "\n")
                .getBytes(StandardCharsets.UTF_8));
      }
      return HexFormat.of().formatHex(md.digest());
    } catch (IOException e) {
      throw new BadInputException(path + ": cannot read: " + e.getMessage(), e);
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  /** SHA-256s memoized for one run (the inputs do not change under it). */
  private static final class Hashes {
    private final Map<Path, String> known = new HashMap<>();

    String of(Path path) {
      return known.computeIfAbsent(path.toAbsolutePath().normalize(), RecipeRun::sha256);
    }
  }

  /** A stage's record before it runs: what decides whether it may be reused. */
  private static ObjectNode record(Stage stage, ObjectNode inputs) {
    ObjectNode s = Json.mapper().createObjectNode();
    s.put("stage", stage.name());
    ArrayNode commandLine = s.putArray("command_line");
    stage.commandLine().forEach(commandLine::add);
    if (stage.threads() != null) {
      s.put("threads", stage.threads());
    }
    s.set("inputs", inputs);
    if (stage.output() != null) {
      s.put("output", stage.output().toString());
    }
    return s;
  }

  /**
   * The stage's record if it can be reused: same command line, threads and inputs; output intact.
   */
  private static ObjectNode reusable(
      Path recordFile, Stage stage, ObjectNode inputs, Hashes hashes) {
    if (!Files.isRegularFile(recordFile, LinkOption.NOFOLLOW_LINKS)) {
      return null;
    }
    JsonNode stored;
    try {
      stored = Json.mapper().readTree(Files.readString(recordFile));
    } catch (IOException e) {
      return null; // unreadable or torn: run the stage again
    }
    ObjectNode expected = record(stage, inputs);
    if (!(stored instanceof ObjectNode r)
        || !r.path("command_line").equals(expected.path("command_line"))
        || !r.path("inputs").equals(inputs)
        || !r.path("threads").equals(expected.path("threads"))) {
      return null;
    }
    if (stage.output() != null
        && (!Files.exists(stage.output(), LinkOption.NOFOLLOW_LINKS)
            || !r.path("output_sha256").asText().equals(hashes.of(stage.output())))) {
      return null;
    }
    return r;
  }

  /** The work folder: kept on resume; otherwise cleared if a run made it, refused if not. */
  private static void prepareWork(Settings settings) {
    Path work = settings.work();
    try {
      if (Files.exists(work, LinkOption.NOFOLLOW_LINKS)) {
        if (!Files.isRegularFile(work.resolve(WORK_MARK), LinkOption.NOFOLLOW_LINKS)) {
          throw new InvalidSettingException(
              "{work} %s exists and llmc run did not make it (no %s): remove it or choose another"
                  + " {work}",
              work, WORK_MARK);
        }
        if (settings.resume()) {
          return;
        }
        FileTrees.deleteRecursively(work);
      }
      Files.createDirectories(work);
      ObjectNode mark = Json.mapper().createObjectNode();
      mark.put("recipe", settings.recipe().toAbsolutePath().toString());
      write(work.resolve(WORK_MARK), mark);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot prepare the work folder " + work, e);
    }
  }

  /**
   * A stage's report as its llmc-report.json holds it: no wall times anywhere, no output path, no
   * evaluation speed.
   */
  private static JsonNode stored(JsonNode report) {
    if (report instanceof ObjectNode o) {
      ObjectNode copy = Reports.withoutTimes(o.deepCopy());
      copy.remove("out");
      copy.remove("tokens_per_second");
      return copy;
    }
    return report;
  }

  private static String digest(Path file) throws IOException, NoSuchAlgorithmException {
    MessageDigest md = MessageDigest.getInstance("SHA-256");
    try (InputStream in = Files.newInputStream(file)) {
      byte[] buffer = new byte[1 << 20];
      for (int n; (n = in.read(buffer)) > 0; ) {
        md.update(buffer, 0, n);
      }
    }
    return HexFormat.of().formatHex(md.digest());
  }

  /**
   * The final stage's output in the output folder: its files hard-linked (copied where links fail),
   * but its report and card, which the run's replace; a GGUF file as {@code model.gguf}.
   */
  private static void link(Path output, Path into) {
    try {
      if (!Files.isDirectory(output)) {
        linkOrCopy(output, into.resolve("model.gguf"));
        return;
      }
      try (Stream<Path> walk = Files.walk(output)) {
        for (Path f : walk.sorted().toList()) {
          Path to = into.resolve(output.relativize(f).toString());
          if (Files.isDirectory(f)) {
            Files.createDirectories(to);
          } else if (!f.equals(output.resolve(OutputFolder.REPORT))
              && !f.equals(output.resolve(ModelCard.FILE))) {
            linkOrCopy(f, to);
          }
        }
      }
    } catch (IOException e) {
      throw new UncheckedIOException("cannot place " + output + " in " + into, e);
    }
  }

  private static void linkOrCopy(Path from, Path to) throws IOException {
    try {
      Files.createLink(to, from);
    } catch (IOException | UnsupportedOperationException e) {
      Files.copy(from, to);
    }
  }

  private static void write(Path file, JsonNode node) {
    try {
      Files.writeString(
          file, Json.mapper().writerWithDefaultPrettyPrinter().writeValueAsString(node) + "\n");
    } catch (IOException e) {
      throw new UncheckedIOException("cannot write " + file, e);
    }
  }
}
