package llmc.cli;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import llmc.calibration.InputStatistics;
import llmc.calibration.LayerwisePipeline;
import llmc.calibration.StatisticsStore;
import llmc.formats.BadInputException;
import llmc.formats.Checkpoint;
import llmc.formats.DType;
import llmc.formats.Json;
import llmc.formats.ModelConfig;
import llmc.formats.ModelFolder;
import llmc.formats.OutputFolder;
import llmc.formats.QuantizedTensor;
import llmc.formats.SafetensorsWriter;
import llmc.formats.TensorInfo;
import llmc.formats.gguf.GgufTokenizer;
import llmc.formats.quant.CheckpointFormat;
import llmc.formats.quant.CompressedTensorsLayout;
import llmc.formats.quant.GptqLayout;
import llmc.formats.quant.QuantizedCheckpoint;
import llmc.model.DecoderLayer;
import llmc.model.Linear;
import llmc.model.LlamaFamily;
import llmc.model.LlamaRuntime;
import llmc.model.TensorNames;
import llmc.model.Weights;
import llmc.model.gguf.GgufModelWriter;
import llmc.model.gguf.LlamaGguf;
import llmc.quantize.Gptq;
import llmc.quantize.QuantScheme;
import llmc.quantize.Rtn;

/**
 * One `llmc quantize` run: plan which matrices get which grid, quantize them (RTN directly from the
 * checkpoint; GPTQ through the layer-sequential pipeline), stream every tensor into the chosen
 * layout, write the folder atomically with its config and report, and evaluate when asked.
 */
final class QuantizeJob {
  private final QuantizeOptions o;
  private final PrintWriter err;
  private final ObjectNode report = Json.mapper().createObjectNode();
  private final ArrayNode matrices = Json.mapper().createArrayNode();
  private final List<String> warnings = new ArrayList<>();
  private DType modelDtype;

  /** With --format gguf: each tensor's place and type in the file. */
  private List<GgufModelWriter.Tensor> ggufPlan;

  QuantizeJob(QuantizeOptions options, PrintWriter err) {
    this.o = options;
    this.err = err;
  }

  ObjectNode run() {
    if (o.format() == QuantizeOptions.Format.GGUF) {
      return runGguf();
    }
    long t0 = System.nanoTime();
    try (ModelFolder input = ModelFolder.open(o.model())) {
      requireUnquantized(input);
      LlamaFamily family = LlamaFamily.from(input.config());
      Checkpoint checkpoint = input.checkpoint();
      modelDtype = checkpoint.info(Linear.Q.weightName(0)).dtype();
      checkPlan(family);
      describe(family, modelDtype);
      double[] timings = new double[4]; // forward, statistics, quantize, write
      try (OutputFolder folder = OutputFolder.create(o.out(), o.overwrite(), List.of(o.model()))) {
        try (SafetensorsWriter writer =
            new SafetensorsWriter(
                folder.dir(),
                o.maxShardBytes(),
                Map.of("format", "pt", "producer", "llmc quantize"))) {
          LayerWriter layers = new LayerWriter(checkpoint, writer);
          for (String name : checkpoint.names()) {
            if (!name.startsWith("model.layers.")) {
              layers.copy(name);
            }
          }
          quantizeLayers(input, family, checkpoint, layers, timings);
          writer.finish();
        }
        writeConfig(input, folder.dir());
        input.copyAuxiliaryFilesTo(folder.dir());
        putTimesAndSizes(timings, t0, checkpoint.sizeOnDisk(), Runs.folderBytes(folder.dir()));
        if (o.eval() != null) {
          report.set("eval", evaluate(o.model(), folder.dir()));
        }
        Runs.storeReport(report, warnings, folder.dir());
        folder.commit();
      }
    }
    return report;
  }

