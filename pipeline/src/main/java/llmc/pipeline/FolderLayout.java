package llmc.pipeline;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.function.BiFunction;
import java.util.function.DoubleSupplier;
import llmc.calibration.CompressedMatrix;
import llmc.formats.Checkpoint;
import llmc.formats.DType;
import llmc.formats.Json;
import llmc.formats.ModelConfig;
import llmc.formats.SafetensorsWriter;
import llmc.formats.TensorInfo;
import llmc.formats.quant.ByteQuantizedLayout;
import llmc.formats.quant.CompressedTensorsLayout;
import llmc.formats.quant.GptqLayout;
import llmc.formats.quant.KvCacheQuantization;
import llmc.formats.quant.Sparse24BitmaskLayout;
import llmc.model.Linear;
import llmc.model.LlamaFamily;

/**
 * How a Hugging Face folder stores a compressed linear layer, and the {@code config.json} (with its
 * {@code quantization_config}) that tells readers so: GPTQ v1/v2, compressed-tensors'
 * pack-quantized and sparse-24-bitmask, or dense values. Chosen once per run.
 */
interface FolderLayout {

  /** Writes the tensors of one compressed matrix ({@code model.layers.i.<path>}). */
  void write(SafetensorsWriter out, Checkpoint input, int layer, Linear linear, CompressedMatrix m);

  /** True when the layout stores a compressed matrix's bias itself (so the copy is skipped). */
  default boolean storesBias() {
    return false;
  }

  /** Writes {@code config.json} (and any other file the layout's readers need) into {@code dir}. */
  void writeConfig(ModelConfig input, Path dir);

  /**
   * The values as they are, in {@code dtype} (null: the stored tensor's own dtype); the config
   * unchanged.
   */
  static FolderLayout dense(DType dtype) {
    return new FolderLayout() {
      @Override
      public void write(
          SafetensorsWriter out, Checkpoint input, int layer, Linear linear, CompressedMatrix m) {
        TensorInfo info = input.info(linear.weightName(layer));
        out.writeFloats(
            linear.weightName(layer),
            dtype != null ? dtype : info.dtype(),
            info.shape(),
            m.weight());
      }

      @Override
      public void writeConfig(ModelConfig input, Path dir) {
        input.write(dir.resolve("config.json"));
      }
    };
  }

  /**
   * AutoGPTQ / GPTQModel: {@code qweight}, {@code qzeros}, {@code scales}, {@code g_idx}, the bias
   * in float16; {@code quantization_config} and {@code quantize_config.json}, with per-module
   * overrides as GPTQModel's {@code dynamic}.
   */
  static FolderLayout gptq(QuantizeSettings s, List<String> warnings) {
    return new FolderLayout() {
      @Override
      public void write(
          SafetensorsWriter out, Checkpoint input, int layer, Linear linear, CompressedMatrix m) {
        String bias = linear.biasName(layer);
        GptqLayout.write(
            out,
            linear.moduleName(layer),
            m.quantized(),
            input.contains(bias) ? input.floats(bias) : null,
            s.checkpointFormat(),
            warnings);
      }

      @Override
      public boolean storesBias() {
        return true;
      }

      @Override
      public void writeConfig(ModelConfig input, Path dir) {
        ObjectNode qc =
            GptqLayout.quantizationConfig(
                s.bits(),
                s.groupSize(),
                s.actOrder(),
                s.symmetric(),
                s.damp(),
                true,
                s.staticGroups(),
                s.checkpointFormat());
        if (!s.ignore().isEmpty() || !s.bitsFor().isEmpty()) {
          // GPTQModel's per-module overrides: "-:regex" skips a module, "+:regex" changes it.
          ObjectNode dynamic = qc.putObject("dynamic");
          s.ignore().forEach(p -> dynamic.putObject("-:" + p.pattern()));
          s.bitsFor()
              .forEach(b -> dynamic.putObject("+:" + b.pattern().pattern()).put("bits", b.bits()));
        }
        input.with(json -> json.set("quantization_config", qc)).write(dir.resolve("config.json"));
        Json.writePretty(dir.resolve("quantize_config.json"), qc);
      }
    };
  }

