package llmc.calibration;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import llmc.formats.BadInputException;
import llmc.formats.DType;
import llmc.formats.FileTrees;
import llmc.formats.InvalidSettingException;
import llmc.formats.Json;
import llmc.formats.QuantizedTensor;
import llmc.formats.SafetensorsFile;
import llmc.formats.SafetensorsWriter;
import llmc.model.Linear;

/**
 * What a layer-by-layer compression has finished, kept in a work folder so that a killed run
 * continues where it stopped: each finished layer's compressed matrices (the values, the codes,
 * scales and zeros, and what the method measured) and the calibration activations the next layer
 * reads. A resumed run replays the finished layers into its output without computing them again and
 * runs the rest from the saved activations, so it writes the bytes of an uninterrupted run.
 *
 * <p>Files: {@code journal.json} (the key of the inputs and settings, the layers done), {@code
 * layer-NNNNN/model.safetensors} per finished layer (a quantized matrix as its codes, scales and
 * zeros only, when its values are their dequantization, as for GPTQ and RTN; other matrices as
 * float32 values), {@code activations-NNNNN/model.safetensors} after layer NNNNN. Each is written
 * whole under a temporary name and renamed; {@code journal.json} is rewritten last, so a kill at
 * any moment leaves a consistent journal of the layers before.
 */
public final class LayerJournal implements AutoCloseable {
  /** The journal's own file: what marks a work folder as a layer journal. */
  public static final String FILE = "journal.json";

  private final Path dir;
  private final String key;
  private int layersDone;

  private LayerJournal(Path dir, String key, int layersDone) {
    this.dir = dir;
    this.key = key;
    this.layersDone = layersDone;
  }

  /**
   * Opens the journal in {@code dir}: with {@code resume}, the one there (refused when it was made
   * for another key); otherwise a fresh one (an earlier journal is cleared; a folder that is not a
   * journal is refused).
   *
   * @param key what the journal is for: the inputs' hashes and the settings that shape the result
   */
  public static LayerJournal open(Path dir, String key, boolean resume) {
    Path file = dir.resolve(FILE);
    try {
      if (Files.exists(dir, LinkOption.NOFOLLOW_LINKS)) {
        boolean journal = Files.isRegularFile(file, LinkOption.NOFOLLOW_LINKS);
        if (!journal && !isEmptyFolder(dir)) {
          throw new InvalidSettingException(
              "{workDir} %s exists and is not llmc's layer journal (no %s): remove it or choose"
                  + " another {workDir}",
              dir, FILE);
        }
        if (journal && resume) {
          JsonNode state = Json.mapper().readTree(Files.readString(file));
          if (!key.equals(state.path("key").asText())) {
            throw new InvalidSettingException(
                "{workDir} %s holds the layers of a run with other inputs or settings; resume with"
                    + " the same ones, or run without {resume} to start again",
                dir);
          }
          return new LayerJournal(dir, key, state.path("layers_done").asInt());
        }
        FileTrees.deleteRecursively(dir);
      }
      return new LayerJournal(dir, key, 0); // the folder is made with the first finished layer
    } catch (IOException e) {
      throw new BadInputException(dir + ": cannot use it as the work folder: " + e.getMessage(), e);
    }
  }

  private static boolean isEmptyFolder(Path dir) throws IOException {
    if (!Files.isDirectory(dir, LinkOption.NOFOLLOW_LINKS)) {
      return false;
    }
    try (Stream<Path> files = Files.list(dir)) {
      return files.findAny().isEmpty();
    }
  }

  public Path dir() {
    return dir;
  }

  /** Layers {@code 0 .. layersDone() - 1} are finished. */
  public int layersDone() {
    return layersDone;
  }