  /**
   * --format gguf: one llama.cpp file. The token embedding, final norm and output projection are
   * written first (the tensors' order in the file), then each layer as soon as its matrices are
   * quantized on the block type's grid.
   */
  private ObjectNode runGguf() {
    long t0 = System.nanoTime();
    try (ModelFolder input = ModelFolder.open(o.model())) {
      requireUnquantized(input);
      LlamaFamily family = LlamaFamily.from(input.config());
      Checkpoint checkpoint = input.checkpoint();
      Weights weights = Weights.of(checkpoint);
      LlamaGguf.checkExportable(family, weights, o.model());
      GgufTokenizer tokenizer = GgufTokenizer.from(input);
      warnings.addAll(tokenizer.warnings());
      modelDtype = checkpoint.info(Linear.Q.weightName(0)).dtype();
      ggufPlan =
          GgufModelWriter.plan(
              family,
              weights,
              checkpoint.names(),
              o.ggufType(),
              hf -> o.bitsOf(hf.substring(0, hf.length() - ".weight".length())) != null);
      describe(family, modelDtype);
      report.put("gguf_type", o.ggufType().ggmlName());
      report.set("tensor_types", ExportCommand.typeCounts(ggufPlan));
      report.set("fallbacks", ExportCommand.fallbacks(ggufPlan));
      double[] timings = new double[4];
      try (GgufModelWriter file =
          new GgufModelWriter(
              o.out(),
              o.overwrite(),
              List.of(o.model()),
              family,
              ExportCommand.modelName(input),
              o.ggufType(),
              ggufPlan,
              tokenizer::writeTo)) {
        for (GgufModelWriter.Tensor t : ggufPlan) {
          if (!t.hfName().startsWith("model.layers.")) {
            file.writeFloats(t.hfName(), weights.floats(t.hfName()));
          }
        }
        LayerSink layers =
            (i, quantized) -> {
              String prefix = TensorNames.layer(i);
              for (GgufModelWriter.Tensor t : ggufPlan) {
                if (!t.hfName().startsWith(prefix)) {
                  continue;
                }
                QuantizedTensor q =
                    quantized.entrySet().stream()
                        .filter(e -> e.getKey().weightName(i).equals(t.hfName()))
                        .map(Map.Entry::getValue)
                        .findFirst()
                        .orElse(null);
                if (q != null) {
                  file.writeQuantized(t.hfName(), q);
                } else {
                  file.writeFloats(t.hfName(), weights.floats(t.hfName()));
                }
              }
            };
        quantizeLayers(input, family, checkpoint, layers, timings);
        file.finish();
      }
      putTimesAndSizes(timings, t0, checkpoint.sizeOnDisk(), o.out().toFile().length());
      if (o.eval() != null) {
        report.set("eval", evaluate(o.model(), o.out()));
      }
      ArrayNode w = report.putArray("warnings");
      warnings.forEach(w::add);
    }
    return report;
  }

  private static void requireUnquantized(ModelFolder input) {
    ObjectNode qc = (ObjectNode) input.config().json().get("quantization_config");
    if (qc != null && !QuantizedCheckpoint.quantizes(qc)) {
      throw new BadInputException(
          input.dir()
              + " is stored compressed ("
              + qc.path("sparsity_config").path("format").asText("sparse")
              + "); quantize the dense pruned folder (llmc prune --format dense) instead");
    }
    if (qc != null) {
      throw new BadInputException(
          input.dir().resolve("config.json")
              + " already has a quantization_config; "
              + "quantize an unquantized model");
    }
  }

  /**
   * RTN straight from the checkpoint, or GPTQ through the layer-sequential pipeline; each layer to
   * {@code sink}.
   */
  private void quantizeLayers(
      ModelFolder input,
      LlamaFamily family,
      Checkpoint checkpoint,
      LayerSink sink,
      double[] timings) {
    if (o.method() == QuantizeOptions.Method.RTN) {
      rtn(family, checkpoint, sink, timings);
    } else {
      gptq(input, family, sink, timings);
    }
  }

  /**
   * A pruned input's zeros before and after quantization, per matrix (only where the input has
   * zeros).
   */
  private void sparsity(ObjectNode m, float[] before, float[] after) {
    long zerosBefore = 0;
    long kept = 0;
    long zerosAfter = 0;
    for (int i = 0; i < before.length; i++) {
      zerosBefore += before[i] == 0f ? 1 : 0;
      zerosAfter += after[i] == 0f ? 1 : 0;
      kept += before[i] == 0f && after[i] == 0f ? 1 : 0;
    }
    if (zerosBefore == 0) {
      return;
    }
    m.put("sparsity_before", (double) zerosBefore / before.length);
    m.put("sparsity_after", (double) zerosAfter / after.length);
    sparseZeros[0] += zerosBefore;
    sparseZeros[1] += kept;
  }

  /**
   * Zeros of the input's quantized matrices, and how many of them are still exactly 0 after
   * quantization.
   */
  private final long[] sparseZeros = new long[2];

