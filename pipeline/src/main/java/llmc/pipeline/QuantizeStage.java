package llmc.pipeline;

import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.function.BiFunction;
import llmc.calibration.CompressedMatrix;
import llmc.calibration.LayerJournal;
import llmc.calibration.LayerwisePipeline;
import llmc.calibration.MatrixCompressor;
import llmc.calibration.StatisticsSource;
import llmc.calibration.StatisticsStore;
import llmc.formats.BadInputException;
import llmc.formats.Checkpoint;
import llmc.formats.DType;
import llmc.formats.InvalidSettingException;
import llmc.formats.ModelFolder;
import llmc.formats.QuantizedTensor;
import llmc.formats.gguf.GgufTokenizer;
import llmc.formats.quant.CheckpointFormat;
import llmc.formats.quant.GptqLayout;
import llmc.formats.quant.QuantizedCheckpoint;
import llmc.model.Linear;
import llmc.model.LlamaFamily;
import llmc.model.OverlayWeights;
import llmc.model.Weights;
import llmc.model.gguf.GgufModelWriter;
import llmc.model.gguf.LlamaGguf;
import llmc.quantize.AwqCompressor;
import llmc.quantize.GptqCompressor;
import llmc.quantize.QuantScheme;
import llmc.quantize.Rtn;
import llmc.quantize.RtnCompressor;
import llmc.quantize.SmoothQuantCompressor;

/**
 * Post-training weight quantization: plan which matrices get which grid, quantize them (RTN from
 * the weights alone, GPTQ through the layer-sequential walk), stream every layer into the output
 * chosen once (a folder layout or a GGUF file), and measure the quality when asked.
 */
public final class QuantizeStage implements Stage<QuantizeSettings, QuantizeReport> {

  @Override
  public QuantizeReport run(QuantizeSettings s, Progress progress) {
    long t0 = System.nanoTime();
    if (s.targetBpw() == null) {
      return run(s, progress, null, t0);
    }
    BitAllocation allocation;
    List<int[]> windows;
    try (ModelFolder input = ModelFolder.open(s.model())) {
      requireUnquantized(input);
      LlamaFamily family = LlamaFamily.of(input);
      Checkpoint checkpoint = input.checkpoint();
      DType scaleDtype = scaleDtype(s, checkpoint.info(Linear.Q.weightName(0)).dtype());
      windows = Calibration.cut(input, family, s.calibration(), progress).windows();
      allocation =
          BitAllocation.measure(
              family,
              Weights.of(checkpoint),
              windows,
              s.bitsChoices().stream().mapToInt(Integer::intValue).toArray(),
              s.targetBpw(),
              (layer, linear) -> s.bitsOf(linear.moduleName(layer)) != null,
              bits -> new QuantScheme(bits, s.groupSize(), s.symmetric(), scaleDtype),
              progress);
    }
    List<QuantizeSettings.BitsOverride> chosen = new ArrayList<>();
    for (int i = 0; i < allocation.modules().size(); i++) {
      chosen.add(
          new QuantizeSettings.BitsOverride(
              java.util.regex.Pattern.compile(
                  "^" + allocation.modules().get(i).replace(".", "\\.") + "$"),
              allocation.bits()[i]));
    }
    return run(s.withBits(chosen), progress, new Budget(s, allocation, windows), t0);
  }

  /** An automatic bit budget's allocation, for the report. */
  private record Budget(QuantizeSettings asked, BitAllocation allocation, List<int[]> windows) {}

  /** Scales are rounded inside the quantizer to the dtype the layout stores them in. */
  private static DType scaleDtype(QuantizeSettings s, DType modelDtype) {
    return s.format() == QuantizeSettings.Format.COMPRESSED_TENSORS && modelDtype == DType.BF16
        ? DType.BF16
        : DType.F16;
  }