  /** A finished layer's compressed matrices, in the order they were compressed. */
  public Map<Linear, CompressedMatrix> layer(int index) {
    Path file = layerDir(index).resolve("model.safetensors");
    Map<Linear, CompressedMatrix> matrices = new LinkedHashMap<>();
    try (SafetensorsFile f = SafetensorsFile.open(file)) {
      JsonNode about = Json.mapper().readTree(f.metadata().get("matrices"));
      for (JsonNode m : about) {
        Linear linear = Linear.valueOf(m.get("linear").asText());
        String p = linear.name();
        QuantizedTensor q = null;
        if (m.has("bits")) {
          byte[] codes = f.bytes(p + ".codes").toArray(ValueLayout.JAVA_BYTE);
          q =
              new QuantizedTensor(
                  m.get("rows").asInt(),
                  m.get("cols").asInt(),
                  m.get("bits").asInt(),
                  m.get("group_size").asInt(),
                  m.get("symmetric").asBoolean(),
                  codes,
                  f.floats(p + ".scales"),
                  f.ints(p + ".zeros"),
                  f.ints(p + ".g_idx"),
                  DType.valueOf(m.get("scale_dtype").asText()),
                  f.contains(p + ".mins") ? f.floats(p + ".mins") : null,
                  m.path("float8").asBoolean() ? llmc.formats.Floats.e4m3Values() : null);
        }
        matrices.put(
            linear,
            new CompressedMatrix(
                f.contains(p + ".weight") ? f.floats(p + ".weight") : null, // null: the codes
                q,
                m.get("seconds").asDouble(),
                m.hasNonNull("gptq_loss") ? m.get("gptq_loss").asDouble() : null,
                m.hasNonNull("weight_mse") ? m.get("weight_mse").asDouble() : null,
                m.hasNonNull("damp") ? m.get("damp").asDouble() : null,
                m.get("fell_back_to_rtn").asBoolean(),
                m.hasNonNull("warning") ? m.get("warning").asText() : null));
      }
    } catch (IOException e) {
      throw new BadInputException(file + ": not a layer of the journal: " + e.getMessage(), e);
    }
    return matrices;
  }

  /**
   * What the compressor noted about a finished layer ({@link MatrixCompressor#layerNote}), or null.
   */
  public String note(int index) {
    try (SafetensorsFile f = SafetensorsFile.open(layerDir(index).resolve("model.safetensors"))) {
      return f.metadata().get("note");
    }
  }

  /** A finished layer's changed 1-D tensors by name (none for most methods). */
  public Map<String, float[]> vectors(int index) {
    Path file = layerDir(index).resolve("model.safetensors");
    Map<String, float[]> vectors = new LinkedHashMap<>();
    try (SafetensorsFile f = SafetensorsFile.open(file)) {
      String names = f.metadata().get("vectors");
      if (names == null) {
        return vectors;
      }
      int v = 0;
      for (JsonNode name : Json.mapper().readTree(names)) {
        vectors.put(name.asText(), f.floats("vector." + v++));
      }
    } catch (IOException e) {
      throw new BadInputException(file + ": not a layer of the journal: " + e.getMessage(), e);
    }
    return vectors;
  }

  /**
   * The calibration activations after the last finished layer, one array per window, each read when
   * it is asked for (so a walk with its activations on disk holds one at a time).
   */
  public List<float[]> activations() {
    Path file = activationsDir(layersDone - 1).resolve("model.safetensors");
    int windows = 0;
    try (SafetensorsFile f = SafetensorsFile.open(file)) {
      while (f.contains("x." + windows)) {
        windows++;
      }
    }
    int size = windows;
    return new java.util.AbstractList<>() {
      @Override
      public float[] get(int j) {
        try (SafetensorsFile f = SafetensorsFile.open(file)) {
          return f.floats("x." + java.util.Objects.checkIndex(j, size));
        }
      }

      @Override
      public int size() {
        return size;
      }
    };
  }

  /**
   * Layer {@code index} is finished: its matrices, and (when the walk runs calibration windows) the
   * activations the next layer reads.
   */
  public void layerDone(
      int index, Map<Linear, CompressedMatrix> matrices, List<float[]> activations) {
    layerDone(index, matrices, Map.of(), null, activations);
  }

