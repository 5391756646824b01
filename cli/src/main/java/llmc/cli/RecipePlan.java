package llmc.cli;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import llmc.formats.BadInputException;
import picocli.CommandLine;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Model.OptionSpec;

/**
 * What a recipe runs: for each stage, the command line of its command (the recipe's options under
 * their flags), the models and files it reads, and where its output goes in the work folder.
 * Options are checked by the command's own parser (picocli), so a recipe accepts exactly what the
 * command line does, under the same names; a path in the recipe is relative to the recipe's folder.
 *
 * <p>Chaining: a stage reads the output of the last stage before it that wrote a model (the
 * recipe's {@code model:} for the first), unless it names its own {@code model:}. {@code distill}
 * takes that model as its {@code --student} and the recipe's model as {@code --teacher} (prune,
 * then heal), unless it names {@code student:}, {@code keep-layers:} or {@code drop-layers:} and
 * {@code teacher:}. {@code eval} compares against the recipe's model ({@code --base}) unless it
 * names its own {@code base:}.
 *
 * @param model the recipe's input model
 * @param out the run's output folder
 * @param work the folder of the stages' outputs
 */
record RecipePlan(Recipe recipe, Path model, Path out, Path work, List<Stage> stages) {

  /** Keys the runner sets itself. */
  static final Set<String> RESERVED =
      Set.of("out", "overwrite", "json", "help", "version", "resume");

  /**
   * One stage as it will run.
   *
   * @param args the command line after the command's name, without {@code --out}, {@code --json}
   *     and {@code --overwrite}, which the runner adds
   * @param inputs every path the stage reads (models and data), in order
   * @param output where it writes (a folder, or a file for GGUF), or null ({@code eval})
   */
  record Stage(int index, String command, List<String> args, List<Path> inputs, Path output) {
    /** "2-quantize": the stage's name in the work folder and the report. */
    String name() {
      return index + "-" + command;
    }

    /** {@code llmc COMMAND ARGS... [--out OUTPUT]}, for the plan. */
    List<String> commandLine() {
      List<String> all = new ArrayList<>();
      all.add(command);
      all.addAll(args);
      if (output != null) {
        all.add("--out");
        all.add(output.toString());
      }
      return all;
    }
  }

  /**
   * @param modelOverride {@code --model} (relative to the working folder), or null
   * @param outOverride {@code --out}, or null
   * @param sets {@code --set stage.key=value} overrides, applied to every stage of that command
   *     ({@code quantize.bits=3}) or to the stage at a position ({@code 2.bits=3})
   * @param workOverride {@code --work-dir}, or null for {@code OUT.work}
   */
  static RecipePlan of(
      Recipe recipe, Path modelOverride, Path outOverride, List<String> sets, Path workOverride) {
    Path base = recipe.file().toAbsolutePath().getParent();
    Path model = path(base, modelOverride, recipe.model(), "model", recipe.file());
    Path out = path(base, outOverride, recipe.out(), "out", recipe.file());
    Path work =
        workOverride != null
            ? workOverride.toAbsolutePath().normalize()
            : out.resolveSibling(out.getFileName() + ".work");
    List<Recipe.Step> steps = withOverrides(recipe, sets);
    List<Stage> stages = new ArrayList<>();
    Path current = model;
    boolean produced = false;
    for (Recipe.Step step : steps) {
      Stage stage = stage(recipe, base, step, model, current, produced, work);
      stages.add(stage);
      if (stage.output() != null) {
        current = stage.output();
        produced = true;
      }
    }
    if (!Files.exists(model)) {
      throw new BadInputException(
          where(recipe, recipe.model() == null ? -1 : recipe.model().line(), "--model")
              + "model "
              + model
              + " does not exist");
    }
    return new RecipePlan(recipe, model, out, work, List.copyOf(stages));
  }

  private static Path path(Path base, Path override, Recipe.Scalar entry, String key, Path file) {
    if (override != null) {
      return override.toAbsolutePath().normalize();
    }
    if (entry == null) {
      throw new BadInputException(
          file + ": no " + key + ": give it in the recipe or with --" + key);
    }
    return base.resolve(entry.text()).normalize();
  }