  private QuantizeReport run(QuantizeSettings s, Progress progress, Budget budget, long t0) {
    List<String> warnings = new ArrayList<>();
    try (ModelFolder input = ModelFolder.open(s.model())) {
      requireUnquantized(input);
      LlamaFamily family = LlamaFamily.of(input);
      Checkpoint checkpoint = input.checkpoint();
      MemoryPlan memory = plan(s, family, checkpoint);
      memory.check(Runtime.getRuntime().maxMemory());
      OverlayWeights weights = new OverlayWeights(Weights.of(checkpoint));
      DType modelDtype = checkpoint.info(Linear.Q.weightName(0)).dtype();
      // Scales are rounded inside the quantizer to the dtype the layout stores them in: float16,
      // or the model's bfloat16 for compressed-tensors of a bfloat16 model.
      DType scaleDtype = scaleDtype(s, modelDtype);

      List<GgufModelWriter.Tensor> ggufPlan = null;
      GgufTokenizer tokenizer = null;
      if (s.format() == QuantizeSettings.Format.GGUF) {
        LlamaGguf.checkExportable(family, weights, s.model());
        tokenizer = GgufTokenizer.from(input);
        warnings.addAll(tokenizer.warnings());
        ggufPlan =
            GgufModelWriter.plan(
                family,
                weights,
                checkpoint.names(),
                s.ggufType(),
                hf -> s.bitsOf(hf.substring(0, hf.length() - ".weight".length())) != null);
      } else {
        checkLayout(s, family);
      }
      List<GgufModelWriter.Tensor> plan = ggufPlan;
      // The bits of a matrix, or null when it stays as it is (ignored, or a GGUF fallback type).
      BiFunction<Integer, Linear, Integer> bitsOf =
          (layer, linear) -> {
            if (plan != null) {
              String name = linear.weightName(layer);
              if (plan.stream()
                  .noneMatch(t -> t.hfName().equals(name) && t.type() == s.ggufType())) {
                return null;
              }
            }
            return s.bitsOf(linear.moduleName(layer));
          };
      BiFunction<Integer, Linear, QuantScheme> schemeOf =
          (layer, linear) -> {
            Integer bits = bitsOf.apply(layer, linear);
            if (bits == null) {
              return null;
            }
            if (plan != null) {
              return QuantScheme.ggml(s.ggufType());
            }
            if (s.scheme() != null && s.scheme().fp8) {
              return QuantScheme.fp8(s.groupSize(), scaleDtype);
            }
            return new QuantScheme(bits, s.groupSize(), s.symmetric(), scaleDtype);
          };
      MatrixCompressor method =
          s.method().gptq()
              ? new GptqCompressor(
                  schemeOf, s.damp(), s.blockSize(), s.actOrder(), s.staticGroups())
              : new RtnCompressor(schemeOf, s.method().awq() ? Rtn.Clip.NONE : s.clip());
      AwqCompressor awq =
          s.method().awq()
              ? new AwqCompressor(
                  method,
                  schemeOf,
                  family,
                  (layer, linear) -> checkpoint.contains(linear.biasName(layer)),
                  s.clip() == Rtn.Clip.MSE)
              : null;
      if (awq != null) {
        method = awq;
      }
      if (s.smoothQuant() != null) {
        method =
            new SmoothQuantCompressor(
                method,
                s.smoothQuant(),
                family,
                (layer, linear) -> checkpoint.contains(linear.biasName(layer)));
      }
      List<QuantizeReport.Matrix> matrices = new ArrayList<>();
      long[] sparseZeros = new long[2]; // the input's zeros, and those still 0 after
      MatrixRecorder recorded =
          new MatrixRecorder(
              method,
              (layer, linear, before, after) -> {
                matrices.add(
                    matrix(
                        s, layer, linear, bitsOf.apply(layer, linear), before, after, sparseZeros));
                if (after.warning() != null) {
                  warnings.add(linear.moduleName(layer) + ": " + after.warning());
                }
                String clamped =
                    after.quantized() == null
                        ? null
                        : QuantScheme.clampedScalesWarning(after.quantized());
                if (clamped != null) {
                  warnings.add(linear.moduleName(layer) + ": " + clamped);
                }
              },
              s.reportsOutliers() ? InspectSettings.DEFAULT_OUTLIER_THRESHOLD : null);

      Calibration.Report calibration = null;
      String savedStatistics = null;
      StatisticsStore store = null;
      StatisticsStore.Writer save = null;
      StatisticsSource source;
      KvCacheScales kvScales = null;
      if (s.kvCache() == QuantizeSettings.KvCache.FP8) { // on the model as given, before the walk
        Calibration cut = Calibration.cut(input, family, s.calibration(), progress);
        kvScales = KvCacheScales.measure(family, weights, cut.windows(), progress);
        if (!s.calibrated()) {
          calibration = cut.report();
        }
      }
      if (!s.calibrated()) {
        source = new StatisticsSource.None();
      } else if (s.stats() != null) {
        store = StatisticsStore.open(s.stats());
        calibration = Calibration.Report.saved(s.stats().toString(), store.metadata());
        warnings.add(
            "GPTQ from saved statistics of the unquantized model: not sequential (no layer saw"
                + " the quantization of the layers before it)");
        source = new StatisticsSource.Saved(store);
      } else {
        Calibration cut = Calibration.cut(input, family, s.calibration(), progress);
        calibration = cut.report();
        if (cut.warning() != null) {
          warnings.add(cut.warning());
        }
        if (s.saveStats() != null) {
          Map<String, String> about = new TreeMap<>();
          about.put("model", s.model().toString());
          Reports.toJson(calibration)
              .fields()
              .forEachRemaining(e -> about.put(e.getKey(), e.getValue().asText()));
          List<int[]> windows = cut.windows();
          save =
              new StatisticsStore.Writer(
                  s.saveStats(),
                  (long) windows.size() * windows.get(0).length,
                  about,
                  List.of(input.dir()));
          savedStatistics = s.saveStats().toString();
        }
        source =
            new StatisticsSource.Windows(
                cut.windows(), save, memory.keepsMlpActivations(), memory.spill(s.work()));
      }

      // The output may overlap neither the model nor the statistics it reads.
      List<Path> inputs =
          s.stats() == null ? List.of(input.dir()) : List.of(input.dir(), s.stats());
      try (ModelSink sink =
              plan != null
                  ? new GgufSink(
                      s.out(),
                      s.overwrite(),
                      family,
                      ExportStage.modelName(input),
                      s.ggufType(),
                      plan,
                      tokenizer,
                      weights,
                      inputs)
                  : new FolderSink(
                      input,
                      inputs,
                      s.out(),
                      s.overwrite(),
                      s.shardBytes(),
                      "llmc quantize",
                      layout(s, family, bitsOf, scaleDtype, modelDtype, warnings));
          StatisticsStore opened = store;
          StatisticsStore.Writer saving = save) {
        String task = s.calibrated() ? s.method().label() + ": layer" : "quantize: layer";
        List<Path> hashed = new ArrayList<>(List.of(input.dir()));
        if (s.stats() != null) {
          hashed.add(s.stats());
        } else if (s.calibrated()) {
          hashed.add(s.calibration().file());
        }
        LayerJournal journal =
            saving != null ? null : LayerJournals.open(s, s.work(), s.resume(), inputs, hashed);
        if (journal != null && journal.layersDone() > 0) {
          // Layers an earlier run finished: replayed from the work folder, not computed again.
          progress.update("resumed: layer", journal.layersDone(), family.layers());
          progress.finished();
        }
        LayerwisePipeline.Timings t =
            LayerwisePipeline.compress(
                family,
                weights,
                source,
                recorded,
                sink,
                (i, n) -> progress.update(task, i + 1, n),
                journal);
        progress.finished();
        if (saving != null) {
          saving.finish();
        }
        if (kvScales != null) {
          kvScales.write(((FolderSink) sink).writer());
        }
        sink.finishTensors();
        QuantizeReport.SparsityKept kept = null;
        if (sparseZeros[0] > 0) {
          kept =
              new QuantizeReport.SparsityKept(
                  sparseZeros[0], sparseZeros[1], sparseZeros[0] == sparseZeros[1]);
          if (!kept.survived()) {
            warnings.add(
                "the input's sparsity did not survive: "
                    + (sparseZeros[0] - sparseZeros[1])
                    + " of its "
                    + sparseZeros[0]
                    + " zeros are no longer 0 (a grid without an exact 0, such as GGUF's _1"
                    + " types)");
          }
        }
        QuantizeReport.Seconds seconds =
            new QuantizeReport.Seconds(
                t.forwardSeconds(),
                t.statisticsSeconds(),
                t.compressSeconds(),
                (System.nanoTime() - t0) / 1e9);
        Size size = Size.of(checkpoint.sizeOnDisk(), sink.outputBytes());
        Comparison eval =
            s.eval() == null
                ? null
                : Comparison.measure(s.model(), sink.written(), s.eval(), progress);
        QuantizeReport.BitBudget bitBudget = null;
        if (budget != null) {
          double measured;
          try (ModelFolder written = ModelFolder.open(sink.written())) {
            measured =
                BitAllocation.loss(family, Weights.of(written), budget.windows())
                    - budget.allocation().baseline();
          }
          bitBudget = QuantizeReport.BitBudget.of(budget.asked(), budget.allocation(), measured);
        }
        QuantizeReport report =
            new QuantizeReport(
                "quantize",
                s.model().toString(),
                s.out().toString(),
                s.method().label(),
                s.format().label(),
                s.format() == QuantizeSettings.Format.GPTQ
                    ? (s.checkpointFormat() == CheckpointFormat.V2 ? "gptq_v2" : "gptq")
                    : null,
                modelDtype.safetensorsName(),
                scheme(s, scaleDtype),
                plan != null ? s.ggufType().ggmlName() : null,
                plan != null ? ExportStage.typeCounts(plan) : null,
                plan != null ? ExportStage.fallbacks(plan) : null,
                calibration,
                savedStatistics,
                kept,
                seconds,
                List.copyOf(matrices),
                awq == null
                    ? null
                    : awq.searches().stream()
                        .map(
                            a ->
                                new QuantizeReport.AwqScales(
                                    a.layer(),
                                    a.input().name().toLowerCase(java.util.Locale.ROOT),
                                    a.alpha(),
                                    a.loss(),
                                    a.rtnLoss()))
                        .toList(),
                s.reportsOutliers() ? InspectSettings.DEFAULT_OUTLIER_THRESHOLD : null,
                s.reportsOutliers() ? recorded.outliers() : null,
                bitBudget,
                s.kvCache() == null
                    ? null
                    : new QuantizeReport.KvCache(
                        s.kvCache().label(),
                        kvScales == null ? null : kvScales.keyScales(),
                        kvScales == null ? null : kvScales.valueScales()),
                size,
                eval,
                memory,
                List.copyOf(warnings));
        sink.commit(report, plan != null ? null : ModelCard.of(report));
        if (journal != null) {
          journal.close(); // the output holds every layer now
        }
        return report;
      }
    }
  }