  /**
   * As {@link #layerDone(int, Map, List)}, with the layer's changed 1-D tensors by name (norm
   * weights AWQ's scales were folded into), given back by {@link #vectors}.
   */
  public void layerDone(
      int index,
      Map<Linear, CompressedMatrix> matrices,
      Map<String, float[]> vectors,
      String note,
      List<float[]> activations) {
    if (index != layersDone) {
      throw new IllegalStateException("layer " + index + " done after " + layersDone + " layers");
    }
    makeFolder();
    var about = Json.mapper().createArrayNode();
    // A quantized matrix's values are its codes dequantized (for GPTQ and RTN always): only the
    // codes are kept then, not float32 values twice the size of a bfloat16 checkpoint.
    Map<Linear, Boolean> dequantized = new java.util.EnumMap<>(Linear.class);
    for (Map.Entry<Linear, CompressedMatrix> e : matrices.entrySet()) {
      CompressedMatrix c = e.getValue();
      ObjectNode m = about.addObject();
      m.put("linear", e.getKey().name());
      m.put("seconds", c.seconds());
      m.put("gptq_loss", c.gptqLoss());
      m.put("weight_mse", c.weightMse());
      m.put("damp", c.damp());
      m.put("fell_back_to_rtn", c.fellBackToRtn());
      m.put("warning", c.warning());
      QuantizedTensor q = c.quantized();
      if (q != null) {
        dequantized.put(e.getKey(), c.valuesAreCodes());
        m.put("rows", q.rows());
        m.put("cols", q.cols());
        m.put("bits", q.bits());
        m.put("group_size", q.groupSize());
        m.put("symmetric", q.symmetric());
        m.put("scale_dtype", q.scaleDtype().name());
        if (q.isFloat8()) {
          m.put("float8", true);
        }
      }
    }
    var vectorNames = Json.mapper().createArrayNode();
    vectors.keySet().forEach(vectorNames::add);
    Map<String, String> metadata = new java.util.TreeMap<>();
    metadata.put("matrices", about.toString());
    metadata.put("vectors", vectorNames.toString());
    if (note != null) {
      metadata.put("note", note);
    }
    writeWhole(
        layerDir(index),
        metadata,
        writer -> {
          int v = 0;
          for (float[] values : vectors.values()) {
            writer.writeFloats("vector." + v++, DType.F32, new long[] {values.length}, values);
          }
          for (Map.Entry<Linear, CompressedMatrix> e : matrices.entrySet()) {
            String p = e.getKey().name();
            CompressedMatrix c = e.getValue();
            if (!dequantized.getOrDefault(e.getKey(), false)) {
              float[] values = c.weight();
              writer.writeFloats(p + ".weight", DType.F32, new long[] {values.length}, values);
            }
            QuantizedTensor q = c.quantized();
            if (q != null) {
              writer.write(
                  p + ".codes",
                  DType.U8,
                  new long[] {q.codes().length},
                  MemorySegment.ofArray(q.codes()));
              writer.writeFloats(
                  p + ".scales", DType.F32, new long[] {q.scales().length}, q.scales());
              writer.writeInts(p + ".zeros", DType.I32, new long[] {q.zeros().length}, q.zeros());
              writer.writeInts(p + ".g_idx", DType.I32, new long[] {q.gIdx().length}, q.gIdx());
              if (q.mins() != null) {
                writer.writeFloats(p + ".mins", DType.F32, new long[] {q.mins().length}, q.mins());
              }
            }
          }
        });
    if (activations != null) {
      writeWhole(
          activationsDir(index),
          Map.of(),
          writer -> {
            for (int j = 0; j < activations.size(); j++) {
              float[] x = activations.get(j);
              writer.writeFloats("x." + j, DType.F32, new long[] {x.length}, x);
            }
          });
    }
    layersDone = index + 1;
    writeState();
    if (activations != null && index > 0) {
      FileTrees.deleteRecursively(activationsDir(index - 1)); // only the last ones are read
    }
  }

