package llmc.model;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.BufferedReader;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import llmc.formats.BadInputException;
import llmc.formats.InvalidSettingException;
import llmc.formats.Json;

/**
 * Documents for evaluation and calibration: a {@code .jsonl} file (one per line) or a {@code .txt}
 * file (one).
 */
public final class TextDataset {
  private TextDataset() {}

  public static List<String> read(Path file, String field) {
    if (!Files.exists(file)) {
      throw new BadInputException(file + ": no such data file");
    }
    if (!Files.isRegularFile(file)) {
      throw new BadInputException(
          file + ": not a regular file (a folder, a pipe or a device); give a .jsonl or .txt file");
    }
    String name = file.getFileName().toString();
    try {
      if (name.endsWith(".txt")) {
        return List.of(Files.readString(file, StandardCharsets.UTF_8));
      }
      if (!name.endsWith(".jsonl")) {
        throw new BadInputException(
            file + ": unknown data format; use .jsonl (one JSON object per line) or .txt");
      }
      List<String> documents = new ArrayList<>();
      try (BufferedReader reader = Files.newBufferedReader(file, StandardCharsets.UTF_8)) {
        String line;
        int number = 0;
        while ((line = reader.readLine()) != null) {
          number++;
          if (line.isBlank()) {
            continue;
          }
          JsonNode node;
          try {
            node = Json.mapper().readTree(line);
          } catch (IOException e) {
            throw new BadInputException(file + ":" + number + ": not a JSON object");
          }
          JsonNode text = node == null ? null : node.get(field);
          if (text == null || !text.isTextual()) {
            throw new InvalidSettingException(
                "%s:%s: no text field '%s' (choose one with {field})", file, number, field);
          }
          documents.add(text.asText());
        }
      }
      if (documents.isEmpty()) {
        throw new BadInputException(file + ": no documents");
      }
      return documents;
    } catch (IOException e) {
      throw new BadInputException(file + ": cannot read (" + e.getMessage() + ")", e);
    }
  }
}
