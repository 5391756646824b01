package llmc.cli;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import java.io.IOException;
import java.io.Reader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import llmc.formats.BadInputException;

/**
 * A recipe file as written, every key with its line: {@code model:}, {@code out:} and {@code
 * stages:}, a list in order, each item a map with one key (the command: {@code prune}, {@code
 * distill}, {@code quantize}, {@code export}, {@code eval}) whose value holds that command's
 * options under their long names without the dashes. Parsed with Jackson's YAML parser; what the
 * options mean is left to the commands ({@link RecipePlan}).
 *
 * @param file the recipe file
 * @param model the {@code model:} entry, or null
 * @param out the {@code out:} entry, or null
 */
record Recipe(Path file, Scalar model, Scalar out, List<Step> stages) {

  /** The commands a stage may run, in the order a user would usually chain them. */
  static final List<String> COMMANDS = List.of("prune", "distill", "quantize", "export", "eval");

  static final List<String> TOP_LEVEL = List.of("model", "out", "stages");

  /** A value of the recipe and the line it is on. */
  sealed interface Value permits Scalar, Sequence, Mapping {
    int line();
  }

  /** A scalar as written (numbers and booleans keep their text); null for an empty value. */
  record Scalar(String text, int line) implements Value {}

  record Sequence(List<Value> items, int line) implements Value {}

  /** Keys in the order written, each with its value. */
  record Mapping(Map<String, Value> entries, Map<String, Integer> keyLines, int line)
      implements Value {}

  /**
   * One stage: its position (1-based), command and options.
   *
   * @param options option name (without dashes) to value, in the order written
   * @param optionLines the line of each option's key
   */
  record Step(
      int index,
      String command,
      int line,
      Map<String, Value> options,
      Map<String, Integer> optionLines) {}

  /** Reads and checks the recipe's shape (not what its options mean). */
  static Recipe read(Path file) {
    Value root;
    try (Reader reader = Files.newBufferedReader(file, StandardCharsets.UTF_8);
        JsonParser parser = new YAMLFactory().createParser(reader)) {
      if (parser.nextToken() == null) {
        throw new BadInputException(file + ": the recipe is empty; it needs stages:");
      }
      root = value(file, parser);
    } catch (IOException e) {
      throw new BadInputException(file + ": not a readable YAML recipe: " + firstLine(e), e);
    }
    if (!(root instanceof Mapping top)) {
      throw error(file, root.line(), "a recipe is a map with model:, out: and stages:");
    }
    for (Map.Entry<String, Value> e : top.entries().entrySet()) {
      if (!TOP_LEVEL.contains(e.getKey())) {
        throw unknown(file, top.keyLines().get(e.getKey()), "key", e.getKey(), TOP_LEVEL, "");
      }
    }
    Scalar model = scalar(file, top, "model");
    Scalar out = scalar(file, top, "out");
    Value stagesValue = top.entries().get("stages");
    if (stagesValue == null) {
      throw error(file, top.line(), "no stages: give a list of stages (prune, quantize, ...)");
    }
    if (!(stagesValue instanceof Sequence items) || items.items().isEmpty()) {
      throw error(file, stagesValue.line(), "stages: must be a list of one or more stages");
    }
    List<Step> steps = new ArrayList<>();
    for (Value item : items.items()) {
      if (!(item instanceof Mapping m) || m.entries().size() != 1) {
        throw error(
            file,
            item.line(),
            "each stage is a map with one key, the command (" + String.join(", ", COMMANDS) + ")");
      }
      String command = m.entries().keySet().iterator().next();
      int line = m.keyLines().get(command);
      if (!COMMANDS.contains(command)) {
        throw unknown(file, line, "stage", command, COMMANDS, "");
      }
      Value options = m.entries().get(command);
      Map<String, Value> entries = new LinkedHashMap<>();
      Map<String, Integer> lines = new LinkedHashMap<>();
      if (options instanceof Mapping om) {
        entries.putAll(om.entries());
        lines.putAll(om.keyLines());
      } else if (!(options instanceof Scalar s && s.text() == null)) {
        throw error(
            file, options.line(), command + ": its options must be a map (key: value per line)");
      }
      steps.add(new Step(steps.size() + 1, command, line, entries, lines));
    }
    return new Recipe(file, model, out, List.copyOf(steps));
  }

