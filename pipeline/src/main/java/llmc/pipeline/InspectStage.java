package llmc.pipeline;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.databind.node.TextNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import llmc.calibration.ActivationOutliers;
import llmc.calibration.LayerwisePipeline;
import llmc.formats.BadInputException;
import llmc.formats.Checkpoint;
import llmc.formats.Json;
import llmc.formats.ModelConfig;
import llmc.formats.ModelFolder;
import llmc.formats.TensorInfo;
import llmc.formats.gguf.GgufFile;
import llmc.formats.gguf.GgufMetadata;
import llmc.formats.gguf.GgufTensorInfo;
import llmc.formats.gguf.GgufValueType;
import llmc.formats.quant.QuantizedCheckpoint;
import llmc.model.Linear;
import llmc.model.LlamaFamily;
import llmc.model.LlamaRuntime;
import llmc.model.LoadedModel;
import llmc.model.Weights;
import llmc.model.gguf.GgufWeights;
import llmc.model.gguf.LlamaGguf;
import llmc.prune.Masks;

/**
 * Architecture, parameter count, dtypes, size on disk and the memory needed to run a model folder
 * or a GGUF file. Reads a folder's linear weights once (for the sparsity); a GGUF file's only from
 * its header.
 */
public final class InspectStage implements Stage<InspectSettings, InspectReport> {

  @Override
  public InspectReport run(InspectSettings s, Progress progress) {
    return LoadedModel.isGguf(s.model()) ? gguf(s) : folder(s, progress);
  }

  private static InspectReport folder(InspectSettings s, Progress progress) {
    try (ModelFolder folder = ModelFolder.open(s.model())) {
      ModelConfig config = folder.config();
      LlamaFamily family = LlamaFamily.of(folder);
      Checkpoint checkpoint = folder.checkpoint();
      long weightBytes = 0;
      Map<String, Long> bytesByDtype = new TreeMap<>();
      for (String name : checkpoint.names()) {
        TensorInfo info = checkpoint.info(name);
        weightBytes += info.byteSize();
        bytesByDtype.merge(info.dtype().safetensorsName(), info.byteSize(), Long::sum);
      }
      // Parameters as the model computes with them: a quantized matrix counts its N x K weights.
      ObjectNode quantization = (ObjectNode) config.json().get("quantization_config");
      QuantizedCheckpoint logical = QuantizedCheckpoint.open(checkpoint, quantization);
      long parameters = 0;
      for (String name : logical.names()) {
        parameters += Arrays.stream(logical.shape(name)).reduce(1, (a, b) -> a * b);
      }
      List<InspectReport.Tensor> tensors = null;
      if (s.tensors()) {
        tensors = new ArrayList<>();
        for (String name : checkpoint.names()) {
          TensorInfo info = checkpoint.info(name);
          tensors.add(
              new InspectReport.Tensor(
                  name,
                  info.dtype().safetensorsName(),
                  shape(info.shape()),
                  info.byteSize(),
                  checkpoint.fileOf(name).path().getFileName().toString(),
                  null));
        }
      }
      return new InspectReport(
          s.model().toString(),
          null,
          null,
          config.architecture(),
          config.modelType(),
          null,
          parameters,
          null,
          bytesByDtype,
          8.0 * weightBytes / parameters,
          quantization,
          checkpoint.sizeOnDisk(),
          checkpoint.files().size(),
          shape(family),
          memory(s, family, weightBytes, modelKvDtype(quantization, s.model())),
          sparsity(family, Weights.of(folder), progress),
          null,
          null,
          null,
          tensors,
          s.calibration() == null ? null : s.outlierThreshold(),
          s.calibration() == null ? null : outliers(s, folder, family, progress));
    }
  }