  /**
   * Float tensors a run computed before its layer walk and would compute again on resume (the
   * gradients of the gradient-based pruning scores), saved by {@link #saveTensors}.
   *
   * @param metadata what the run measured with them
   * @param tensors by name, in the order they were saved
   */
  public record SavedTensors(Map<String, String> metadata, Map<String, float[]> tensors) {}

  /** The tensors saved as {@code name}, when this journal holds them. */
  public java.util.Optional<SavedTensors> tensors(String name) {
    Path file = dir.resolve(name).resolve("model.safetensors");
    if (!Files.isRegularFile(file, LinkOption.NOFOLLOW_LINKS)) {
      return java.util.Optional.empty();
    }
    Map<String, float[]> tensors = new LinkedHashMap<>();
    try (SafetensorsFile f = SafetensorsFile.open(file)) {
      for (var t : f.tensors()) {
        tensors.put(t.name(), f.floats(t.name()));
      }
      return java.util.Optional.of(new SavedTensors(Map.copyOf(f.metadata()), tensors));
    }
  }

  /**
   * Saves {@code tensors} (each as a flat F32 vector) under {@code name}, whole or not at all, in a
   * folder that already holds the journal's key, so that a run killed before its first layer
   * resumes from them.
   */
  public void saveTensors(String name, Map<String, String> metadata, Map<String, float[]> tensors) {
    makeFolder();
    writeWhole(
        dir.resolve(name),
        metadata,
        writer -> {
          for (Map.Entry<String, float[]> e : tensors.entrySet()) {
            writer.writeFloats(
                e.getKey(), DType.F32, new long[] {e.getValue().length}, e.getValue());
          }
        });
  }

  /** Removes the journal of a finished run (its output now holds every layer). */
  @Override
  public void close() {
    FileTrees.deleteRecursively(dir);
  }

  private Path layerDir(int index) {
    return dir.resolve(String.format(java.util.Locale.ROOT, "layer-%05d", index));
  }

  private Path activationsDir(int index) {
    return dir.resolve(String.format(java.util.Locale.ROOT, "activations-%05d", index));
  }

  private interface Contents {
    void write(SafetensorsWriter writer);
  }

  /** A folder with one safetensors file, written under a temporary name and renamed when whole. */
  private static void writeWhole(Path target, Map<String, String> metadata, Contents contents) {
    Path temp = target.resolveSibling(target.getFileName() + ".tmp");
    FileTrees.deleteRecursively(temp);
    try {
      Files.createDirectories(temp);
      try (SafetensorsWriter writer = new SafetensorsWriter(temp, 0, metadata)) {
        contents.write(writer);
        writer.finish();
      }
      FileTrees.deleteRecursively(target);
      Files.move(temp, target, StandardCopyOption.ATOMIC_MOVE);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot write " + target, e);
    }
  }

  /**
   * The work folder, with its {@link #FILE} from the start: a run killed before it finished its
   * first layer leaves a journal (of no layers) that a resume accepts, never a folder it refuses.
   */
  private void makeFolder() {
    if (Files.isRegularFile(dir.resolve(FILE), LinkOption.NOFOLLOW_LINKS)) {
      return;
    }
    try {
      Files.createDirectories(dir);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot make the work folder " + dir, e);
    }
    writeState();
  }

  private void writeState() {
    ObjectNode state = Json.mapper().createObjectNode();
    state.put("key", key);
    state.put("layers_done", layersDone);
    Path temp = dir.resolve(FILE + ".tmp");
    try {
      Json.writePretty(temp, state);
      Files.move(temp, dir.resolve(FILE), StandardCopyOption.ATOMIC_MOVE);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot write " + dir.resolve(FILE), e);
    }
  }
}