  /**
   * What the run would hold in memory at its peak ({@code --dry-run} prints it), from the model's
   * config and the settings; nothing is computed.
   */
  public MemoryPlan plan(QuantizeSettings s) {
    try (ModelFolder input = ModelFolder.open(s.model())) {
      return plan(s, LlamaFamily.of(input), input.checkpoint());
    }
  }

  private static MemoryPlan plan(QuantizeSettings s, LlamaFamily family, Checkpoint checkpoint) {
    boolean gptq = s.calibrated();
    boolean windows = gptq && s.stats() == null;
    return MemoryPlan.of(
        family,
        switch (s.method()) {
          case GPTQ -> MemoryPlan.Work.GPTQ;
          case RTN, NONE -> MemoryPlan.Work.RTN;
          case AWQ -> MemoryPlan.Work.AWQ;
          case AWQ_GPTQ -> MemoryPlan.Work.AWQ_GPTQ;
        },
        MemoryPlan.storedBytes(checkpoint.info(Linear.Q.weightName(0)).dtype()),
        (layer, linear) -> s.bitsOf(linear.moduleName(layer)) != null,
        gptq,
        windows ? s.calibration().nsamples() : 0,
        windows ? seqLen(s.calibration(), family) : 0,
        s.groupSize(),
        s.memoryLimit());
  }

