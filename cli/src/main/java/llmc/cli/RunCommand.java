package llmc.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.InputStream;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.io.UncheckedIOException;
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
import java.util.concurrent.Callable;
import java.util.stream.Stream;
import llmc.formats.BadInputException;
import llmc.formats.FileTrees;
import llmc.formats.Json;
import llmc.formats.OutputFolder;
import llmc.pipeline.Reports;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

@Command(
    name = "run",
    mixinStandardHelpOptions = true,
    sortOptions = false,
    description = {
      "Runs a recipe: a YAML list of stages (prune, distill, quantize, export, eval), each with its",
      "command's options under their long names without the dashes. Each stage's output is kept in",
      "a work folder (OUT.work); the last model written goes to OUT with one llmc-report.json for",
      "the whole run (every stage's settings and report, SHA-256 of inputs and outputs). Exit codes",
      "as the stages': 2 for a bad recipe or input, 3 when an eval stage's quality gate fails (then",
      "OUT is not written; the report is in the work folder)."
    },
    footer = {
      "",
      "Examples:",
      "  llmc run samples/recipes/gptq-4bit.yaml --out /tmp/stories-gptq",
      "  llmc run samples/recipes/minitron.yaml --out /tmp/minitron --set distill.steps=100 --dry-run",
      "  llmc run samples/recipes/wanda-2of4-then-gptq.yaml --out /tmp/w24 --resume"
    })
final class RunCommand implements Callable<Integer> {
  @Parameters(index = "0", paramLabel = "RECIPE", description = "The recipe (YAML).")
  Path recipe;

  @Option(
      names = "--model",
      paramLabel = "DIR",
      description = "The input model, instead of the recipe's model:.")
  Path model;

  @Option(
      names = "--out",
      paramLabel = "DIR",
      description = "The output folder, instead of the recipe's out:.")
  Path out;

  @Option(
      names = "--set",
      paramLabel = "STAGE.KEY=VALUE",
      description =
          "Override or add a stage's option (repeatable): quantize.bits=3, or by position 2.bits=3.")
  List<String> sets = new ArrayList<>();

  @Option(
      names = "--resume",
      description =
          "Reuse the work folder's stages whose inputs, options and output are unchanged; run the rest.")
  boolean resume;

  @Option(
      names = "--dry-run",
      description =
          "Check the whole recipe and print the plan (stages, inputs, outputs); run nothing.")
  boolean dryRun;

  @Option(names = "--overwrite", description = "Replace OUT if it exists (llmc's own output only).")
  boolean overwrite;

  @Option(
      names = "--work-dir",
      paramLabel = "DIR",
      description = "Where the stages' outputs go (default: OUT.work).")
  Path workDir;

  @Mixin CommonOptions common;

  @Spec CommandSpec spec;

  /** Marks a work folder as llmc run's, which a new run may clear. */
  static final String WORK_MARK = "recipe-work.json";

  private final Map<Path, String> hashes = new HashMap<>();