  /** The recipe's steps with {@code --set} values replacing or adding options (line -1). */
  private static List<Recipe.Step> withOverrides(Recipe recipe, List<String> sets) {
    List<Recipe.Step> steps = new ArrayList<>(recipe.stages());
    for (String set : sets) {
      int dot = set.indexOf('.');
      int equals = set.indexOf('=');
      if (dot < 1 || equals < dot + 2) {
        throw new BadInputException(
            "--set " + set + ": expected STAGE.KEY=VALUE, e.g. --set quantize.bits=3");
      }
      String target = set.substring(0, dot);
      String key = set.substring(dot + 1, equals);
      String value = set.substring(equals + 1);
      boolean matched = false;
      for (int i = 0; i < steps.size(); i++) {
        Recipe.Step s = steps.get(i);
        if (s.command().equals(target) || String.valueOf(s.index()).equals(target)) {
          Map<String, Recipe.Value> options = new LinkedHashMap<>(s.options());
          Map<String, Integer> lines = new LinkedHashMap<>(s.optionLines());
          options.put(key, new Recipe.Scalar(value, -1));
          lines.put(key, -1);
          steps.set(i, new Recipe.Step(s.index(), s.command(), s.line(), options, lines));
          matched = true;
        }
      }
      if (!matched) {
        List<String> names = new ArrayList<>();
        steps.forEach(s -> names.add(s.command()));
        throw new BadInputException(
            "--set "
                + set
                + ": the recipe has no stage '"
                + target
                + "' (its stages: "
                + String.join(", ", names)
                + ", or their positions 1.."
                + steps.size()
                + ")");
      }
    }
    return steps;
  }

  private static Stage stage(
      Recipe recipe,
      Path base,
      Recipe.Step step,
      Path model,
      Path current,
      boolean produced,
      Path work) {
    String command = step.command();
    CommandSpec spec = new CommandLine(command(command)).getCommandSpec();
    Map<String, OptionSpec> options = new LinkedHashMap<>();
    for (OptionSpec o : spec.options()) {
      for (String name : o.names()) {
        if (name.startsWith("--") && !RESERVED.contains(name.substring(2))) {
          options.put(name.substring(2), o);
        }
      }
    }
    boolean positional = !command.equals("distill");
    Set<String> valid = new TreeSet<>(options.keySet());
    if (positional) {
      valid.add("model");
    }
    for (Map.Entry<String, Recipe.Value> e : step.options().entrySet()) {
      String key = e.getKey();
      int line = step.optionLines().get(key);
      if (!valid.contains(key)) {
        String nearest = Recipe.nearest(key, valid);
        String context = step.command() + ": ";
        String message =
            RESERVED.contains(key)
                ? context + key + " is set by llmc run itself; remove it"
                : context
                    + "unknown option '"
                    + key
                    + "'"
                    + (nearest == null ? "" : "; did you mean '" + nearest + "'?")
                    + " (llmc "
                    + command
                    + " --help lists them)";
        throw new BadInputException(where(recipe, line, "--set " + command + "." + key) + message);
      }
    }
    List<String> args = new ArrayList<>();
    List<Path> inputs = new ArrayList<>();
    Map<String, Recipe.Value> rest = new LinkedHashMap<>(step.options());
    if (positional) {
      Recipe.Value own = rest.remove("model");
      Path from = own != null && own.line() < 0 ? Path.of("").toAbsolutePath() : base;
      Path input = own == null ? current : resolve(from, scalar(recipe, step, "model", own));
      if (own != null && !input.startsWith(work) && !Files.exists(input)) {
        throw new BadInputException(
            where(recipe, step.optionLines().get("model"), "--set " + command + ".model")
                + command
                + ".model: "
                + input
                + " does not exist");
      }
      args.add(input.toString());
      inputs.add(input);
      if (command.equals("eval") && !rest.containsKey("base")) {
        args.add("--base");
        args.add(model.toString());
        inputs.add(model);
      }
    } else {
      if (!rest.containsKey("teacher")) {
        args.add("--teacher");
        args.add(model.toString());
        inputs.add(model);
      }
      boolean student =
          rest.containsKey("student")
              || rest.containsKey("keep-layers")
              || rest.containsKey("drop-layers");
      if (!student) {
        if (!produced) {
          throw new BadInputException(
              where(recipe, step.line(), "")
                  + "distill: no student: give student:, keep-layers: or drop-layers:, or put a"
                  + " stage that writes one (e.g. prune --structure channels) before it");
        }
        args.add("--student");
        args.add(current.toString());
        inputs.add(current);
      }
    }
    for (Map.Entry<String, Recipe.Value> e : rest.entrySet()) {
      OptionSpec option = options.get(e.getKey());
      String flag = "--" + e.getKey();
      boolean isPath = isPath(option);
      // Paths in the recipe are relative to it; a --set value's, to the working folder.
      Path from = step.optionLines().get(e.getKey()) < 0 ? Path.of("").toAbsolutePath() : base;
      List<String> values = values(recipe, step, e.getKey(), e.getValue(), option);
      if (option.arity().max() == 0) { // a flag: true or false
        String v = values.size() == 1 ? values.get(0) : "";
        if (!v.equals("true") && !v.equals("false")) {
          throw new BadInputException(
              where(
                      recipe,
                      step.optionLines().get(e.getKey()),
                      "--set " + command + "." + e.getKey())
                  + command
                  + "."
                  + e.getKey()
                  + ": expected true or false, got '"
                  + v
                  + "'");
        }
        if (v.equals("true")) {
          args.add(flag);
        }
        continue;
      }
      for (String v : values) {
        String value = isPath ? resolve(from, v).toString() : v;
        args.add(flag);
        args.add(value);
        if (isPath && isInput(option)) {
          Path input = Path.of(value);
          if (!input.startsWith(work) && !Files.exists(input)) {
            throw new BadInputException(
                where(
                        recipe,
                        step.optionLines().get(e.getKey()),
                        "--set " + command + "." + e.getKey())
                    + command
                    + "."
                    + e.getKey()
                    + ": "
                    + input
                    + " does not exist");
          }
          inputs.add(input);
        }
      }
    }
    Path output = output(command, step.index(), args, work);
    List<String> check = new ArrayList<>(args);
    if (output != null) {
      check.add("--out");
      check.add(output.toString());
    }
    try {
      // A command of its own, not a subcommand of llmc's (whose parser needs the parent's state).
      new CommandLine(command(command)).parseArgs(check.toArray(String[]::new));
    } catch (CommandLine.ParameterException e) {
      int line = step.line();
      String key = "";
      if (e.getArgSpec() instanceof OptionSpec o) {
        for (String name : o.names()) {
          if (step.optionLines().containsKey(name.replaceFirst("^--", ""))) {
            key = name.replaceFirst("^--", "");
            line = step.optionLines().get(key);
          }
        }
      }
      throw new BadInputException(
          where(recipe, line, "--set " + command + "." + key)
              + command
              + (key.isEmpty() ? "" : "." + key)
              + ": "
              + e.getMessage().replace("\n", " "));
    }
    return new Stage(step.index(), command, List.copyOf(args), List.copyOf(inputs), output);
  }