  /**
   * A GGUF file: the same report as a folder's where it applies (parameters, bytes by dtype, size,
   * shape, memory), dtypes as ggml names them, plus the parameters by dtype and a summary of the
   * metadata (general.*, llama.*, the tokenizer's model and token count). Shape and memory need
   * llama.cpp's "llama" architecture; other architectures are listed without them.
   */
  private static InspectReport gguf(InspectSettings s) {
    Path model = s.model();
    try (GgufFile file = GgufFile.open(model)) {
      GgufMetadata meta = file.metadata();
      String architecture =
          meta.contains("general.architecture") ? meta.string("general.architecture") : "(none)";
      long parameters = 0;
      long weightBytes = 0;
      Map<String, Long> bytesByDtype = new TreeMap<>();
      Map<String, Long> parametersByDtype = new TreeMap<>();
      for (GgufTensorInfo t : file.tensors()) {
        parameters += t.numel();
        weightBytes += t.byteSize();
        bytesByDtype.merge(t.type().ggmlName(), t.byteSize(), Long::sum);
        parametersByDtype.merge(t.type().ggmlName(), t.numel(), Long::sum);
      }
      long sizeOnDisk;
      try {
        sizeOnDisk = Files.size(model);
      } catch (IOException e) {
        throw new BadInputException(model + ": cannot read its size: " + e.getMessage(), e);
      }
      InspectReport.Shape shape = null;
      InspectReport.Memory memory = null;
      if (architecture.equals(LlamaGguf.ARCHITECTURE)) {
        LlamaFamily family = GgufWeights.family(file);
        shape = shape(family);
        memory = memory(s, family, weightBytes);
      }
      Map<String, JsonNode> metadata = new LinkedHashMap<>();
      for (String key : meta.keys()) {
        if (key.startsWith("general.") || key.startsWith(architecture + ".")) {
          metadata.put(key, summary(meta, key));
        }
      }
      Map<String, JsonNode> tokenizer = null;
      if (meta.contains("tokenizer.ggml.model")) {
        tokenizer = new LinkedHashMap<>();
        for (String key : meta.keys()) {
          if (key.startsWith("tokenizer.ggml.") && meta.type(key) != GgufValueType.ARRAY) {
            tokenizer.put(key.substring("tokenizer.ggml.".length()), summary(meta, key));
          }
        }
        if (meta.contains("tokenizer.ggml.tokens")
            && meta.type("tokenizer.ggml.tokens") == GgufValueType.ARRAY) {
          tokenizer.put(
              "tokens", Json.mapper().valueToTree(meta.strings("tokenizer.ggml.tokens").size()));
        }
      }
      List<InspectReport.Tensor> tensors = null;
      if (s.tensors()) {
        tensors = new ArrayList<>();
        for (GgufTensorInfo info : file.tensors()) {
          tensors.add(
              new InspectReport.Tensor(
                  info.name(),
                  info.type().ggmlName(),
                  shape(info.shape()),
                  info.byteSize(),
                  null,
                  LlamaGguf.hfName(info.name())));
        }
      }
      return new InspectReport(
          model.toString(),
          "gguf",
          file.version(),
          architecture,
          null,
          file.tensors().size(),
          parameters,
          parametersByDtype,
          bytesByDtype,
          parameters == 0 ? 0 : 8.0 * weightBytes / parameters,
          null,
          sizeOnDisk,
          1,
          shape,
          memory,
          null,
          meta.keys().size(),
          metadata,
          tokenizer,
          tensors,
          null,
          null);
    }
  }

  /**
   * Runs the calibration windows through the model, layer by layer, and reports every input's
   * activation outliers (the uncompressed walk every calibration method starts from).
   */
  private static List<ActivationOutliers> outliers(
      InspectSettings s, ModelFolder folder, LlamaFamily family, Progress progress) {
    Calibration cut = Calibration.cut(folder, family, s.calibration(), progress);
    List<ActivationOutliers> found = new ArrayList<>();
    try (LlamaRuntime runtime = new LlamaRuntime(family, Weights.of(folder), false)) {
      LayerwisePipeline.run(
          runtime,
          cut.windows(),
          (layer, input, linears, stats) ->
              found.add(
                  ActivationOutliers.of(layer.index, input, stats.absMax(), s.outlierThreshold())),
          (i, n) -> progress.update("inspect: activations of layer", i + 1, n));
    }
    return found;
  }