  @Override
  public Integer call() {
    PrintWriter stdout = spec.commandLine().getOut();
    PrintWriter stderr = spec.commandLine().getErr();
    Recipe parsed = Recipe.read(recipe);
    RecipePlan plan = RecipePlan.of(parsed, model, out, sets, workDir);
    if (dryRun) {
      ObjectNode p = planJson(plan);
      if (common.json) {
        common.print(stdout, p);
      } else {
        printPlan(stdout, plan);
      }
      return Llmc.OK;
    }
    // The output is checked now, not after hours of work; it is written last.
    try (OutputFolder target = OutputFolder.create(plan.out(), overwrite, List.of(plan.model()))) {
      prepareWork(plan);
      ObjectNode report = runReport(plan);
      ArrayNode stages = report.putArray("stages");
      List<ObjectNode> printed = new ArrayList<>();
      Map<Path, String> outputs = new HashMap<>();
      boolean reusing = resume;
      for (RecipePlan.Stage stage : plan.stages()) {
        ObjectNode inputs = Json.mapper().createObjectNode();
        for (Path input : stage.inputs()) {
          inputs.put(input.toString(), outputs.getOrDefault(input, hash(input)));
        }
        Path recordFile = plan.work().resolve(stage.name() + ".stage.json");
        ObjectNode record = reusing ? reusable(recordFile, stage, inputs) : null;
        reusing = record != null;
        long start = System.nanoTime();
        if (record == null) {
          StringWriter captured = new StringWriter();
          int code =
              Llmc.run(
                  new PrintWriter(captured, true),
                  stderr,
                  Llmc.Environment.of(spec),
                  arguments(stage));
          if (code != Llmc.OK) {
            ObjectNode failed = stageJson(stage, inputs);
            failed.put("exit_code", code);
            JsonNode partial = json(captured.toString());
            if (partial != null) {
              failed.set("report", withoutTimes(partial));
            }
            stages.add(failed);
            report.put("exit_code", code);
            report.put("failed_stage", stage.name());
            write(plan.work().resolve(OutputFolder.REPORT), report);
            if (common.json) {
              common.print(stdout, report);
            } else {
              stderr.println(
                  "llmc run: stage "
                      + stage.name()
                      + " failed (exit "
                      + code
                      + "); "
                      + (code == Llmc.QUALITY_GATE_FAILED ? "its quality gate failed; " : "")
                      + "the run's report is in "
                      + plan.work().resolve(OutputFolder.REPORT)
                      + "; "
                      + plan.out()
                      + " was not written");
            }
            return code;
          }
          record = stageJson(stage, inputs);
          JsonNode stageReport = json(captured.toString());
          record.set("report", stageReport == null ? null : withoutTimes(stageReport));
          if (stage.output() != null) {
            record.put("output_sha256", hash(stage.output()));
          }
          write(recordFile, record);
        }
        if (stage.output() != null) {
          outputs.put(stage.output(), record.get("output_sha256").asText());
        }
        stages.add(record);
        ObjectNode line = record.deepCopy();
        line.put("reused", record != null && reusing);
        line.put("seconds", (System.nanoTime() - start) / 1e9);
        printed.add(line);
        if (!common.json) {
          stderr.printf(
              "llmc run: %s %s (%.1f s)%n",
              stage.name(),
              reusing ? "reused (inputs and options unchanged)" : "done",
              (System.nanoTime() - start) / 1e9);
        }
      }
      RecipePlan.Stage last = null;
      for (RecipePlan.Stage s : plan.stages()) {
        if (s.output() != null) {
          last = s;
        }
      }
      if (last != null) {
        report.put("final_stage", last.name());
        report.put("final_model_sha256", outputs.get(last.output()));
        link(last.output(), target.dir());
      }
      report.put("exit_code", Llmc.OK);
      write(target.dir().resolve(OutputFolder.REPORT), report);
      write(plan.work().resolve(OutputFolder.REPORT), report);
      target.commit();
      if (common.json) {
        ObjectNode shown = report.deepCopy();
        ArrayNode shownStages = shown.putArray("stages");
        printed.forEach(shownStages::add);
        shown.put("out", plan.out().toString());
        common.print(stdout, shown);
      } else {
        stdout.println("wrote " + plan.out() + " (stages in " + plan.work() + ")");
      }
      return Llmc.OK;
    }
  }

  /** The stage's command line as llmc runs it: its own report as JSON on stdout. */
  private String[] arguments(RecipePlan.Stage stage) {
    List<String> args = stage.commandLine();
    if (stage.output() != null && Files.exists(stage.output(), LinkOption.NOFOLLOW_LINKS)) {
      args.add("--overwrite"); // a stage run again over its own earlier output
    }
    if (common.threads > 0 && !stage.args().contains("--threads")) {
      args.add("--threads");
      args.add(String.valueOf(common.threads));
    }
    if (common.quiet && !stage.args().contains("--quiet")) {
      args.add("--quiet");
    }
    args.add("--json");
    return args.toArray(String[]::new);
  }

  /**
   * The work folder: kept with {@code --resume}; otherwise cleared if llmc run made it, refused if
   * not.
   */
  private void prepareWork(RecipePlan plan) {
    Path work = plan.work();
    try {
      if (Files.exists(work, LinkOption.NOFOLLOW_LINKS)) {
        if (!Files.isRegularFile(work.resolve(WORK_MARK), LinkOption.NOFOLLOW_LINKS)) {
          throw new BadInputException(
              "--work-dir "
                  + work
                  + " exists and llmc run did not make it (no "
                  + WORK_MARK
                  + "): remove it or choose another --work-dir");
        }
        if (resume) {
          return;
        }
        FileTrees.deleteRecursively(work);
      }
      Files.createDirectories(work);
      ObjectNode mark = Json.mapper().createObjectNode();
      mark.put("recipe", plan.recipe().file().toAbsolutePath().toString());
      write(work.resolve(WORK_MARK), mark);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot prepare the work folder " + work, e);
    }
  }