  /**
   * Wall times per phase, the matrices, and the sizes before and after; whether a pruned input kept
   * its zeros.
   */
  private void putTimesAndSizes(double[] timings, long t0, long inBytes, long outBytes) {
    if (sparseZeros[0] > 0) {
      ObjectNode sp = report.putObject("sparsity");
      sp.put("input_zeros", sparseZeros[0]);
      sp.put("zeros_kept", sparseZeros[1]);
      sp.put("survived", sparseZeros[0] == sparseZeros[1]);
      if (sparseZeros[0] != sparseZeros[1]) {
        warnings.add(
            "the input's sparsity did not survive: "
                + (sparseZeros[0] - sparseZeros[1])
                + " of its "
                + sparseZeros[0]
                + " zeros are no longer 0 (a grid without an exact 0, such as GGUF's _1 types)");
      }
    }
    ObjectNode time = report.putObject("seconds");
    time.put("forward", timings[0]);
    time.put("statistics", timings[1]);
    time.put("quantize", timings[2]);
    time.put("total", (System.nanoTime() - t0) / 1e9);
    report.set("matrices", matrices);
    ObjectNode size = report.putObject("size");
    size.put("input_bytes", inBytes);
    size.put("output_bytes", outBytes);
    size.put("compression", (double) inBytes / outBytes);
  }

  /** Refuses what the chosen layout cannot hold before any work is done. */
  private void checkPlan(LlamaFamily family) {
    for (int i = 0; i < family.layers(); i++) {
      for (Linear linear : Linear.values()) {
        Integer bits = o.bitsOf(module(i, linear));
        if (bits == null) {
          continue;
        }
        if (bits < 2 || bits > 8) {
          throw new BadInputException(
              "bits " + bits + " for " + module(i, linear) + ": llmc quantizes to 2..8 bits");
        }
        if (o.format() == QuantizeOptions.Format.GPTQ) {
          if (!(bits == 2 || bits == 3 || bits == 4 || bits == 8)) {
            throw new BadInputException(
                "--format gptq holds 2, 3, 4 or 8 bits, not "
                    + bits
                    + " ("
                    + module(i, linear)
                    + "); use --format compressed-tensors or --format dense");
          }
          int multiple = GptqLayout.dimensionMultiple(bits);
          int in = linear.inFeatures(family);
          int out = linear.outFeatures(family);
          if (in % multiple != 0 || out % multiple != 0) {
            throw new BadInputException(
                module(i, linear)
                    + " is "
                    + out
                    + "x"
                    + in
                    + ": the GPTQ layout packs "
                    + bits
                    + "-bit codes in whole int32 words and needs both sizes to be multiples of "
                    + multiple
                    + "; use --format compressed-tensors or dense, or leave it out with --ignore");
          }
        }
      }
    }
  }

  private void describe(LlamaFamily family, DType modelDtype) {
    report.put("command", "quantize");
    report.put("model", o.model().toString());
    report.put("out", o.out().toString());
    report.put("method", o.method().name().toLowerCase());
    report.put("format", formatName());
    if (o.format() == QuantizeOptions.Format.GPTQ) {
      report.put("checkpoint_format", o.checkpointV2() ? "gptq_v2" : "gptq");
    }
    report.put("model_dtype", modelDtype.safetensorsName());
    ObjectNode scheme = report.putObject("scheme");
    scheme.put("bits", o.bits());
    scheme.put("group_size", o.groupSize());
    scheme.put("sym", o.symmetric());
    scheme.put("scale_dtype", scaleDtype(modelDtype).safetensorsName());
    if (o.method() == QuantizeOptions.Method.GPTQ) {
      scheme.put("act_order", o.actOrder());
      scheme.put("static_groups", o.staticGroups());
      scheme.put("damp_percent", o.damp());
      scheme.put("block_size", o.blockSize());
      scheme.put("true_sequential", true);
    } else {
      scheme.put("clip", o.clipMse() ? "mse" : "none");
    }
    ArrayNode ignore = scheme.putArray("ignore");
    o.ignore().forEach(p -> ignore.add(p.pattern()));
    ArrayNode bitsFor = scheme.putArray("bits_for");
    o.bitsFor().forEach(b -> bitsFor.add(b.pattern().pattern() + "=" + b.bits()));
  }

  private String formatName() {
    return switch (o.format()) {
      case GPTQ -> "gptq";
      case COMPRESSED_TENSORS -> "compressed-tensors";
      case DENSE -> "dense";
      case GGUF -> "gguf";
    };
  }