  /**
   * vLLM / llm-compressor's {@code pack-quantized}: scales in {@code scaleDtype}; modules left out
   * in {@code ignore}, one config group per bit width.
   */
  static FolderLayout compressedTensors(
      QuantizeSettings s,
      LlamaFamily family,
      BiFunction<Integer, Linear, Integer> bitsOf,
      DType scaleDtype,
      List<String> warnings) {
    return new FolderLayout() {
      @Override
      public void write(
          SafetensorsWriter out, Checkpoint input, int layer, Linear linear, CompressedMatrix m) {
        CompressedTensorsLayout.write(
            out, linear.moduleName(layer), m.quantized(), scaleDtype, warnings);
      }

      @Override
      public void writeConfig(ModelConfig input, Path dir) {
        List<String> ignored = new ArrayList<>(List.of("lm_head"));
        Map<Integer, List<String>> byBits = new TreeMap<>();
        for (int i = 0; i < family.layers(); i++) {
          for (Linear linear : Linear.values()) {
            Integer bits = bitsOf.apply(i, linear);
            if (bits == null) {
              ignored.add(linear.moduleName(i));
            } else {
              byBits.computeIfAbsent(bits, b -> new ArrayList<>()).add(linear.moduleName(i));
            }
          }
        }
        ObjectNode qc =
            CompressedTensorsLayout.quantizationConfig(
                s.bits(), s.groupSize(), s.symmetric(), s.actOrder(), ignored);
        if (!s.bitsFor().isEmpty()) {
          // One config group per bit width, each naming its modules.
          ObjectNode groups = (ObjectNode) qc.get("config_groups");
          ObjectNode template = (ObjectNode) groups.get("group_0");
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
        input.with(json -> json.set("quantization_config", qc)).write(dir.resolve("config.json"));
      }
    };
  }

  /**
   * {@code layout} with compressed-tensors' {@code kv_cache_scheme} of {@code kvCache} added to its
   * {@code quantization_config} (none when null); with {@code noWeights} the config quantizes no
   * weights ({@code config_groups} empty, format {@code dense}), only the cache.
   */
  static FolderLayout withKvCache(
      FolderLayout layout, KvCacheQuantization.Type kvCache, boolean noWeights) {
    if (kvCache == null) {
      return layout;
    }
    return new FolderLayout() {
      @Override
      public void write(
          SafetensorsWriter out, Checkpoint input, int layer, Linear linear, CompressedMatrix m) {
        layout.write(out, input, layer, linear, m);
      }

      @Override
      public boolean storesBias() {
        return layout.storesBias();
      }

      @Override
      public void writeConfig(ModelConfig input, Path dir) {
        layout.writeConfig(input, dir);
        Path file = dir.resolve("config.json");
        ModelConfig written = ModelConfig.read(file);
        written
            .with(
                json -> {
                  ObjectNode qc = (ObjectNode) json.get("quantization_config");
                  if (noWeights) {
                    qc.put("format", "dense");
                    qc.putObject("config_groups");
                    qc.putArray("ignore");
                  }
                  qc.set("kv_cache_scheme", KvCacheQuantization.config(kvCache));
                })
            .write(file);
      }
    };
  }

  /**
   * compressed-tensors' {@code int-quantized} (W8A8) or {@code float-quantized} (FP8): one byte per
   * weight and a scale per row, the activation scheme in the config group.
   */
  static FolderLayout byteQuantized(
      QuantizeSettings s,
      LlamaFamily family,
      BiFunction<Integer, Linear, Integer> bitsOf,
      DType scaleDtype) {
    return new FolderLayout() {
      @Override
      public void write(
          SafetensorsWriter out, Checkpoint input, int layer, Linear linear, CompressedMatrix m) {
        ByteQuantizedLayout.write(out, linear.moduleName(layer), m.quantized(), scaleDtype);
      }

      @Override
      public void writeConfig(ModelConfig input, Path dir) {
        List<String> ignored = new ArrayList<>(List.of("lm_head"));
        for (int i = 0; i < family.layers(); i++) {
          for (Linear linear : Linear.values()) {
            if (bitsOf.apply(i, linear) == null) {
              ignored.add(linear.moduleName(i));
            }
          }
        }
        ObjectNode qc =
            ByteQuantizedLayout.quantizationConfig(
                s.scheme().fp8, s.groupSize(), s.scheme().inputQuantization(), ignored);
        input.with(json -> json.set("quantization_config", qc)).write(dir.resolve("config.json"));
      }
    };
  }

  /**
   * compressed-tensors' {@code sparse-24-bitmask}: 2:4 matrices as their non-zero values and a
   * bitmask; the config names the modules left dense and the global sparsity (known at the end).
   */
  static FolderLayout sparse24Bitmask(List<String> denseModules, DoubleSupplier globalSparsity) {
    return new FolderLayout() {
      @Override
      public void write(
          SafetensorsWriter out, Checkpoint input, int layer, Linear linear, CompressedMatrix m) {
        TensorInfo info = input.info(linear.weightName(layer));
        Sparse24BitmaskLayout.write(
            out,
            linear.moduleName(layer),
            m.weight(),
            (int) info.shape()[0],
            (int) info.shape()[1],
            info.dtype());
      }

      @Override
      public void writeConfig(ModelConfig input, Path dir) {
        List<String> ignore = new ArrayList<>(List.of("lm_head"));
        ignore.addAll(denseModules);
        input
            .with(
                json ->
                    json.set(
                        "quantization_config",
                        Sparse24BitmaskLayout.config(
                            List.of("Linear"), ignore, globalSparsity.getAsDouble())))
            .write(dir.resolve("config.json"));
      }
    };
  }
}
