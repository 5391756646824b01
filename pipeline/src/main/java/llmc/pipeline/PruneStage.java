package llmc.pipeline;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.BiPredicate;
import llmc.calibration.LayerJournal;
import llmc.calibration.LayerwisePipeline;
import llmc.calibration.MatrixCompressor;
import llmc.calibration.StatisticsSource;
import llmc.formats.BadInputException;
import llmc.formats.Checkpoint;
import llmc.formats.InvalidSettingException;
import llmc.formats.ModelConfig;
import llmc.formats.ModelFolder;
import llmc.formats.OutputFolder;
import llmc.formats.SafetensorsWriter;
import llmc.model.Linear;
import llmc.model.LlamaFamily;
import llmc.model.OverlayWeights;
import llmc.model.Weights;
import llmc.prune.PruneMethod;
import llmc.prune.Pruners;
import llmc.prune.SparsityPattern;
import llmc.prune.WeightScores;
import llmc.prune.grad.Gradients;
import llmc.prune.structured.Structured;

/**
 * Pruning. Unstructured and N:M: every matrix through the one layer walk with a pruning compressor
 * (Wanda and SparseGPT on each layer's inputs as the already-pruned layers before it produce them;
 * magnitude, Lp and the gradient scores from the weights, after one backward pass for the
 * gradients). Structured: group scores, the survivors, and a physically smaller model.
 */
public final class PruneStage implements Stage<PruneSettings, PruneReport> {

  @Override
  public PruneReport run(PruneSettings s, Progress progress) {
    long t0 = System.nanoTime();
    List<String> warnings = new ArrayList<>();
    try (ModelFolder input = ModelFolder.open(s.model())) {
      if (input.config().json().has("quantization_config")) {
        throw new BadInputException(
            input.dir().resolve("config.json")
                + " has a quantization_config; prune an unquantized model (and quantize it"
                + " afterwards: quantization keeps the zeros)");
      }
      LlamaFamily family = LlamaFamily.of(input);
      Checkpoint checkpoint = input.checkpoint();
      MemoryPlan memory = plan(s, family, checkpoint);
      if (memory != null) {
        memory.check(Runtime.getRuntime().maxMemory());
      }
      OverlayWeights weights = new OverlayWeights(Weights.of(checkpoint));
      Calibration cut = null;
      if (s.method().needsCalibration()) {
        cut = Calibration.cut(input, family, s.calibration(), progress);
        if (cut.warning() != null) {
          warnings.add(cut.warning());
        }
      }
      List<Path> hashed = new ArrayList<>(List.of(input.dir()));
      if (cut != null) {
        hashed.add(s.calibration().file());
      }
      LayerJournal journal =
          LayerJournals.open(s, s.work(), s.resume(), List.of(input.dir()), hashed);
      Gradients gradients = null;
      PruneReport.GradientsUsed gradientsUsed = null;
      if (s.method().needsGradients()) {
        gradients = gradients(s, family, weights, cut.windows(), journal, progress);
        gradientsUsed =
            new PruneReport.GradientsUsed(
                gradients.loss(), gradients.bytes(), s.gradBatch(), gradients.seconds());
      }
      WeightScores scores =
          s.method().layerwise()
              ? null
              : new WeightScores(
                  s.method(),
                  s.p(),
                  s.structure() != null && s.taylorGroup() == Structured.GroupReduce.ABS_OF_SUM,
                  weights,
                  gradients);
      Run run =
          s.structure() != null
              ? structured(s, input, family, weights, scores, journal)
              : unstructured(
                  s, input, family, weights, scores, cut, journal, progress, warnings, memory);
      long inBytes = checkpoint.sizeOnDisk();
      Comparison eval =
          s.eval() == null
              ? null
              : Comparison.measure(s.model(), run.written(), s.eval(), progress);
      PruneReport report =
          new PruneReport(
              "prune",
              s.model().toString(),
              s.out().toString(),
              s.method().name().toLowerCase(),
              patternName(s),
              s.method() == PruneMethod.LP ? s.p() : null,
              s.method() == PruneMethod.SPARSEGPT ? s.damp() : null,
              s.method() == PruneMethod.SPARSEGPT ? s.blockSize() : null,
              s.ignore().stream().map(java.util.regex.Pattern::pattern).toList(),
              cut == null ? null : cut.report(),
              gradientsUsed,
              new PruneReport.Seconds(
                  run.walk() == null ? null : run.walk().forwardSeconds(),
                  run.walk() == null ? null : run.walk().statisticsSeconds(),
                  run.walk() == null ? null : run.walk().compressSeconds(),
                  (System.nanoTime() - t0) / 1e9),
              run.structure(),
              run.matrices(),
              new PruneReport.Sparsity(
                  run.weights() == 0 ? 0 : (double) run.zeros() / run.weights(),
                  run.zeros(),
                  run.weights()),
              new Size(inBytes, run.outputBytes(), null),
              eval,
              memory,
              List.copyOf(warnings));
      run.commit().accept(report);
      return report;
    }
  }