  /**
   * Scales are rounded inside the quantizer to the dtype the layout stores them in: float16 for
   * GPTQ (and dense, so that its weights equal the GPTQ file's); compressed-tensors stores them in
   * the model's dtype, so bfloat16 for a bfloat16 model and float16 otherwise (exact in float32).
   */
  private DType scaleDtype(DType modelDtype) {
    return o.format() == QuantizeOptions.Format.COMPRESSED_TENSORS && modelDtype == DType.BF16
        ? DType.BF16
        : DType.F16;
  }

  private QuantScheme scheme(int bits, DType modelDtype) {
    if (o.format() == QuantizeOptions.Format.GGUF) {
      return QuantScheme.ggml(o.ggufType());
    }
    return new QuantScheme(bits, o.groupSize(), o.symmetric(), scaleDtype(modelDtype));
  }

  /**
   * The bits of a layer's matrix, or null when it stays as it is: left out with --ignore, or (GGUF)
   * stored as F16 because its type cannot hold it.
   */
  private Integer bitsOf(int layer, Linear linear) {
    if (ggufPlan != null) {
      String name = linear.weightName(layer);
      boolean blocks =
          ggufPlan.stream().anyMatch(t -> t.hfName().equals(name) && t.type() == o.ggufType());
      if (!blocks) {
        return null;
      }
    }
    return o.bitsOf(module(layer, linear));
  }

  private void rtn(LlamaFamily family, Checkpoint checkpoint, LayerSink layers, double[] timings) {
    Weights weights = Weights.of(checkpoint);
    for (int i = 0; i < family.layers(); i++) {
      CommonOptions.progress("quantize: layer " + (i + 1) + "/" + family.layers());
      Map<Linear, QuantizedTensor> quantized = new EnumMap<>(Linear.class);
      for (Linear linear : Linear.values()) {
        Integer bits = bitsOf(i, linear);
        if (bits == null) {
          continue;
        }
        long t = System.nanoTime();
        float[] w = weights.floats(linear.weightName(i));
        QuantizedTensor q =
            Rtn.quantize(
                w,
                linear.outFeatures(family),
                linear.inFeatures(family),
                scheme(bits, modelDtype),
                o.clipMse() ? Rtn.Clip.MSE : Rtn.Clip.NONE);
        double seconds = (System.nanoTime() - t) / 1e9;
        timings[2] += seconds;
        quantized.put(linear, q);
        ObjectNode m = matrix(i, linear, bits, seconds);
        float[] dequantized = q.dequantize();
        m.put("weight_mse", mse(w, dequantized));
        sparsity(m, w, dequantized);
      }
      layers.writeLayer(i, quantized);
    }
    CommonOptions.endProgress();
  }

  private void gptq(ModelFolder input, LlamaFamily family, LayerSink layers, double[] timings) {
    if (o.calibration().file() == null && o.stats() == null) {
      throw new BadInputException(
          "GPTQ needs calibration data: give --calib FILE (.jsonl or .txt), "
              + "e.g. samples/data/tinystories/train.jsonl, or --stats DIR, or use --method rtn");
    }
    try (LlamaRuntime runtime = new LlamaRuntime(family, Weights.of(input.checkpoint()), false)) {
      GptqCompressor compressor = new GptqCompressor(runtime, layers);
      LayerwisePipeline.Progress progress =
          (i, n) -> CommonOptions.progress("gptq: layer " + (i + 1) + "/" + n);
      LayerwisePipeline.Timings t;
      if (o.stats() != null) {
        try (StatisticsStore store = StatisticsStore.open(o.stats())) {
          ObjectNode c = report.putObject("calibration");
          c.put("statistics", o.stats().toString());
          store.metadata().forEach(c::put);
          warnings.add(
              "GPTQ from saved statistics of the unquantized model: not sequential (no layer saw the "
                  + "quantization of the layers before it)");
          t = LayerwisePipeline.runFromStatistics(runtime, store, compressor, progress);
        }
      } else {
        List<int[]> windows = calibrationWindows(input, family);
        if (o.saveStats() != null) {
          Map<String, String> about = new TreeMap<>();
          about.put("model", o.model().toString());
          report
              .get("calibration")
              .fields()
              .forEachRemaining(e -> about.put(e.getKey(), e.getValue().asText()));
          try (StatisticsStore.Writer save =
              new StatisticsStore.Writer(
                  o.saveStats(),
                  (long) windows.size() * windows.get(0).length,
                  about,
                  List.of(o.model()))) {
            t = LayerwisePipeline.run(runtime, windows, compressor, progress, save);
            save.finish();
          }
          report.put("saved_statistics", o.saveStats().toString());
        } else {
          t = LayerwisePipeline.run(runtime, windows, compressor, progress);
        }
      }
      CommonOptions.endProgress();
      timings[0] = t.forwardSeconds();
      timings[1] = t.statisticsSeconds();
      timings[2] = t.compressSeconds();
    }
  }