  private static Scalar scalar(Path file, Mapping top, String key) {
    Value v = top.entries().get(key);
    if (v == null) {
      return null;
    }
    if (!(v instanceof Scalar s) || s.text() == null) {
      throw error(file, v.line(), key + ": must be a path");
    }
    return s;
  }

  private static Value value(Path file, JsonParser parser) throws IOException {
    JsonToken token = parser.currentToken();
    int line = parser.currentTokenLocation().getLineNr();
    switch (token) {
      case START_OBJECT -> {
        Map<String, Value> entries = new LinkedHashMap<>();
        Map<String, Integer> lines = new LinkedHashMap<>();
        while (parser.nextToken() == JsonToken.FIELD_NAME) {
          String key = parser.currentName();
          int keyLine = parser.currentTokenLocation().getLineNr();
          if (entries.containsKey(key)) {
            throw error(
                file, keyLine, key + " is given twice (first on line " + lines.get(key) + ")");
          }
          parser.nextToken();
          entries.put(key, value(file, parser));
          lines.put(key, keyLine);
        }
        return new Mapping(entries, lines, line);
      }
      case START_ARRAY -> {
        List<Value> items = new ArrayList<>();
        while (parser.nextToken() != JsonToken.END_ARRAY) {
          items.add(value(file, parser));
        }
        return new Sequence(items, line);
      }
      case VALUE_NULL -> {
        return new Scalar(null, line);
      }
      default -> {
        return new Scalar(parser.getText(), line);
      }
    }
  }

  static BadInputException error(Path file, int line, String message) {
    return new BadInputException(file + ":" + line + ": " + message);
  }

  /** "unknown stage 'quantise'; did you mean 'quantize'?" with the nearest valid name. */
  static BadInputException unknown(
      Path file, int line, String what, String name, Collection<String> valid, String context) {
    String nearest = nearest(name, valid);
    return error(
        file,
        line,
        context
            + "unknown "
            + what
            + " '"
            + name
            + "'"
            + (nearest == null ? "" : "; did you mean '" + nearest + "'?")
            + " (valid: "
            + String.join(", ", valid)
            + ")");
  }

  /** The valid name closest to {@code name} by edit distance, if close enough to be a typo. */
  static String nearest(String name, Collection<String> valid) {
    String best = null;
    int bestDistance = Integer.MAX_VALUE;
    for (String v : valid) {
      int d = distance(name.toLowerCase(), v.toLowerCase());
      if (d < bestDistance) {
        best = v;
        bestDistance = d;
      }
    }
    return best != null && bestDistance <= Math.max(2, name.length() / 3) ? best : null;
  }

  /** Levenshtein distance. */
  private static int distance(String a, String b) {
    int[] previous = new int[b.length() + 1];
    int[] current = new int[b.length() + 1];
    for (int j = 0; j <= b.length(); j++) {
      previous[j] = j;
    }
    for (int i = 1; i <= a.length(); i++) {
      current[0] = i;
      for (int j = 1; j <= b.length(); j++) {
        int substitution = previous[j - 1] + (a.charAt(i - 1) == b.charAt(j - 1) ? 0 : 1);
        current[j] = Math.min(substitution, Math.min(previous[j] + 1, current[j - 1] + 1));
      }
      int[] t = previous;
      previous = current;
      current = t;
    }
    return previous[b.length()];
  }

  private static String firstLine(IOException e) {
    String m = String.valueOf(e.getMessage());
    int newline = m.indexOf('\n');
    return newline < 0 ? m : m.substring(0, newline);
  }
}
