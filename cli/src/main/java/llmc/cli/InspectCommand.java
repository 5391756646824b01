package llmc.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.databind.node.TextNode;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.Callable;
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
import llmc.model.LoadedModel;
import llmc.model.Weights;
import llmc.model.gguf.GgufWeights;
import llmc.model.gguf.LlamaGguf;
import llmc.prune.Masks;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

@Command(
    name = "inspect",
    mixinStandardHelpOptions = true,
    description = {
      "Architecture, parameter count, dtypes, size on disk and the memory needed to run a model.",
      "Memory = weights as stored + KV cache (2 x layers x kv_heads x head_dim x bytes x batch x seq-len)."
    },
    footer = {
      "",
      "Example:",
      "  llmc inspect samples/models/stories260K --tensors",
      "  llmc inspect my-model --batch 8 --seq-len 4096 --kv-dtype f16 --json",
      "  llmc inspect model-q4_0.gguf --tensors"
    })
final class InspectCommand implements Callable<Integer> {
  @Parameters(
      index = "0",
      paramLabel = "MODEL",
      description = "A Hugging Face model folder or a .gguf file.")
  Path model;

  @Option(
      names = "--tensors",
      description = "List every tensor (name, dtype, shape outermost first, bytes).")
  boolean tensors;

  @Option(
      names = "--batch",
      paramLabel = "B",
      defaultValue = "1",
      description = "Sequences held at once (default: ${DEFAULT-VALUE}).")
  int batch;

  @Option(
      names = "--seq-len",
      paramLabel = "L",
      description = "Tokens per sequence (default: the model's context length).")
  Integer seqLen;

  @Option(
      names = "--kv-dtype",
      paramLabel = "DTYPE",
      defaultValue = "f16",
      description = "KV cache element type: f32, f16, bf16, fp8 (default: ${DEFAULT-VALUE}).")
  String kvDtype;

  @Mixin CommonOptions common;

  @Spec CommandSpec spec;

  @Override
  public Integer call() {
    int kvBytes =
        switch (kvDtype.toLowerCase()) {
          case "f32", "float32" -> 4;
          case "f16", "float16", "bf16", "bfloat16" -> 2;
          case "fp8", "f8", "int8", "q8" -> 1;
          default ->
              throw new BadInputException(
                  "--kv-dtype '" + kvDtype + "': use f32, f16, bf16 or fp8");
        };
    if (batch < 1) {
      throw new BadInputException("--batch must be at least 1");
    }
    if (LoadedModel.isGguf(model)) {
      return inspectGguf(kvBytes);
    }
    try (ModelFolder folder = ModelFolder.open(model)) {
      ModelConfig config = folder.config();
      LlamaFamily family = LlamaFamily.from(config);
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
      ObjectNode out = Json.mapper().createObjectNode();
      out.put("model", model.toString());
      out.put("architecture", config.architecture());
      out.put("model_type", config.modelType());
      out.put("parameters", parameters);
      ObjectNode dtypes = out.putObject("bytes_by_dtype");
      bytesByDtype.forEach(dtypes::put);
      out.put("bits_per_parameter", 8.0 * weightBytes / parameters);
      if (quantization != null) {
        out.set("quantization", quantization);
      }
      out.put("size_on_disk_bytes", checkpoint.sizeOnDisk());
      out.put("files", checkpoint.files().size());
      putShape(out, family);
      putMemory(out, family, kvBytes, weightBytes);
      putSparsity(out, family, Weights.of(folder));
      if (tensors) {
        ArrayNode list = out.putArray("tensors");
        for (String name : checkpoint.names()) {
          TensorInfo info = checkpoint.info(name);
          ObjectNode t = list.addObject();
          t.put("name", name);
          t.put("dtype", info.dtype().safetensorsName());
          ArrayNode dims = t.putArray("shape");
          Arrays.stream(info.shape()).forEach(dims::add);
          t.put("bytes", info.byteSize());
          t.put("file", checkpoint.fileOf(name).path().getFileName().toString());
        }
      }
      PrintWriter stdout = spec.commandLine().getOut();
      if (common.json) {
        common.print(stdout, out);
      } else {
        printHuman(stdout, out);
      }
    }
    return Llmc.OK;
  }

