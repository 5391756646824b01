package llmc.cli;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.Callable;
import llmc.formats.BadInputException;
import llmc.formats.Checkpoint;
import llmc.formats.Json;
import llmc.formats.ModelConfig;
import llmc.formats.ModelFolder;
import llmc.formats.TensorInfo;
import llmc.formats.quant.QuantizedCheckpoint;
import llmc.model.LlamaFamily;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

@Command(name = "inspect", mixinStandardHelpOptions = true,
    description = {"Architecture, parameter count, dtypes, size on disk and the memory needed to run a model.",
        "Memory = weights as stored + KV cache (2 x layers x kv_heads x head_dim x bytes x batch x seq-len)."},
    footer = {"", "Example:", "  llmc inspect samples/models/stories260K --tensors",
        "  llmc inspect my-model --batch 8 --seq-len 4096 --kv-dtype f16 --json"})
final class InspectCommand implements Callable<Integer> {
  @Parameters(index = "0", paramLabel = "MODEL", description = "A Hugging Face model folder.")
  Path model;

  @Option(names = "--tensors", description = "List every tensor (name, dtype, shape, bytes).")
  boolean tensors;

  @Option(names = "--batch", paramLabel = "B", defaultValue = "1", description = "Sequences held at once (default: ${DEFAULT-VALUE}).")
  int batch;

  @Option(names = "--seq-len", paramLabel = "L", description = "Tokens per sequence (default: the model's context length).")
  Integer seqLen;

  @Option(names = "--kv-dtype", paramLabel = "DTYPE", defaultValue = "f16",
      description = "KV cache element type: f32, f16, bf16, fp8 (default: ${DEFAULT-VALUE}).")
  String kvDtype;

  @Mixin
  CommonOptions common;

  @Spec
  CommandSpec spec;

  @Override
  public Integer call() {
    int kvBytes = switch (kvDtype.toLowerCase()) {
      case "f32", "float32" -> 4;
      case "f16", "float16", "bf16", "bfloat16" -> 2;
      case "fp8", "f8", "int8", "q8" -> 1;
      default -> throw new BadInputException("--kv-dtype '" + kvDtype + "': use f32, f16, bf16 or fp8");
    };
    if (batch < 1) {
      throw new BadInputException("--batch must be at least 1");
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
      int tokens = seqLen != null ? seqLen : family.contextLength();
      long kvCache = 2L * family.layers() * family.kvHeads() * family.headDim() * kvBytes * batch * tokens;

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
      ObjectNode memory = out.putObject("memory");
      memory.put("batch", batch);
      memory.put("seq_len", tokens);
      memory.put("kv_dtype", kvDtype.toLowerCase());
      memory.put("weights_bytes", weightBytes);
      memory.put("kv_cache_bytes", kvCache);
      memory.put("total_bytes", weightBytes + kvCache);
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

  private static void printHuman(PrintWriter o, ObjectNode r) {
    ObjectNode s = (ObjectNode) r.get("shape");
    ObjectNode m = (ObjectNode) r.get("memory");
    o.printf("model         %s%n", r.get("model").asText());
    o.printf("architecture  %s (%s)%n", r.get("architecture").asText(), r.path("model_type").asText());
    o.printf("parameters    %,d (%.2f bits each as stored; bytes by dtype %s)%n", r.get("parameters").asLong(),
        r.get("bits_per_parameter").asDouble(), r.get("bytes_by_dtype"));
    if (r.has("quantization")) {
      var q = r.get("quantization");
      o.printf("quantization  %s%s%s%n", q.path("quant_method").asText(),
          q.has("bits") ? ", " + q.get("bits").asInt() + " bits, group " + q.path("group_size").asInt() : "",
          q.has("format") ? ", " + q.get("format").asText() : "");
    }
    o.printf("on disk       %s in %d file(s)%n", Sizes.human(r.get("size_on_disk_bytes").asLong()), r.get("files").asInt());
    o.printf("shape         hidden %d, layers %d, heads %d (kv %d, head_dim %d), intermediate %d, vocab %d, context %d%s%n",
        s.get("hidden_size").asInt(), s.get("num_hidden_layers").asInt(), s.get("num_attention_heads").asInt(),
        s.get("num_key_value_heads").asInt(), s.get("head_dim").asInt(), s.get("intermediate_size").asInt(),
        s.get("vocab_size").asInt(), s.get("context_length").asInt(),
        s.get("tie_word_embeddings").asBoolean() ? ", tied embeddings" : "");
    o.printf("memory        %s weights + %s KV cache (%s, batch %d x %d tokens) = %s%n",
        Sizes.human(m.get("weights_bytes").asLong()), Sizes.human(m.get("kv_cache_bytes").asLong()),
        m.get("kv_dtype").asText(), m.get("batch").asInt(), m.get("seq_len").asInt(),
        Sizes.human(m.get("total_bytes").asLong()));
    if (r.has("tensors")) {
      o.println();
      o.printf("%-56s %-8s %-16s %12s%n", "tensor", "dtype", "shape", "bytes");
      for (var t : r.get("tensors")) {
        o.printf("%-56s %-8s %-16s %,12d%n", t.get("name").asText(), t.get("dtype").asText(),
            t.get("shape").toString(), t.get("bytes").asLong());
      }
    }
    o.flush();
  }
}
