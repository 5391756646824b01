package llmc.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import llmc.formats.Json;
import llmc.pipeline.RecipeRun;
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

  @Override
  public Integer call() {
    PrintWriter stdout = spec.commandLine().getOut();
    PrintWriter stderr = spec.commandLine().getErr();
    Recipe parsed = Recipe.read(recipe);
    RecipePlan plan = RecipePlan.of(parsed, model, out, sets, workDir);
    if (dryRun) {
      if (common.json) {
        common.print(stdout, planJson(plan));
      } else {
        printPlan(stdout, plan);
      }
      return Llmc.OK;
    }
    List<RecipeRun.Stage> stages = new ArrayList<>();
    for (RecipePlan.Stage s : plan.stages()) {
      boolean given = common.threads > 0 && !s.args().contains("--threads");
      stages.add(
          new RecipeRun.Stage(
              s.name(), s.commandLine(), s.inputs(), s.output(), given ? common.threads : null));
    }
    RecipeRun.Settings settings =
        new RecipeRun.Settings(
            plan.recipe().file(),
            plan.model(),
            plan.out(),
            plan.work(),
            sets,
            stages,
            resume,
            overwrite,
            Llmc.Version.build());
    RecipeRun.Result result =
        RecipeRun.run(
            settings,
            (stage, replace) -> execute(stage, replace, stderr),
            (stage, reused, seconds) -> {
              if (!common.json) {
                stderr.printf(
                    "llmc run: %s %s (%.1f s)%n",
                    stage.name(),
                    reused ? "reused (inputs and options unchanged)" : "done",
                    seconds);
              }
            });
    if (common.json) {
      ObjectNode shown = result.report().deepCopy();
      if (result.exitCode() == Llmc.OK) {
        ArrayNode shownStages = shown.putArray("stages");
        result.shown().forEach(shownStages::add);
        shown.put("out", plan.out().toString());
      }
      common.print(stdout, shown);
    } else if (result.exitCode() == Llmc.OK) {
      stdout.println("wrote " + plan.out() + " (stages in " + plan.work() + ")");
    } else {
      stderr.println(
          "llmc run: stage "
              + result.failed().name()
              + " failed (exit "
              + result.exitCode()
              + "); "
              + (result.exitCode() == Llmc.QUALITY_GATE_FAILED ? "its quality gate failed; " : "")
              + "the run's report is in "
              + result.reportFile()
              + "; "
              + plan.out()
              + " was not written");
    }
    return result.exitCode();
  }

  /** Runs one stage as {@code llmc COMMAND ... --json}, its report taken from its stdout. */
  private RecipeRun.Outcome execute(RecipeRun.Stage stage, boolean replace, PrintWriter stderr) {
    List<String> args = new ArrayList<>(stage.commandLine());
    if (replace) {
      args.add("--overwrite"); // a stage run again over its own earlier output
    }
    if (stage.threads() != null) {
      args.add("--threads");
      args.add(String.valueOf(stage.threads()));
    }
    if (common.quiet && !args.contains("--quiet")) {
      args.add("--quiet");
    }
    args.add("--json");
    StringWriter captured = new StringWriter();
    int code =
        Llmc.run(
            new PrintWriter(captured, true),
            stderr,
            Llmc.Environment.of(spec),
            args.toArray(String[]::new));
    return new RecipeRun.Outcome(code, json(captured.toString()));
  }

  private static ArrayNode commandLine(RecipePlan.Stage stage) {
    ArrayNode a = Json.mapper().createArrayNode();
    stage.commandLine().forEach(a::add);
    return a;
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
}