  /** The calibration windows' length: as given, or the model's default. */
  static int seqLen(CalibrationSettings c, LlamaFamily family) {
    return c.seqLen() != null ? c.seqLen() : family.defaultSeqLen();
  }

  private static FolderLayout layout(
      QuantizeSettings s,
      LlamaFamily family,
      BiFunction<Integer, Linear, Integer> bitsOf,
      DType scaleDtype,
      DType modelDtype,
      List<String> warnings) {
    return switch (s.format()) {
      case GPTQ -> FolderLayout.gptq(s, warnings);
      case COMPRESSED_TENSORS ->
          FolderLayout.withKvCache(
              s.scheme() != null
                  ? FolderLayout.byteQuantized(s, family, bitsOf, scaleDtype)
                  : FolderLayout.compressedTensors(s, family, bitsOf, scaleDtype, warnings),
              s.kvCache() == null ? null : s.kvCache().type,
              s.method() == QuantizeSettings.Method.NONE);
      case DENSE -> FolderLayout.dense(modelDtype);
      case GGUF -> throw new IllegalStateException("GGUF is a file, not a folder layout");
    };
  }

  private static QuantizeReport.Matrix matrix(
      QuantizeSettings s,
      int layer,
      Linear linear,
      int bits,
      MatrixRecorder.Zeros before,
      CompressedMatrix after,
      long[] sparseZeros) {
    long zerosBefore = before.count();
    long kept = 0;
    long zerosAfter = 0;
    QuantizedTensor q = after.quantized();
    float[] values = q == null ? after.weight() : null; // a quantized one is read from its codes
    int cols = q == null ? before.length() : q.cols();
    boolean hadZeros = zerosBefore > 0;
    for (int n = 0, i = 0; i < before.length(); n++) {
      for (int k = 0; k < cols; k++, i++) {
        boolean zero = (q == null ? values[i] : q.value(n, k)) == 0f;
        zerosAfter += zero ? 1 : 0;
        kept += zero && hadZeros && before.at().get(i) ? 1 : 0;
      }
    }
    sparseZeros[0] += zerosBefore;
    sparseZeros[1] += kept;
    boolean sparse = zerosBefore > 0;
    return new QuantizeReport.Matrix(
        linear.moduleName(layer),
        bits,
        s.groupSize(),
        after.seconds(),
        after.weightMse(),
        sparse ? (double) zerosBefore / before.length() : null,
        sparse ? (double) zerosAfter / before.length() : null,
        after.gptqLoss(),
        after.damp(),
        after.fellBackToRtn() ? true : null);
  }

