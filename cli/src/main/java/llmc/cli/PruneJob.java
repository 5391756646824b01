package llmc.cli;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import llmc.calibration.InputStatistics;
import llmc.calibration.LayerwisePipeline;
import llmc.formats.BadInputException;
import llmc.formats.Checkpoint;
import llmc.formats.DType;
import llmc.formats.Json;
import llmc.formats.ModelFolder;
import llmc.formats.OutputFolder;
import llmc.formats.SafetensorsWriter;
import llmc.formats.TensorInfo;
import llmc.formats.quant.Sparse24BitmaskLayout;
import llmc.model.DecoderLayer;
import llmc.model.Linear;
import llmc.model.LlamaFamily;
import llmc.model.LlamaRuntime;
import llmc.model.Weights;
import llmc.prune.Masks;
import llmc.prune.Scores;
import llmc.prune.SparseGpt;
import llmc.prune.SparsityPattern;
import llmc.prune.grad.Gradients;
import llmc.prune.structured.Structured;

/**
 * One `llmc prune` run. Unstructured and N:M: magnitude, Lp and the gradient scores straight from
 * the checkpoint (after one backward pass over the calibration windows for the gradient scores);
 * Wanda and SparseGPT through the layer-sequential pipeline, so every layer is pruned on the inputs
 * the already-pruned layers before it produce. Structured: group scores, the survivors, and a
 * physically smaller model.
 */
final class PruneJob {
  private final PruneOptions o;
  private final ObjectNode report = Json.mapper().createObjectNode();
  private final ArrayNode matrices = Json.mapper().createArrayNode();
  private final List<String> warnings = new ArrayList<>();
  private long zeros;
  private long weightsCounted;

  PruneJob(PruneOptions options) {
    this.o = options;
  }

  ObjectNode run() {
    long t0 = System.nanoTime();
    try (ModelFolder input = ModelFolder.open(o.model())) {
      if (input.config().json().has("quantization_config")) {
        throw new BadInputException(
            input.dir().resolve("config.json")
                + " has a quantization_config; prune an"
                + " unquantized model (and quantize it afterwards: llmc quantize keeps the zeros)");
      }
      LlamaFamily family = LlamaFamily.from(input.config());
      Checkpoint checkpoint = input.checkpoint();
      Weights weights = Weights.of(checkpoint);
      describe();
      Gradients gradients = null;
      if (o.method().needsGradients()) {
        List<int[]> windows =
            Runs.calibrationWindows(input, family, o.calibration(), report, warnings);
        gradients =
            Gradients.compute(
                family,
                weights,
                windows,
                o.gradBatch(),
                done -> CommonOptions.progress("gradients: window " + done + "/" + windows.size()));
        CommonOptions.endProgress();
        ObjectNode g = report.putObject("gradients");
        g.put("loss", gradients.loss());
        g.put("bytes", gradients.bytes());
        g.put("batch", o.gradBatch());
        g.put("seconds", gradients.seconds());
      }
      ElementScoresOf scores = new ElementScoresOf(weights, gradients);
      try (OutputFolder folder = OutputFolder.create(o.out(), o.overwrite(), List.of(o.model()))) {
        try (SafetensorsWriter writer =
            new SafetensorsWriter(
                folder.dir(),
                o.maxShardBytes(),
                Map.of("format", "pt", "producer", "llmc prune"))) {
          if (o.structure() != null) {
            structured(input, family, checkpoint, weights, scores, writer, folder);
          } else {
            unstructured(input, family, checkpoint, weights, scores, writer);
            writeConfig(input, family, folder);
          }
          writer.finish();
        }
        input.copyAuxiliaryFilesTo(folder.dir());
        report.set("matrices", matrices);
        ObjectNode sparsity = report.putObject("sparsity");
        sparsity.put("linear", weightsCounted == 0 ? 0 : (double) zeros / weightsCounted);
        sparsity.put("zeros", zeros);
        sparsity.put("weights", weightsCounted);
        ObjectNode size = report.putObject("size");
        size.put("input_bytes", checkpoint.sizeOnDisk());
        size.put("output_bytes", Runs.folderBytes(folder.dir()));
        ObjectNode time =
            report.has("seconds")
                ? (ObjectNode) report.get("seconds")
                : report.putObject("seconds");
        time.put("total", (System.nanoTime() - t0) / 1e9);
        if (o.eval() != null) {
          report.set("eval", Runs.evaluate(o.model(), folder.dir(), o.eval(), o.evalMaxWindows()));
        }
        Runs.storeReport(report, warnings, folder.dir());
        folder.commit();
      }
    }
    return report;
  }