  /**
   * A GGUF file: the same report as a folder's where it applies (parameters, bytes by dtype, size,
   * shape, memory), dtypes as ggml names them, plus the parameters by dtype and a summary of the
   * metadata (general.*, llama.*, the tokenizer's model and token count). Shape and memory need
   * llama.cpp's "llama" architecture; other architectures are listed without them.
   */
  private Integer inspectGguf(int kvBytes) {
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

      ObjectNode out = Json.mapper().createObjectNode();
      out.put("model", model.toString());
      out.put("format", "gguf");
      out.put("gguf_version", file.version());
      out.put("architecture", architecture);
      out.put("tensor_count", file.tensors().size());
      out.put("parameters", parameters);
      ObjectNode params = out.putObject("parameters_by_dtype");
      parametersByDtype.forEach(params::put);
      ObjectNode dtypes = out.putObject("bytes_by_dtype");
      bytesByDtype.forEach(dtypes::put);
      out.put("bits_per_parameter", parameters == 0 ? 0 : 8.0 * weightBytes / parameters);
      out.put("size_on_disk_bytes", sizeOnDisk);
      out.put("files", 1);
      if (architecture.equals(LlamaGguf.ARCHITECTURE)) {
        LlamaFamily family = GgufWeights.family(file);
        putShape(out, family);
        putMemory(out, family, kvBytes, weightBytes);
      }
      out.put("metadata_keys", meta.keys().size());
      ObjectNode metadata = out.putObject("metadata");
      for (String key : meta.keys()) {
        if (key.startsWith("general.") || key.startsWith(architecture + ".")) {
          metadata.set(key, summary(meta, key));
        }
      }
      if (meta.contains("tokenizer.ggml.model")) {
        ObjectNode tokenizer = out.putObject("tokenizer");
        for (String key : meta.keys()) {
          if (key.startsWith("tokenizer.ggml.") && meta.type(key) != GgufValueType.ARRAY) {
            tokenizer.set(key.substring("tokenizer.ggml.".length()), summary(meta, key));
          }
        }
        if (meta.contains("tokenizer.ggml.tokens")
            && meta.type("tokenizer.ggml.tokens") == GgufValueType.ARRAY) {
          tokenizer.put("tokens", meta.strings("tokenizer.ggml.tokens").size());
        }
      }
      if (tensors) {
        ArrayNode list = out.putArray("tensors");
        for (GgufTensorInfo info : file.tensors()) {
          ObjectNode t = list.addObject();
          t.put("name", info.name());
          t.put("dtype", info.type().ggmlName());
          ArrayNode dims = t.putArray("shape");
          Arrays.stream(info.shape()).forEach(dims::add);
          t.put("bytes", info.byteSize());
          t.put("hf_name", LlamaGguf.hfName(info.name()));
        }
      }
      PrintWriter stdout = spec.commandLine().getOut();
      if (common.json) {
        common.print(stdout, out);
      } else {
        printHuman(stdout, out);
      }
    }
    return Llmc.OK;
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
  private static void putSparsity(ObjectNode out, LlamaFamily family, Weights weights) {
    long zeros = 0;
    long count = 0;
    boolean twoFour = true;
    for (int i = 0; i < family.layers(); i++) {
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
    ObjectNode sparsity = out.putObject("sparsity");
    sparsity.put("linear", count == 0 ? 0 : (double) zeros / count);
    sparsity.put("zeros", zeros);
    sparsity.put("weights", count);
    sparsity.put("two_four", twoFour);
  }

  private void putShape(ObjectNode out, LlamaFamily family) {
    ObjectNode shape = out.putObject("shape");
    shape.put("hidden_size", family.hidden());
    shape.put("num_hidden_layers", family.layers());
    shape.put("num_attention_heads", family.heads());
    shape.put("num_key_value_heads", family.kvHeads());
    shape.put("head_dim", family.headDim());
    shape.put("intermediate_size", family.intermediate());
    shape.put("vocab_size", family.vocab());
    shape.put("context_length", family.contextLength());
    shape.put("tie_word_embeddings", family.tiedEmbeddings());
  }

  private void putMemory(ObjectNode out, LlamaFamily family, int kvBytes, long weightBytes) {
    int tokens = seqLen != null ? seqLen : family.contextLength();
    long kvCache =
        2L * family.layers() * family.kvHeads() * family.headDim() * kvBytes * batch * tokens;
    ObjectNode memory = out.putObject("memory");
    memory.put("batch", batch);
    memory.put("seq_len", tokens);
    memory.put("kv_dtype", kvDtype.toLowerCase());
    memory.put("weights_bytes", weightBytes);
    memory.put("kv_cache_bytes", kvCache);
    memory.put("total_bytes", weightBytes + kvCache);
  }

  private static void printHuman(PrintWriter o, ObjectNode r) {
    ObjectNode s = (ObjectNode) r.get("shape");
    ObjectNode m = (ObjectNode) r.get("memory");
    boolean gguf = r.has("gguf_version");
    o.printf("model         %s%n", r.get("model").asText());
    if (gguf) {
      o.printf(
          "architecture  %s (GGUF v%d, %d tensors)%n",
          r.get("architecture").asText(),
          r.get("gguf_version").asInt(),
          r.get("tensor_count").asInt());
      o.printf(
          "parameters    %,d (%.2f bits each as stored; parameters by dtype %s; bytes by dtype %s)%n",
          r.get("parameters").asLong(),
          r.get("bits_per_parameter").asDouble(),
          r.get("parameters_by_dtype"),
          r.get("bytes_by_dtype"));
    } else {
      o.printf(
          "architecture  %s (%s)%n", r.get("architecture").asText(), r.path("model_type").asText());
      o.printf(
          "parameters    %,d (%.2f bits each as stored; bytes by dtype %s)%n",
          r.get("parameters").asLong(),
          r.get("bits_per_parameter").asDouble(),
          r.get("bytes_by_dtype"));
    }
    if (r.has("quantization")) {
      var q = r.get("quantization");
      o.printf(
          "quantization  %s%s%s%n",
          q.path("quant_method").asText(),
          q.has("bits")
              ? ", " + q.get("bits").asInt() + " bits, group " + q.path("group_size").asInt()
              : "",
          q.has("format") ? ", " + q.get("format").asText() : "");
    }
    o.printf(
        "on disk       %s in %d file(s)%n",
        Sizes.human(r.get("size_on_disk_bytes").asLong()), r.get("files").asInt());
    if (s != null) {
      o.printf(
          "shape         hidden %d, layers %d, heads %d (kv %d, head_dim %d), intermediate %d, vocab %d, context %d%s%n",
          s.get("hidden_size").asInt(),
          s.get("num_hidden_layers").asInt(),
          s.get("num_attention_heads").asInt(),
          s.get("num_key_value_heads").asInt(),
          s.get("head_dim").asInt(),
          s.get("intermediate_size").asInt(),
          s.get("vocab_size").asInt(),
          s.get("context_length").asInt(),
          s.get("tie_word_embeddings").asBoolean() ? ", tied embeddings" : "");
    }
    JsonNode sp = r.get("sparsity");
    if (sp != null) {
      o.printf(
          "sparsity      %.2f%% of the linear layers' weights are zero (%,d of %,d)%s%n",
          100 * sp.get("linear").asDouble(),
          sp.get("zeros").asLong(),
          sp.get("weights").asLong(),
          sp.get("two_four").asBoolean() ? "; 2:4 in every block" : "");
    }
    if (m != null) {
      o.printf(
          "memory        %s weights + %s KV cache (%s, batch %d x %d tokens) = %s%n",
          Sizes.human(m.get("weights_bytes").asLong()),
          Sizes.human(m.get("kv_cache_bytes").asLong()),
          m.get("kv_dtype").asText(),
          m.get("batch").asInt(),
          m.get("seq_len").asInt(),
          Sizes.human(m.get("total_bytes").asLong()));
    }
    if (r.has("tokenizer")) {
      JsonNode t = r.get("tokenizer");
      StringBuilder ids = new StringBuilder();
      t.properties()
          .forEach(
              e -> {
                if (!e.getKey().equals("model") && !e.getKey().equals("tokens")) {
                  ids.append(ids.isEmpty() ? "; " : ", ")
                      .append(e.getKey())
                      .append(' ')
                      .append(e.getValue().asText());
                }
              });
      o.printf(
          "tokenizer     %s, %s tokens%s (llmc tokenizes with --tokenizer DIR)%n",
          t.path("model").asText(),
          t.has("tokens") ? String.format("%,d", t.get("tokens").asLong()) : "no",
          ids);
    }
    if (r.has("metadata")) {
      o.printf(
          "metadata      %d keys; general.* and %s.*:%n",
          r.get("metadata_keys").asInt(), r.get("architecture").asText());
      r.get("metadata")
          .properties()
          .forEach(
              e ->
                  o.printf(
                      "  %-42s %s%n",
                      e.getKey(), e.getValue().isTextual() ? e.getValue().asText() : e.getValue()));
    }
    if (r.has("tensors")) {
      o.println();
      o.printf("%-56s %-8s %-16s %12s%n", "tensor", "dtype", "shape", "bytes");
      for (var t : r.get("tensors")) {
        o.printf(
            "%-56s %-8s %-16s %,12d%n",
            t.get("name").asText(),
            t.get("dtype").asText(),
            t.get("shape").toString(),
            t.get("bytes").asLong());
      }
    }
    o.flush();
  }
}