  /**
   * Where the stage writes: {@code WORK/N-command} (a folder), or {@code WORK/N-command.gguf} for
   * {@code export} and {@code quantize --format gguf}; null for {@code eval}.
   */
  private static Path output(String command, int index, List<String> args, Path work) {
    String name = index + "-" + command;
    return switch (command) {
      case "eval" -> null;
      case "export" -> work.resolve(name + ".gguf");
      case "quantize" -> {
        int f = args.indexOf("--format");
        boolean gguf = f >= 0 && f + 1 < args.size() && args.get(f + 1).equals("gguf");
        yield work.resolve(gguf ? name + ".gguf" : name);
      }
      default -> work.resolve(name);
    };
  }

  /** A fresh instance of the command a stage runs. */
  private static Object command(String name) {
    return switch (name) {
      case "prune" -> new PruneCommand();
      case "distill" -> new DistillCommand();
      case "quantize" -> new QuantizeCommand();
      case "export" -> new ExportCommand();
      case "eval" -> new EvalCommand();
      default -> throw new IllegalArgumentException(name);
    };
  }

  /** Options that name a file or folder llmc reads (not one it writes, as --save-stats). */
  private static boolean isInput(OptionSpec option) {
    return !List.of("--save-stats", "--work-dir", "--teacher-cache").contains(option.longestName());
  }

  private static boolean isPath(OptionSpec option) {
    if (option.type() == Path.class) {
      return true;
    }
    for (Class<?> c : option.auxiliaryTypes()) {
      if (c == Path.class) {
        return true;
      }
    }
    return false;
  }

  /** A scalar as one value; a list as one value per item (repeated) or joined by commas. */
  private static List<String> values(
      Recipe recipe, Recipe.Step step, String key, Recipe.Value value, OptionSpec option) {
    if (value instanceof Recipe.Scalar s) {
      if (s.text() == null) {
        throw new BadInputException(
            where(recipe, s.line(), "") + step.command() + "." + key + ": no value");
      }
      return List.of(s.text());
    }
    if (value instanceof Recipe.Sequence seq) {
      List<String> items = new ArrayList<>();
      for (Recipe.Value item : seq.items()) {
        items.add(scalar(recipe, step, key, item));
      }
      return option.isMultiValue() ? items : List.of(String.join(",", items));
    }
    throw new BadInputException(
        where(recipe, value.line(), "")
            + step.command()
            + "."
            + key
            + ": expected a value or a list, not a map");
  }

  private static String scalar(Recipe recipe, Recipe.Step step, String key, Recipe.Value v) {
    if (v instanceof Recipe.Scalar s && s.text() != null) {
      return s.text();
    }
    throw new BadInputException(
        where(recipe, v.line(), "") + step.command() + "." + key + ": expected one value");
  }

  private static Path resolve(Path base, String path) {
    return base.resolve(path).normalize();
  }

  /** "recipe.yaml:12: ", or the override's name for a value given with --set/--model (line -1). */
  static String where(Recipe recipe, int line, String override) {
    return line < 0 ? override + ": " : recipe.file() + ":" + line + ": ";
  }
}