  private void describe() {
    report.put("command", "prune");
    report.put("model", o.model().toString());
    report.put("out", o.out().toString());
    report.put("method", o.method().name().toLowerCase());
    report.put("pattern", patternName());
    if (o.method() == PruneOptions.Method.LP) {
      report.put("p", o.p());
    }
    if (o.method() == PruneOptions.Method.SPARSEGPT) {
      report.put("damp_percent", o.damp());
      report.put("block_size", o.blockSize());
    }
    ArrayNode ignore = report.putArray("ignore");
    o.ignore().forEach(p -> ignore.add(p.pattern()));
  }

  private String patternName() {
    if (o.structure() != null) {
      return o.structure().name().toLowerCase()
          + (o.dropLayers() != null
              ? " (drop " + java.util.Arrays.toString(o.dropLayers()) + ")"
              : " " + o.sparsity());
    }
    return switch (o.pattern()) {
      case SparsityPattern.Unstructured u ->
          "unstructured " + u.sparsity() + " per " + u.compare().name().toLowerCase();
      case SparsityPattern.NofM nm -> nm.n() + ":" + nm.m();
    };
  }

  /**
   * Per-weight scores from the weights (and gradients): magnitude {@code |w|}, Lp {@code |w|^p} (a
   * group's Lp norm orders groups as the sum of {@code |w|^p} does), sensitivity {@code |g|}
   * (normalised by the matrix's {@code sum |g|}), Taylor {@code |g w|} (signed {@code g w} for the
   * "vector" group form).
   */
  private final class ElementScoresOf implements Structured.ElementScores {
    private final Weights weights;
    private final Gradients gradients;

    ElementScoresOf(Weights weights, Gradients gradients) {
      this.weights = weights;
      this.gradients = gradients;
    }

    @Override
    public float[] of(int layer, Linear linear) {
      float[] w = weights.floats(linear.weightName(layer));
      return of(linear.weightName(layer), w);
    }

    float[] of(String name, float[] w) {
      float[] s = new float[w.length];
      switch (o.method()) {
        case MAGNITUDE -> {
          return Scores.magnitude(w);
        }
        case LP -> {
          for (int i = 0; i < w.length; i++) {
            s[i] = (float) Math.pow(Math.abs(w[i]), o.p());
          }
        }
        case SENSITIVITY -> {
          float[] g = gradients.of(name);
          double total = 0;
          for (float x : g) {
            total += Math.abs(x);
          }
          for (int i = 0; i < w.length; i++) {
            s[i] = total == 0 ? 0f : (float) (Math.abs(g[i]) / total);
          }
        }
        case TAYLOR -> {
          float[] g = gradients.of(name);
          boolean signed =
              o.structure() != null && o.taylorGroup() == Structured.GroupReduce.ABS_OF_SUM;
          for (int i = 0; i < w.length; i++) {
            float gw = g[i] * w[i];
            s[i] = signed ? gw : Math.abs(gw);
          }
        }
        default -> throw new IllegalStateException(o.method() + " has no element scores here");
      }
      return s;
    }
  }