  /** C1 windows of the calibration file, described in the report. */
  private List<int[]> calibrationWindows(ModelFolder input, LlamaFamily family) {
    return Runs.calibrationWindows(input, family, o.calibration(), report, warnings);
  }

  /** GPTQ on each group of linear layers, true-sequential; the layer is written when complete. */
  private final class GptqCompressor implements LayerwisePipeline.Compressor {
    private final LlamaRuntime runtime;
    private final LayerSink layers;
    private final Map<Linear, QuantizedTensor> quantized = new EnumMap<>(Linear.class);

    GptqCompressor(LlamaRuntime runtime, LayerSink layers) {
      this.runtime = runtime;
      this.layers = layers;
    }

    @Override
    public void compress(
        DecoderLayer layer, Linear.Input input, List<Linear> linears, InputStatistics stats) {
      LlamaFamily family = runtime.family();
      float[] hessian = null;
      for (Linear linear : linears) {
        Integer bits = bitsOf(layer.index, linear);
        if (bits == null) {
          continue;
        }
        if (hessian == null) {
          hessian = stats.hessian();
        }
        float[] w = runtime.weights().floats(linear.weightName(layer.index));
        Gptq.Result r =
            Gptq.quantize(
                w,
                linear.outFeatures(family),
                linear.inFeatures(family),
                hessian.clone(),
                new Gptq.Options(
                    scheme(bits, modelDtype),
                    o.damp(),
                    o.blockSize(),
                    o.actOrder(),
                    o.staticGroups()));
        quantized.put(linear, r.quantized());
        float[] dequantized = r.quantized().dequantize();
        layer.replace(linear, dequantized);
        ObjectNode m = matrix(layer.index, linear, bits, r.seconds());
        sparsity(m, w, dequantized);
        m.put("gptq_loss", r.loss());
        m.put("damp", r.damp());
        if (r.fellBackToRtn()) {
          m.put("fell_back_to_rtn", true);
        }
        if (r.warning() != null) {
          warnings.add(module(layer.index, linear) + ": " + r.warning());
        }
      }
    }

    @Override
    public void layerDone(DecoderLayer layer) {
      layers.writeLayer(layer.index, quantized);
      quantized.clear();
    }
  }

  private ObjectNode matrix(int layer, Linear linear, int bits, double seconds) {
    ObjectNode m = matrices.addObject();
    m.put("name", module(layer, linear));
    m.put("bits", bits);
    m.put("group_size", o.groupSize());
    m.put("seconds", seconds);
    return m;
  }

  /** Where a layer's tensors go once its matrices are quantized. */
  private interface LayerSink {
    void writeLayer(int layer, Map<Linear, QuantizedTensor> quantized);
  }

  /**
   * Streams one layer's tensors: quantized matrices in the chosen layout, the rest as they were.
   */
  private final class LayerWriter implements LayerSink {
    private final Checkpoint checkpoint;
    private final SafetensorsWriter writer;

    LayerWriter(Checkpoint checkpoint, SafetensorsWriter writer) {
      this.checkpoint = checkpoint;
      this.writer = writer;
    }

    void copy(String name) {
      TensorInfo info = checkpoint.info(name);
      writer.write(name, info.dtype(), info.shape(), checkpoint.bytes(name));
    }

    @Override
    public void writeLayer(int i, Map<Linear, QuantizedTensor> quantized) {
      Map<String, Linear> weightNames = new TreeMap<>();
      Map<String, Linear> biasNames = new TreeMap<>();
      for (Map.Entry<Linear, QuantizedTensor> e : quantized.entrySet()) {
        weightNames.put(e.getKey().weightName(i), e.getKey());
        biasNames.put(e.getKey().biasName(i), e.getKey());
      }
      String prefix = "model.layers." + i + ".";
      for (String name : checkpoint.names()) {
        if (!name.startsWith(prefix)) {
          continue;
        }
        Linear linear = weightNames.get(name);
        if (linear != null) {
          writeQuantized(i, linear, quantized.get(linear));
        } else if (biasNames.containsKey(name) && o.format() == QuantizeOptions.Format.GPTQ) {
          continue; // the GPTQ layout stores the bias itself, in float16
        } else {
          copy(name);
        }
      }
    }

