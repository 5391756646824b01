package llmc.distill;

import ai.djl.ndarray.NDArray;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.Map;
import llmc.formats.BadInputException;
import llmc.formats.DType;
import llmc.formats.Json;
import llmc.formats.OutputFolder;
import llmc.formats.SafetensorsFile;
import llmc.formats.SafetensorsWriter;
import llmc.model.kernels.Tensors;

/**
 * A training checkpoint in the work folder: the student's parameters and the optimizer's moments
 * (float32 safetensors), and the step, data position, logs and the settings it was made with.
 * Written to a temporary folder and renamed over the previous checkpoint only when complete, so a
 * crash leaves the last complete one.
 */
public final class TrainingCheckpoint {
  static final String STATE = "distill-state.json";
  static final String PARAMETERS = "student.safetensors";
  static final String OPTIMIZER = "optimizer.safetensors";

  /** A checkpoint folder is llmc's when it holds its state file. */
  private static final OutputFolder.Kind KIND =
      new OutputFolder.Kind(
          "workDir",
          STATE,
          dir -> Files.isRegularFile(dir.resolve(STATE), LinkOption.NOFOLLOW_LINKS));

  private TrainingCheckpoint() {}

  /** The checkpoint folder of a work folder. */
  public static Path dir(Path work) {
    return work.resolve("checkpoint");
  }

  /** What a checkpoint restores. */
  public record Loaded(
      Trainer.State state, Map<String, float[]> parameters, Map<String, float[]> optimizer) {}

  /**
   * Saves the trainer's state; {@code fingerprint} names the settings that must match on resume.
   */
  public static void save(Path work, Collection<Path> inputs, Trainer trainer, String fingerprint) {
    try (OutputFolder folder = OutputFolder.create(dir(work), true, inputs, KIND)) {
      writeArrays(folder.dir().resolve(PARAMETERS), trainer.parameterArrays());
      writeArrays(folder.dir().resolve(OPTIMIZER), trainer.optimizerArrays());
      ObjectNode state = Json.mapper().createObjectNode();
      state.put("fingerprint", fingerprint);
      state.set("state", Json.mapper().valueToTree(trainer.state()));
      Json.writePretty(folder.dir().resolve(STATE), state);
      folder.commit();
    }
  }

  /** The checkpoint in {@code work}, or null when there is none; refused when made otherwise. */
  public static Loaded load(Path work, String fingerprint) {
    Path dir = dir(work);
    if (!Files.isRegularFile(dir.resolve(STATE))) {
      return null;
    }
    try {
      ObjectNode state = (ObjectNode) Json.mapper().readTree(Files.readString(dir.resolve(STATE)));
      if (!fingerprint.equals(state.path("fingerprint").asText())) {
        throw new BadInputException(
            dir
                + " was made with other training settings; resume with the same ones, or remove"
                + " the work folder to start again");
      }
      Trainer.State s = Json.mapper().treeToValue(state.get("state"), Trainer.State.class);
      return new Loaded(s, readArrays(dir.resolve(PARAMETERS)), readArrays(dir.resolve(OPTIMIZER)));
    } catch (JsonProcessingException e) {
      throw new BadInputException(dir.resolve(STATE) + ": not a checkpoint state: " + e, e);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /**
   * Removes the checkpoint of a finished run (and the work folder when nothing else is in it): it
   * cannot be resumed into anything but the output that now exists.
   */
  public static void remove(Path work) {
    Path dir = dir(work);
    if (!Files.isRegularFile(dir.resolve(STATE), LinkOption.NOFOLLOW_LINKS)) {
      return;
    }
    try (var files = Files.walk(dir)) {
      for (Path p : files.sorted(java.util.Comparator.reverseOrder()).toList()) {
        Files.delete(p);
      }
      try (var rest = Files.list(work)) {
        if (rest.findAny().isEmpty()) {
          Files.delete(work);
        }
      }
    } catch (IOException e) {
      throw new UncheckedIOException("cannot remove the finished checkpoint " + dir, e);
    }
  }

  private static void writeArrays(Path file, Map<String, NDArray> arrays) {
    Path dir = file.getParent();
    try (SafetensorsWriter writer = new SafetensorsWriter(dir, 0, Map.of("format", "pt"))) {
      for (Map.Entry<String, NDArray> e : arrays.entrySet()) {
        NDArray a = e.getValue();
        float[] values = new float[Math.toIntExact(a.size())];
        Tensors.read(a, values);
        writer.writeFloats(e.getKey(), DType.F32, a.getShape().getShape(), values);
      }
      writer.finish();
    }
    try {
      Files.move(dir.resolve("model.safetensors"), file);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  private static Map<String, float[]> readArrays(Path file) {
    Map<String, float[]> all = new LinkedHashMap<>();
    try (SafetensorsFile f = SafetensorsFile.open(file)) {
      f.tensors().forEach(t -> all.put(t.name(), f.floats(t.name())));
    }
    return all;
  }
}