  private void unstructured(
      ModelFolder input,
      LlamaFamily family,
      Checkpoint checkpoint,
      Weights weights,
      ElementScoresOf scores,
      SafetensorsWriter writer) {
    for (String name : checkpoint.names()) {
      if (!name.startsWith("model.layers.")) {
        copy(checkpoint, writer, name);
      }
    }
    if (o.method() == PruneOptions.Method.WANDA || o.method() == PruneOptions.Method.SPARSEGPT) {
      try (LlamaRuntime runtime = new LlamaRuntime(family, weights, false)) {
        List<int[]> windows =
            Runs.calibrationWindows(input, family, o.calibration(), report, warnings);
        Map<Linear, float[]> pruned = new EnumMap<>(Linear.class);
        LayerwisePipeline.Timings t =
            LayerwisePipeline.run(
                runtime,
                windows,
                new LayerwisePipeline.Compressor() {
                  @Override
                  public void compress(
                      DecoderLayer layer,
                      Linear.Input in,
                      List<Linear> linears,
                      InputStatistics stats) {
                    float[] hessian = null;
                    for (Linear linear : linears) {
                      if (o.ignored(QuantizeJob.module(layer.index, linear))) {
                        continue;
                      }
                      long start = System.nanoTime();
                      float[] w = weights.floats(linear.weightName(layer.index));
                      int rows = linear.outFeatures(family);
                      int cols = linear.inFeatures(family);
                      float[] result;
                      if (o.method() == PruneOptions.Method.WANDA) {
                        float[] s = Scores.wanda(w, rows, cols, stats.columnSquaredNorms());
                        result = Masks.apply(w, Masks.select(s, rows, cols, o.pattern()));
                      } else {
                        if (hessian == null) {
                          hessian = stats.hessian();
                        }
                        SparseGpt.Result r =
                            SparseGpt.prune(
                                w, rows, cols, hessian, o.pattern(), o.damp(), o.blockSize());
                        if (r.warning() != null) {
                          warnings.add(
                              QuantizeJob.module(layer.index, linear) + ": " + r.warning());
                        }
                        result = r.weights();
                      }
                      layer.replace(linear, result);
                      pruned.put(linear, result);
                      matrix(layer.index, linear, result, (System.nanoTime() - start) / 1e9);
                    }
                  }

                  @Override
                  public void layerDone(DecoderLayer layer) {
                    writeLayer(checkpoint, writer, layer.index, pruned);
                    pruned.clear();
                  }
                },
                (i, n) -> CommonOptions.progress("prune: layer " + (i + 1) + "/" + n));
        CommonOptions.endProgress();
        ObjectNode time = report.putObject("seconds");
        time.put("forward", t.forwardSeconds());
        time.put("statistics", t.statisticsSeconds());
        time.put("prune", t.compressSeconds());
      }
      return;
    }
    for (int i = 0; i < family.layers(); i++) {
      CommonOptions.progress("prune: layer " + (i + 1) + "/" + family.layers());
      Map<Linear, float[]> pruned = new EnumMap<>(Linear.class);
      for (Linear linear : Linear.values()) {
        if (o.ignored(QuantizeJob.module(i, linear))) {
          continue;
        }
        long start = System.nanoTime();
        float[] w = weights.floats(linear.weightName(i));
        float[] s = scores.of(linear.weightName(i), w);
        float[] result =
            Masks.apply(
                w,
                Masks.select(
                    s, linear.outFeatures(family), linear.inFeatures(family), o.pattern()));
        pruned.put(linear, result);
        matrix(i, linear, result, (System.nanoTime() - start) / 1e9);
      }
      writeLayer(checkpoint, writer, i, pruned);
    }
    CommonOptions.endProgress();
  }

  private void structured(
      ModelFolder input,
      LlamaFamily family,
      Checkpoint checkpoint,
      Weights weights,
      ElementScoresOf scores,
      SafetensorsWriter writer,
      OutputFolder folder) {
    Structured.GroupReduce reduce =
        o.method() == PruneOptions.Method.TAYLOR ? o.taylorGroup() : Structured.GroupReduce.SUM;
    Structured.Survivors s =
        Structured.choose(family, scores, o.structure(), o.sparsity(), reduce, o.dropLayers());
    Structured.write(family, weights, checkpoint, s, writer);
    var config = Structured.config(input.config(), family, s);
    config.write(folder.dir().resolve("config.json"));
    LlamaFamily after = LlamaFamily.from(config);
    ObjectNode st = report.putObject("structured");
    st.put("structure", o.structure().name().toLowerCase());
    ObjectNode c = st.putObject("config");
    c.put("num_hidden_layers", after.layers());
    c.put("intermediate_size", after.intermediate());
    c.put("num_attention_heads", after.heads());
    c.put("num_key_value_heads", after.kvHeads());
    c.put("head_dim", after.headDim());
    st.put("parameters_before", parameters(family));
    st.put("parameters_after", parameters(after));
    ArrayNode kept = st.putArray("kept_layers");
    for (int l : s.layers()) {
      kept.add(l);
    }
    ObjectNode removed = st.putObject("removed");
    for (int l : s.layers()) {
      ArrayNode r = removed.putArray("model.layers." + l);
      if (o.structure() == Structured.Structure.CHANNELS) {
        missing(s.channels()[l], family.intermediate()).forEach(r::add);
      } else if (o.structure() == Structured.Structure.HEADS) {
        missing(s.kvHeads()[l], family.kvHeads()).forEach(r::add);
      }
    }
    if (o.structure() == Structured.Structure.LAYERS) {
      removed.removeAll();
      ArrayNode dropped = removed.putArray("layers");
      missing(s.layers(), family.layers()).forEach(dropped::add);
    }
    for (int i = 0; i < after.layers(); i++) {
      for (Linear linear : Linear.values()) {
        weightsCounted += (long) linear.outFeatures(after) * linear.inFeatures(after);
      }
    }
  }