    private void writeQuantized(int i, Linear linear, QuantizedTensor q) {
      String module = module(i, linear);
      String biasName = linear.biasName(i);
      switch (o.format()) {
        case GPTQ ->
            GptqLayout.write(
                writer,
                module,
                q,
                checkpoint.contains(biasName) ? checkpoint.floats(biasName) : null,
                o.checkpointV2() ? CheckpointFormat.V2 : CheckpointFormat.V1,
                warnings);
        case COMPRESSED_TENSORS ->
            CompressedTensorsLayout.write(writer, module, q, scaleDtype(modelDtype), warnings);
        case DENSE ->
            writer.writeFloats(
                linear.weightName(i), modelDtype, new long[] {q.rows(), q.cols()}, q.dequantize());
      }
    }
  }

  private void writeConfig(ModelFolder input, Path dir) {
    ModelConfig config = input.config();
    switch (o.format()) {
      case GPTQ -> {
        ObjectNode qc =
            GptqLayout.quantizationConfig(
                o.bits(),
                o.groupSize(),
                o.actOrder(),
                o.symmetric(),
                o.damp(),
                true,
                o.staticGroups(),
                o.checkpointV2() ? CheckpointFormat.V2 : CheckpointFormat.V1);
        if (!o.ignore().isEmpty() || !o.bitsFor().isEmpty()) {
          // GPTQModel's per-module overrides: "-:regex" skips a module, "+:regex" changes its
          // settings.
          ObjectNode dynamic = qc.putObject("dynamic");
          o.ignore().forEach(p -> dynamic.putObject("-:" + p.pattern()));
          o.bitsFor()
              .forEach(b -> dynamic.putObject("+:" + b.pattern().pattern()).put("bits", b.bits()));
        }
        config.with(json -> json.set("quantization_config", qc)).write(dir.resolve("config.json"));
        Json.writePretty(dir.resolve("quantize_config.json"), qc);
      }
      case COMPRESSED_TENSORS -> {
        List<String> ignored = new ArrayList<>(List.of("lm_head"));
        LlamaFamily family = LlamaFamily.from(config);
        for (int i = 0; i < family.layers(); i++) {
          for (Linear linear : Linear.values()) {
            if (o.bitsOf(module(i, linear)) == null) {
              ignored.add(module(i, linear));
            }
          }
        }
        ObjectNode qc =
            CompressedTensorsLayout.quantizationConfig(
                o.bits(), o.groupSize(), o.symmetric(), o.actOrder(), ignored);
        if (!o.bitsFor().isEmpty()) {
          splitGroupsByBits(qc, family);
        }
        config.with(json -> json.set("quantization_config", qc)).write(dir.resolve("config.json"));
      }
      case DENSE -> config.write(dir.resolve("config.json"));
    }
  }

  /** With --bits-for, one config group per bit width, each naming its modules. */
  private void splitGroupsByBits(ObjectNode qc, LlamaFamily family) {
    ObjectNode groups = (ObjectNode) qc.get("config_groups");
    ObjectNode template = (ObjectNode) groups.get("group_0");
    Map<Integer, List<String>> byBits = new TreeMap<>();
    for (int i = 0; i < family.layers(); i++) {
      for (Linear linear : Linear.values()) {
        Integer bits = o.bitsOf(module(i, linear));
        if (bits != null) {
          byBits.computeIfAbsent(bits, b -> new ArrayList<>()).add(module(i, linear));
        }
      }
    }
    groups.removeAll();
    int g = 0;
    for (Map.Entry<Integer, List<String>> e : byBits.entrySet()) {
      ObjectNode group = template.deepCopy();
      ArrayNode targets = group.putArray("targets");
      e.getValue().forEach(targets::add);
      ((ObjectNode) group.get("weights")).put("num_bits", e.getKey());
      groups.set("group_" + g++, group);
    }
  }

  private ObjectNode evaluate(Path before, Path after) {
    return Runs.evaluate(before, after, o.eval(), o.evalMaxWindows());
  }

  static String module(int layer, Linear linear) {
    return "model.layers." + layer + "." + linear.path;
  }

  private static double mse(float[] a, float[] b) {
    double sum = 0;
    for (int i = 0; i < a.length; i++) {
      double d = a[i] - b[i];
      sum += d * d;
    }
    return sum / a.length;
  }
}