  /**
   * What the run would hold in memory at its peak ({@code --dry-run} prints it), or null for the
   * methods the plan does not cover: gradients (the whole model and its gradients are held) and
   * structured pruning (whole-model choices). A limit given to those is refused.
   */
  public MemoryPlan plan(PruneSettings s) {
    try (ModelFolder input = ModelFolder.open(s.model())) {
      return plan(s, LlamaFamily.of(input), input.checkpoint());
    }
  }

  private static MemoryPlan plan(PruneSettings s, LlamaFamily family, Checkpoint checkpoint) {
    if (s.method().needsGradients() || s.structure() != null) {
      if (s.maxMemoryBytes() != null) {
        throw new InvalidSettingException(
            "{maxMemoryBytes} bounds the layer-by-layer methods; %s holds the whole model%s:"
                + " drop {maxMemoryBytes}",
            s.structure() != null
                ? "structured pruning"
                : "--method " + s.method().name().toLowerCase(java.util.Locale.ROOT),
            s.method().needsGradients() ? " and its gradients" : "");
      }
      return null;
    }
    boolean windows = s.method().needsCalibration();
    return MemoryPlan.of(
        family,
        s.method() == PruneMethod.SPARSEGPT ? MemoryPlan.Work.SPARSEGPT : MemoryPlan.Work.SCORES,
        MemoryPlan.storedBytes(checkpoint.info(Linear.Q.weightName(0)).dtype()),
        (layer, linear) -> !s.ignored(linear.moduleName(layer)),
        windows,
        windows ? s.calibration().nsamples() : 0,
        windows ? QuantizeStage.seqLen(s.calibration(), family) : 0,
        -1,
        s.memoryLimit());
  }

  /**
   * A written (not yet committed) pruned model: where it is, what was pruned, and how to move it
   * into place with its report.
   */
  private record Run(
      java.nio.file.Path written,
      long outputBytes,
      LayerwisePipeline.Timings walk,
      List<PruneReport.Matrix> matrices,
      long zeros,
      long weights,
      PruneReport.Structure structure,
      java.util.function.Consumer<PruneReport> commit) {}