  /**
   * The input's config; with sparse-24-bitmask, compressed-tensors' sparsity config naming what
   * stayed dense.
   */
  private void writeConfig(ModelFolder input, LlamaFamily family, OutputFolder folder) {
    if (!o.bitmask()) {
      input.config().write(folder.dir().resolve("config.json"));
      return;
    }
    List<String> ignore = new ArrayList<>(List.of("lm_head"));
    for (int i = 0; i < family.layers(); i++) {
      for (Linear linear : Linear.values()) {
        if (o.ignored(QuantizeJob.module(i, linear))) {
          ignore.add(QuantizeJob.module(i, linear));
        }
      }
    }
    double global = weightsCounted == 0 ? 0 : (double) zeros / weightsCounted;
    input
        .config()
        .with(
            json ->
                json.set(
                    "quantization_config",
                    Sparse24BitmaskLayout.config(List.of("Linear"), ignore, global)))
        .write(folder.dir().resolve("config.json"));
  }

  private static List<Integer> missing(int[] kept, int count) {
    List<Integer> out = new ArrayList<>();
    for (int i = 0, k = 0; i < count; i++) {
      if (k < kept.length && kept[k] == i) {
        k++;
      } else {
        out.add(i);
      }
    }
    return out;
  }

  /** All parameters: embeddings, norms, the linear layers and the head. */
  static long parameters(LlamaFamily f) {
    long perLayer = 2L * f.hidden();
    for (Linear linear : Linear.values()) {
      perLayer += (long) linear.outFeatures(f) * linear.inFeatures(f);
    }
    long embed = (long) f.vocab() * f.hidden();
    return embed * (f.tiedEmbeddings() ? 1 : 2) + f.hidden() + f.layers() * perLayer;
  }

  private void matrix(int layer, Linear linear, float[] pruned, double seconds) {
    long z = 0;
    for (float x : pruned) {
      z += x == 0f ? 1 : 0;
    }
    zeros += z;
    weightsCounted += pruned.length;
    ObjectNode m = matrices.addObject();
    m.put("name", QuantizeJob.module(layer, linear));
    m.put("sparsity", (double) z / pruned.length);
    m.put("seconds", seconds);
  }

  private static void copy(Checkpoint checkpoint, SafetensorsWriter writer, String name) {
    TensorInfo info = checkpoint.info(name);
    writer.write(name, info.dtype(), info.shape(), checkpoint.bytes(name));
  }

  /** A layer's tensors: the pruned matrices in the checkpoint's dtype, the rest as they were. */
  private void writeLayer(
      Checkpoint checkpoint, SafetensorsWriter writer, int i, Map<Linear, float[]> pruned) {
    Map<String, Linear> names = new TreeMap<>();
    pruned.keySet().forEach(l -> names.put(l.weightName(i), l));
    String prefix = "model.layers." + i + ".";
    for (String name : checkpoint.names()) {
      if (!name.startsWith(prefix)) {
        continue;
      }
      Linear linear = names.get(name);
      if (linear == null) {
        copy(checkpoint, writer, name);
        if (name.endsWith("_proj.weight")) {
          // an ignored matrix: counted as it is
          float[] w = checkpoint.floats(name);
          long z = 0;
          for (float x : w) {
            z += x == 0f ? 1 : 0;
          }
          zeros += z;
          weightsCounted += w.length;
        }
      } else {
        TensorInfo info = checkpoint.info(name);
        DType dtype = info.dtype();
        if (o.bitmask()) {
          Sparse24BitmaskLayout.write(
              writer,
              QuantizeJob.module(i, linear),
              pruned.get(linear),
              (int) info.shape()[0],
              (int) info.shape()[1],
              dtype);
        } else {
          writer.writeFloats(name, dtype, info.shape(), pruned.get(linear));
        }
      }
    }
  }
}
