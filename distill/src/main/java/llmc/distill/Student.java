package llmc.distill;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import llmc.formats.Checkpoint;
import llmc.formats.DType;
import llmc.formats.InvalidSettingException;
import llmc.formats.ModelConfig;
import llmc.formats.ModelFolder;
import llmc.model.LlamaFamily;
import llmc.model.TensorNames;
import llmc.model.Weights;

/**
 * The model being trained: a model folder of its own (for example one pruned from the teacher), or
 * decoder layers cut from the teacher. Its tensors by name with the dtype each is written in.
 *
 * @param config the student's {@code config.json}
 * @param weights its starting weights
 * @param dtypes every tensor the student stores, by name, in the dtype it is written in
 * @param description how it was made, for the report
 */
public record Student(
    ModelConfig config,
    LlamaFamily family,
    Weights weights,
    Map<String, DType> dtypes,
    String description) {

  /**
   * The teacher with only the decoder layers {@code keep} (ascending, 0-based), renumbered from 0.
   */
  public static Student cut(ModelFolder teacher, int[] keep) {
    LlamaFamily f = LlamaFamily.from(teacher.config());
    int[] kept = keep.clone();
    Arrays.sort(kept);
    if (kept.length == 0 || kept.length == f.layers()) {
      throw new InvalidSettingException(
          "{keepLayers} keeps %s of the teacher's %s layers: keep at least one and drop at least"
              + " one",
          kept.length, f.layers());
    }
    for (int i = 0; i < kept.length; i++) {
      if (kept[i] < 0 || kept[i] >= f.layers() || (i > 0 && kept[i] == kept[i - 1])) {
        throw new InvalidSettingException(
            "{keepLayers} %s: the teacher has layers 0..%s (each once)",
            Arrays.toString(keep), f.layers() - 1);
      }
    }
    Checkpoint checkpoint = teacher.checkpoint();
    Weights source = Weights.of(checkpoint);
    Map<String, String> sourceOf = new LinkedHashMap<>(); // student name -> teacher name
    for (String name : checkpoint.names()) {
      if (!name.startsWith(TensorNames.LAYERS)) {
        sourceOf.put(name, name);
      }
    }
    for (int i = 0; i < kept.length; i++) {
      String from = TensorNames.layer(kept[i]);
      for (String name : checkpoint.names()) {
        if (name.startsWith(from)) {
          sourceOf.put(TensorNames.layer(i) + name.substring(from.length()), name);
        }
      }
    }
    Map<String, DType> dtypes = new LinkedHashMap<>();
    sourceOf.forEach((name, from) -> dtypes.put(name, checkpoint.info(from).dtype()));
    Weights weights =
        new Weights() {
          @Override
          public boolean contains(String name) {
            return sourceOf.containsKey(name);
          }

          @Override
          public long[] shape(String name) {
            return source.shape(sourceOf.get(name));
          }

          @Override
          public float[] floats(String name) {
            return source.floats(sourceOf.get(name));
          }

          @Override
          public float[] rows(String name, long fromRow, int rows) {
            return source.rows(sourceOf.get(name), fromRow, rows);
          }
        };
    ModelConfig config = teacher.config().with(json -> json.put("num_hidden_layers", kept.length));
    List<Integer> list = new ArrayList<>();
    Arrays.stream(kept).forEach(list::add);
    return new Student(
        config,
        LlamaFamily.from(config),
        weights,
        dtypes,
        "teacher layers " + list + " of " + f.layers());
  }

  /** A model folder of its own; its vocabulary must be the teacher's. */
  public static Student open(ModelFolder folder, LlamaFamily teacher) {
    if (folder.config().json().has("quantization_config")) {
      throw new InvalidSettingException(
          "{student} %s is stored compressed; give a dense model folder", folder.dir());
    }
    LlamaFamily f = LlamaFamily.of(folder);
    if (f.vocab() != teacher.vocab()) {
      throw new InvalidSettingException(
          "{student} %s has a vocabulary of %s tokens, the teacher %s: a student must share the"
              + " teacher's tokenizer",
          folder.dir(), f.vocab(), teacher.vocab());
    }
    Checkpoint checkpoint = folder.checkpoint();
    Map<String, DType> dtypes = new LinkedHashMap<>();
    checkpoint.names().forEach(name -> dtypes.put(name, checkpoint.info(name).dtype()));
    return new Student(
        folder.config(), f, Weights.of(checkpoint), dtypes, "the model in " + folder.dir());
  }
}