  private static QuantizeReport.Scheme scheme(QuantizeSettings s, DType scaleDtype) {
    boolean gptq = s.method().gptq();
    return new QuantizeReport.Scheme(
        s.bits(),
        s.groupSize(),
        s.symmetric(),
        scaleDtype.safetensorsName(),
        gptq ? s.actOrder() : null,
        gptq ? s.staticGroups() : null,
        gptq ? s.damp() : null,
        gptq ? s.blockSize() : null,
        gptq ? true : null,
        gptq ? null : s.clip() == Rtn.Clip.MSE ? "mse" : "none",
        s.ignore().stream().map(java.util.regex.Pattern::pattern).toList(),
        s.bitsFor().stream().map(b -> b.pattern().pattern() + "=" + b.bits()).toList(),
        s.scheme() == null ? null : s.scheme().label(),
        s.smoothQuant());
  }

  private static void requireUnquantized(ModelFolder input) {
    ObjectNode qc = (ObjectNode) input.config().json().get("quantization_config");
    if (qc != null && !QuantizedCheckpoint.quantizes(qc)) {
      throw new BadInputException(
          input.dir()
              + " is stored compressed ("
              + qc.path("sparsity_config").path("format").asText("sparse")
              + "); quantize the dense pruned folder (pruned with the dense format) instead");
    }
    if (qc != null) {
      throw new BadInputException(
          input.dir().resolve("config.json")
              + " already has a quantization_config; quantize an unquantized model");
    }
  }

  /** Refuses what the GPTQ layout cannot hold before any work is done. */
  private static void checkLayout(QuantizeSettings s, LlamaFamily family) {
    if (s.format() != QuantizeSettings.Format.GPTQ) {
      return;
    }
    for (int i = 0; i < family.layers(); i++) {
      for (Linear linear : Linear.values()) {
        Integer bits = s.bitsOf(linear.moduleName(i));
        if (bits == null) {
          continue;
        }
        int multiple = GptqLayout.dimensionMultiple(bits);
        int in = linear.inFeatures(family);
        int out = linear.outFeatures(family);
        if (in % multiple != 0 || out % multiple != 0) {
          throw new InvalidSettingException(
              "%s is %sx%s: the GPTQ layout packs %s-bit codes in whole int32 words and needs both"
                  + " sizes to be multiples of %s; use {format} compressed-tensors or dense, or"
                  + " leave it out with {ignore}",
              linear.moduleName(i), out, in, bits, multiple);
        }
      }
    }
  }
}
