package llmc.calibration;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Stream;
import llmc.formats.BadInputException;
import llmc.formats.InvalidSettingException;
import llmc.formats.SafetensorsWriter;
import llmc.model.Linear;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * --save-stats never deletes what llmc did not write: an existing folder is replaced only when it
 * is statistics llmc saved, only once the new ones are complete, and never when it overlaps the
 * model.
 */
class StatisticsStoreTest {

  @TempDir Path tmp;
  private Path model;

  @BeforeEach
  void modelFolder() throws IOException {
    model = Files.createDirectories(tmp.resolve("models/m"));
    Files.writeString(model.resolve("config.json"), "{\"model_type\": \"llama\"}");
    Files.writeString(model.resolve("model.safetensors"), "weights");
  }

  private static InputStatistics stats(float value) {
    return InputStatistics.of(2, new float[] {value, 0, 0, value}, 1);
  }

  /** A complete statistics folder holding one activation with {@code value} on the diagonal. */
  private static void save(Path dir, long tokens, float value, List<Path> inputs) {
    try (StatisticsStore.Writer w = new StatisticsStore.Writer(dir, tokens, Map.of(), inputs)) {
      w.add(0, Linear.Input.ATTN_IN, stats(value));
      w.finish();
    }
  }

  private static float saved(Path dir) {
    try (StatisticsStore store = StatisticsStore.open(dir)) {
      return store.load(0, Linear.Input.ATTN_IN, 2).sum()[0];
    }
  }

  /** Every file under tmp with its bytes. */
  private Map<String, String> snapshot() throws IOException {
    Map<String, String> files = new TreeMap<>();
    try (Stream<Path> all = Files.walk(tmp)) {
      for (Path p : all.toList()) {
        files.put(
            tmp.relativize(p).toString(),
            Files.isRegularFile(p) ? Arrays.toString(Files.readAllBytes(p)) : "/");
      }
    }
    return files;
  }

  private void assertRefused(Path dir, List<Path> inputs, String... fragments) throws IOException {
    Map<String, String> before = snapshot();
    InvalidSettingException e =
        assertThrows(InvalidSettingException.class, () -> save(dir, 10, 1, inputs));
    for (String fragment : fragments) {
      assertTrue(e.getMessage().contains(fragment), fragment + " missing from " + e.getMessage());
    }
    assertTrue(e.settings().contains("saveStats"), e.getMessage());
    assertEquals(before, snapshot(), "nothing written, nothing deleted");
  }

  @Test
  void savingStatisticsOntoTheModelFolderIsRefusedAndTheFolderUntouched() throws IOException {
    assertRefused(model, List.of(model), "saveStats " + model, "is the input");
    assertRefused(model.resolve("."), List.of(model), "is the input");
  }

  @Test
  void savingStatisticsAroundOrInsideTheModelFolderIsRefused() throws IOException {
    assertRefused(tmp.resolve("models"), List.of(model), "contains the input");
    assertRefused(model.resolve("stats"), List.of(model), "lies inside the input");
  }

  @Test
  void anExistingFolderThatIsNotStatisticsIsRefusedAndUntouchedEvenWithoutInputs()
      throws IOException {
    // the old constructor protects no input, but still deletes nothing llmc did not write
    Map<String, String> before = snapshot();
    InvalidSettingException e =
        assertThrows(
            InvalidSettingException.class,
            () -> new StatisticsStore.Writer(model, 10, Map.of()).close());
    assertTrue(e.getMessage().contains("llmc did not write it"), e.getMessage());
    assertTrue(e.getMessage().contains(StatisticsStore.FILE), e.getMessage());
    assertEquals(List.of("saveStats", "saveStats"), e.settings());
    assertEquals(before, snapshot());
  }

  @Test
  void aSafetensorsFileWithoutLlmcsMetadataIsNotStatistics() throws IOException {
    Path dir = Files.createDirectories(tmp.resolve("stats"));
    try (SafetensorsWriter w = new SafetensorsWriter(dir, 0, Map.of("producer", "someone"))) {
      w.writeFloats("x", llmc.formats.DType.F32, new long[] {1}, new float[] {1});
      w.finish();
    }
    Files.move(dir.resolve("model.safetensors"), dir.resolve(StatisticsStore.FILE));
    assertFalse(StatisticsStore.isStatisticsFolder(dir));
    assertRefused(dir, List.of(model), "llmc did not write it");
    assertThrows(BadInputException.class, () -> StatisticsStore.open(dir).close());
  }

  @Test
  void anExistingStatisticsFolderIsReplacedOnlyOnceTheNewOnesAreComplete() throws IOException {
    Path dir = tmp.resolve("stats");
    save(dir, 10, 1, List.of(model));
    assertTrue(StatisticsStore.isStatisticsFolder(dir));
    assertThrows(
        IllegalStateException.class,
        () -> {
          try (StatisticsStore.Writer w =
              new StatisticsStore.Writer(dir, 20, Map.of(), List.of(model))) {
            w.add(0, Linear.Input.ATTN_IN, stats(2));
            throw new IllegalStateException("the run failed before finish");
          }
        });
    assertEquals(1, saved(dir), "the old statistics are intact");
    save(dir, 20, 3, List.of(model));
    assertEquals(3, saved(dir));
    try (Stream<Path> files = Files.list(tmp)) {
      assertEquals(
          List.of("models", "stats"),
          files.map(p -> p.getFileName().toString()).sorted().toList(),
          "no temporary or old folder left");
    }
  }
}