  /** The KV cache type of a folder's {@code kv_cache_scheme}, or null. */
  private static InspectSettings.KvDtype modelKvDtype(ObjectNode quantization, Path model) {
    var type =
        llmc.formats.quant.KvCacheQuantization.parse(
            quantization == null ? null : quantization.get("kv_cache_scheme"),
            model.resolve("config.json") + ": quantization_config");
    return type == null
        ? null
        : type == llmc.formats.quant.KvCacheQuantization.Type.FP8_STATIC
            ? InspectSettings.KvDtype.FP8
            : InspectSettings.KvDtype.INT8;
  }

  private static List<Long> shape(long[] dims) {
    return Arrays.stream(dims).boxed().toList();
  }

  /**
   * A metadata value as JSON: scalars as they are, arrays of up to 8 values in full, longer ones as
   * a count.
   */
  private static JsonNode summary(GgufMetadata meta, String key) {
    Object value = meta.value(key);
    if (meta.type(key) == GgufValueType.ARRAY) {
      int length =
          switch (value) {
            case long[] a -> a.length;
            case float[] a -> a.length;
            case double[] a -> a.length;
            case boolean[] a -> a.length;
            case List<?> a -> a.size();
            default -> throw new IllegalStateException(key);
          };
      if (length > 8) {
        return new TextNode("[" + length + " " + meta.elementType(key).label() + " values]");
      }
    }
    return Json.mapper().valueToTree(value);
  }

  /**
   * The exact zeros of the decoder's linear weights (as the model computes with them: quantized
   * ones dequantized), and whether every one of them is 2:4. Reads every linear weight once.
   */
  private static InspectReport.Sparsity sparsity(
      LlamaFamily family, Weights weights, Progress progress) {
    long zeros = 0;
    long count = 0;
    boolean twoFour = true;
    for (int i = 0; i < family.layers(); i++) {
      progress.update("inspect: layer", i + 1, family.layers());
      for (Linear linear : Linear.values()) {
        float[] w = weights.floats(linear.weightName(i));
        for (float x : w) {
          zeros += x == 0f ? 1 : 0;
        }
        count += w.length;
        twoFour &=
            linear.inFeatures(family) % 4 == 0
                && Masks.satisfies(w, linear.outFeatures(family), linear.inFeatures(family), 2, 4);
      }
    }
    progress.finished();
    return new InspectReport.Sparsity(
        count == 0 ? 0 : (double) zeros / count, zeros, count, twoFour);
  }

  private static InspectReport.Shape shape(LlamaFamily family) {
    return new InspectReport.Shape(
        family.hidden(),
        family.layers(),
        family.heads(),
        family.kvHeads(),
        family.headDim(),
        family.intermediate(),
        family.vocab(),
        family.contextLength(),
        family.tiedEmbeddings());
  }

  private static InspectReport.Memory memory(
      InspectSettings s, LlamaFamily family, long weightBytes) {
    return memory(s, family, weightBytes, null);
  }

  /**
   * @param modelKv the KV cache type the model's config declares, or null: used when the settings
   *     name none
   */
  private static InspectReport.Memory memory(
      InspectSettings s, LlamaFamily family, long weightBytes, InspectSettings.KvDtype modelKv) {
    InspectSettings.KvDtype dtype =
        s.kvDtype() != null ? s.kvDtype() : modelKv != null ? modelKv : InspectSettings.KvDtype.F16;
    int tokens = s.seqLen() != null ? s.seqLen() : family.contextLength();
    long kvCache =
        2L
            * family.layers()
            * family.kvHeads()
            * family.headDim()
            * dtype.bytes()
            * s.batch()
            * tokens;
    return new InspectReport.Memory(
        s.batch(), tokens, dtype.label(), weightBytes, kvCache, weightBytes + kvCache);
  }
}
