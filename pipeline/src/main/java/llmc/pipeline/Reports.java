package llmc.pipeline;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.PropertyNamingStrategies;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import llmc.formats.Json;

/**
 * Reports as JSON: every report record is written with snake_case names, in the order of its
 * components, leaving out what is null; {@code llmc-report.json} is that JSON without wall times.
 */
public final class Reports {
  private static final ObjectMapper MAPPER =
      Json.mapper()
          .copy()
          .setPropertyNamingStrategy(PropertyNamingStrategies.SNAKE_CASE)
          .setDefaultPropertyInclusion(JsonInclude.Include.NON_NULL);

  /** The name of the report a stage stores in its output folder. */
  public static final String FILE = "llmc-report.json";

  private Reports() {}

  /** A report record as a JSON tree (what {@code --json} prints). */
  public static ObjectNode toJson(Object report) {
    return MAPPER.valueToTree(report);
  }

  /**
   * Stores the report as {@code llmc-report.json} in {@code dir}, without wall times and without
   * its own output path: the same run gives the same bytes.
   */
  static void store(Object report, Path dir) {
    ObjectNode stored = withoutTimes(toJson(report));
    stored.remove("out");
    Json.writePretty(dir.resolve(FILE), stored);
    LayerPlots.write(report, dir);
  }

  /** The report without wall times anywhere ({@code seconds} and {@code *_seconds} fields). */
  public static ObjectNode withoutTimes(ObjectNode node) {
    node.remove("seconds");
    List<String> timed = new ArrayList<>();
    node.fieldNames()
        .forEachRemaining(
            k -> {
              if (k.endsWith("_seconds")) {
                timed.add(k);
              }
            });
    node.remove(timed);
    node.forEach(
        child -> {
          if (child instanceof ObjectNode object) {
            withoutTimes(object);
          } else if (child instanceof ArrayNode array) {
            array.forEach(
                item -> {
                  if (item instanceof ObjectNode object) {
                    withoutTimes(object);
                  }
                });
          }
        });
    return node;
  }

  /** Bytes of the safetensors files in a folder. */
  static long safetensorsBytes(Path dir) {
    try (var files = Files.list(dir)) {
      return files
          .filter(p -> p.getFileName().toString().endsWith(".safetensors"))
          .mapToLong(p -> p.toFile().length())
          .sum();
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }
}