  private static Run unstructured(
      PruneSettings s,
      ModelFolder input,
      LlamaFamily family,
      OverlayWeights weights,
      WeightScores scores,
      Calibration cut,
      LayerJournal journal,
      Progress progress,
      List<String> warnings,
      MemoryPlan memory) {
    BiPredicate<Integer, Linear> prunes = (i, linear) -> !s.ignored(linear.moduleName(i));
    SparsityPattern pattern = s.pattern();
    MatrixCompressor method =
        switch (s.method()) {
          case WANDA -> Pruners.wanda(prunes, pattern);
          case SPARSEGPT -> Pruners.sparseGpt(prunes, pattern, s.damp(), s.blockSize());
          default -> Pruners.byScores(prunes, scores, pattern);
        };
    List<PruneReport.Matrix> matrices = new ArrayList<>();
    long[] counted = new long[2]; // zeros, weights of the linear layers
    MatrixCompressor recorded =
        new MatrixRecorder(
            method,
            (layer, linear, before, after) -> {
              long z = zeros(after.weight());
              counted[0] += z;
              counted[1] += after.weight().length;
              matrices.add(
                  new PruneReport.Matrix(
                      linear.moduleName(layer),
                      (double) z / after.weight().length,
                      after.seconds()));
              if (after.warning() != null) {
                warnings.add(linear.moduleName(layer) + ": " + after.warning());
              }
            });
    List<String> dense = new ArrayList<>();
    for (int i = 0; i < family.layers(); i++) {
      for (Linear linear : Linear.values()) {
        if (!prunes.test(i, linear)) {
          dense.add(linear.moduleName(i));
        }
      }
    }
    FolderLayout layout =
        s.format() == PruneSettings.Format.SPARSE_24_BITMASK
            ? FolderLayout.sparse24Bitmask(
                dense, () -> counted[1] == 0 ? 0 : (double) counted[0] / counted[1])
            : FolderLayout.dense(null);
    FolderSink sink =
        new FolderSink(
            input,
            List.of(input.dir()),
            s.out(),
            s.overwrite(),
            s.shardBytes(),
            "llmc prune",
            layout);
    try {
      Checkpoint checkpoint = input.checkpoint();
      if (journal.layersDone() > 0) {
        // Layers an earlier run finished: replayed from the work folder, not computed again.
        progress.update("resumed: layer", journal.layersDone(), family.layers());
        progress.finished();
      }
      LayerwisePipeline.Timings t =
          LayerwisePipeline.compress(
              family,
              weights,
              s.method().layerwise()
                  ? new StatisticsSource.Windows(
                      cut.windows(),
                      null,
                      memory == null || memory.keepsMlpActivations(),
                      memory == null ? null : memory.spill(journal.dir()))
                  : new StatisticsSource.None(),
              recorded,
              (layer, compressed) -> {
                for (Linear linear : Linear.values()) {
                  if (!compressed.containsKey(linear)) {
                    // a matrix left as it is counts as it is
                    float[] w = checkpoint.floats(linear.weightName(layer));
                    counted[0] += zeros(w);
                    counted[1] += w.length;
                  }
                }
                sink.writeLayer(layer, compressed);
              },
              (i, n) -> progress.update("prune: layer", i + 1, n),
              journal);
      progress.finished();
      sink.finishTensors();
      return new Run(
          sink.written(),
          sink.outputBytes(),
          s.method().layerwise() ? t : null,
          List.copyOf(matrices),
          counted[0],
          counted[1],
          null,
          report -> {
            try (sink) {
              sink.commit(report, ModelCard.of(report, s.format()));
            }
            journal.close(); // the output holds every layer now
          });
    } catch (RuntimeException e) {
      sink.close();
      throw e;
    }
  }