  /** The stage's record if it can be reused: same command line and inputs, output unchanged. */
  private ObjectNode reusable(Path recordFile, RecipePlan.Stage stage, ObjectNode inputs) {
    if (!Files.isRegularFile(recordFile)) {
      return null;
    }
    JsonNode record = json(read(recordFile));
    if (!(record instanceof ObjectNode r)
        || !r.path("command_line").equals(commandLine(stage))
        || !r.path("inputs").equals(inputs)
        || !r.path("threads").equals(stageJson(stage, inputs).path("threads"))) {
      return null;
    }
    if (stage.output() != null
        && (!Files.exists(stage.output(), LinkOption.NOFOLLOW_LINKS)
            || !r.path("output_sha256").asText().equals(hash(stage.output())))) {
      return null;
    }
    return r;
  }

  private ObjectNode stageJson(RecipePlan.Stage stage, ObjectNode inputs) {
    ObjectNode s = Json.mapper().createObjectNode();
    s.put("stage", stage.name());
    s.set("command_line", commandLine(stage));
    if (common.threads > 0 && !stage.args().contains("--threads")) {
      s.put("threads", common.threads); // llmc run's --threads, which the stage ran with
    }
    s.set("inputs", inputs);
    if (stage.output() != null) {
      s.put("output", stage.output().toString());
    }
    return s;
  }

  private static ArrayNode commandLine(RecipePlan.Stage stage) {
    ArrayNode a = Json.mapper().createArrayNode();
    stage.commandLine().forEach(a::add);
    return a;
  }

  private ObjectNode runReport(RecipePlan plan) {
    ObjectNode r = Json.mapper().createObjectNode();
    r.put("command", "run");
    r.put("llmc_version", Llmc.Version.build());
    r.put("recipe", plan.recipe().file().toAbsolutePath().toString());
    r.put("recipe_sha256", hash(plan.recipe().file().toAbsolutePath()));
    ArrayNode overrides = r.putArray("set");
    sets.forEach(overrides::add);
    r.put("model", plan.model().toString());
    r.put("model_sha256", hash(plan.model()));
    return r;
  }

  /**
   * A stage's report as its llmc-report.json holds it (no wall times anywhere, no output path), nor
   * eval's speed.
   */
  private static JsonNode withoutTimes(JsonNode report) {
    if (report instanceof ObjectNode o) {
      ObjectNode copy = Reports.withoutTimes(o.deepCopy());
      copy.remove("out");
      copy.remove("tokens_per_second"); // eval's speed
      return copy;
    }
    return report;
  }

  /**
   * SHA-256 of a file, or of a folder: of its files' relative names and SHA-256s in name order,
   * without llmc-report.json (which names paths); memoized per run.
   */
  private String hash(Path path) {
    Path key = path.toAbsolutePath().normalize();
    return hashes.computeIfAbsent(key, RunCommand::sha256);
  }

  static String sha256(Path path) {
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
                .getBytes(java.nio.charset.StandardCharsets.UTF_8));
      }
      return HexFormat.of().formatHex(md.digest());
    } catch (IOException e) {
      throw new BadInputException(path + ": cannot read: " + e.getMessage(), e);
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
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

  /** The final stage's output in OUT: its files hard-linked (copied where links fail). */
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
          } else if (!f.equals(output.resolve(OutputFolder.REPORT))) {
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

  private static ObjectNode planJson(RecipePlan plan) {
    ObjectNode p = Json.mapper().createObjectNode();
    p.put("command", "run");
    p.put("dry_run", true);
    p.put("recipe", plan.recipe().file().toAbsolutePath().toString());
    p.put("model", plan.model().toString());
    p.put("out", plan.out().toString());
    p.put("work", plan.work().toString());
    ArrayNode stages = p.putArray("stages");
    for (RecipePlan.Stage s : plan.stages()) {
      ObjectNode o = stages.addObject();
      o.put("stage", s.name());
      o.set("command_line", commandLine(s));
      ArrayNode inputs = o.putArray("inputs");
      s.inputs().forEach(i -> inputs.add(i.toString()));
      if (s.output() != null) {
        o.put("output", s.output().toString());
      }
    }
    return p;
  }

  private static void printPlan(PrintWriter out, RecipePlan plan) {
    out.println("recipe " + plan.recipe().file() + ": " + plan.stages().size() + " stages");
    out.println("  model " + plan.model());
    for (RecipePlan.Stage s : plan.stages()) {
      out.println(
          "  " + s.name() + ": llmc " + String.join(" ", s.commandLine()).replace("\n", " "));
    }
    out.println("  out " + plan.out() + " (the last model written; stages in " + plan.work() + ")");
    out.println("(dry run: nothing was run)");
  }

  private static JsonNode json(String text) {
    try {
      return text.isBlank() ? null : Json.mapper().readTree(text);
    } catch (IOException e) {
      return null;
    }
  }

  private static String read(Path file) {
    try {
      return Files.readString(file);
    } catch (IOException e) {
      return "";
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