  private static Run structured(
      PruneSettings s,
      ModelFolder input,
      LlamaFamily family,
      Weights weights,
      WeightScores scores,
      LayerJournal journal) {
    Structured.GroupReduce reduce =
        s.method() == PruneMethod.TAYLOR ? s.taylorGroup() : Structured.GroupReduce.SUM;
    Structured.Survivors kept =
        Structured.choose(family, scores, s.structure(), s.sparsity(), reduce, s.dropLayers());
    Checkpoint checkpoint = input.checkpoint();
    OutputFolder folder = OutputFolder.create(s.out(), s.overwrite(), List.of(input.dir()));
    try {
      try (SafetensorsWriter writer =
          new SafetensorsWriter(
              folder.dir(), s.shardBytes(), Map.of("format", "pt", "producer", "llmc prune"))) {
        Structured.write(family, weights, checkpoint, kept, writer);
        writer.finish();
      }
      ModelConfig config = Structured.config(input.config(), family, kept);
      config.write(folder.dir().resolve("config.json"));
      input.copyAuxiliaryFilesTo(folder.dir());
      LlamaFamily after = LlamaFamily.from(config);
      Map<String, List<Integer>> removed = new LinkedHashMap<>();
      if (s.structure() == Structured.Structure.LAYERS) {
        removed.put("layers", missing(kept.layers(), family.layers()));
      } else {
        for (int l : kept.layers()) {
          removed.put(
              "model.layers." + l,
              s.structure() == Structured.Structure.CHANNELS
                  ? missing(kept.channels()[l], family.intermediate())
                  : missing(kept.kvHeads()[l], family.kvHeads()));
        }
      }
      long linearWeights = 0;
      for (int i = 0; i < after.layers(); i++) {
        for (Linear linear : Linear.values()) {
          linearWeights += (long) linear.outFeatures(after) * linear.inFeatures(after);
        }
      }
      PruneReport.Structure structure =
          new PruneReport.Structure(
              s.structure().name().toLowerCase(),
              new PruneReport.Shape(
                  after.layers(),
                  after.intermediate(),
                  after.heads(),
                  after.kvHeads(),
                  after.headDim()),
              parameters(family),
              parameters(after),
              Arrays.stream(kept.layers()).boxed().toList(),
              removed);
      return new Run(
          folder.dir(),
          Reports.safetensorsBytes(folder.dir()),
          null,
          List.of(),
          0,
          linearWeights,
          structure,
          report -> {
            try (folder) {
              Reports.store(report, folder.dir());
              ModelCard.store(ModelCard.of(report, s.format()), folder.dir());
              folder.commit();
            }
            journal.close(); // the gradients it may hold are not needed any more
          });
    } catch (RuntimeException e) {
      folder.close();
      throw e;
    }
  }

  /**
   * The journal's entry for the gradients: {@code gradients/model.safetensors} in the work folder.
   */
  private static final String GRADIENTS = "gradients";

  /**
   * The gradients of the calibration loss: computed (a forward and backward pass over every window,
   * the longest step of a gradient-scored run) and saved in the work folder, or, on resume, read
   * back from it.
   */
  private static Gradients gradients(
      PruneSettings s,
      LlamaFamily family,
      Weights weights,
      List<int[]> windows,
      LayerJournal journal,
      Progress progress) {
    var saved = journal.tensors(GRADIENTS);
    if (saved.isPresent()) {
      Map<String, String> m = saved.get().metadata();
      progress.update("resumed: gradients", windows.size(), windows.size());
      progress.finished();
      return Gradients.restored(
          saved.get().tensors(),
          Double.parseDouble(m.get("loss")),
          Long.parseLong(m.get("scored_tokens")),
          Double.parseDouble(m.get("seconds")));
    }
    Gradients g =
        Gradients.compute(
            family,
            weights,
            windows,
            s.gradBatch(),
            done -> progress.update("gradients: window", done, windows.size()));
    progress.finished();
    journal.saveTensors(
        GRADIENTS,
        Map.of(
            "loss", Double.toString(g.loss()),
            "scored_tokens", Long.toString(g.scoredTokens()),
            "seconds", Double.toString(g.seconds())),
        g.all());
    return g;
  }

  private static String patternName(PruneSettings s) {
    if (s.structure() != null) {
      return s.structure().name().toLowerCase()
          + (s.dropLayers() != null
              ? " (drop " + Arrays.toString(s.dropLayers()) + ")"
              : " " + s.sparsity());
    }
    return switch (s.pattern()) {
      case SparsityPattern.Unstructured u ->
          "unstructured " + u.sparsity() + " per " + u.compare().name().toLowerCase();
      case SparsityPattern.NofM nm -> nm.n() + ":" + nm.m();
    };
  }

  private static long zeros(float[] w) {
    long z = 0;
    for (float x : w) {
      z += x == 0f ? 1 : 0;
    }
    return z;
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
}
