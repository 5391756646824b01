package llmc.cli;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.stream.Collectors;
import llmc.formats.Json;
import llmc.pipeline.InspectReport;
import llmc.pipeline.InspectSettings;
import llmc.pipeline.InspectStage;
import llmc.pipeline.Reports;
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
      description =
          "KV cache element type: f32, f16, bf16, fp8, int8 (default: the model's kv_cache_scheme,"
              + " else f16).")
  String kvDtype;

  @Option(
      names = "--calib",
      paramLabel = "FILE",
      description =
          "Run these calibration windows (.jsonl or .txt, protocol C1) through the model and report"
              + " every layer's activation outliers: the largest |x| of each input of the linear"
              + " layers, and how many input features exceed --outlier (LLM.int8), to see whether"
              + " W8A8 is safe.")
  Path calib;

  @Option(
      names = "--nsamples",
      paramLabel = "N",
      defaultValue = "128",
      description = "With --calib: calibration windows (default: ${DEFAULT-VALUE}).")
  int nsamples;

  @Option(
      names = "--outlier",
      paramLabel = "X",
      defaultValue = "6.0",
      description =
          "With --calib: an input feature is an outlier above this |x| (default: ${DEFAULT-VALUE}).")
  double outlier;

  @Mixin CommonOptions common;

  @Spec CommandSpec spec;

  @Override
  public Integer call() {
    InspectSettings settings =
        new InspectSettings(
            model,
            tensors,
            batch,
            seqLen,
            kvDtype == null ? null : InspectSettings.KvDtype.parse(kvDtype),
            calib == null
                ? null
                : llmc.pipeline.CalibrationSettings.of(calib).withNsamples(nsamples),
            outlier);
    InspectReport report = new InspectStage().run(settings, common.progress());
    PrintWriter stdout = spec.commandLine().getOut();
    if (common.json) {
      common.print(stdout, Reports.toJson(report));
    } else {
      printHuman(stdout, report);
    }
    return Llmc.OK;
  }

  private static void printHuman(PrintWriter o, InspectReport r) {
    InspectReport.Shape s = r.shape();
    InspectReport.Memory m = r.memory();
    o.printf("model         %s%n", r.model());
    if (r.gguf()) {
      o.printf(
          "architecture  %s (GGUF v%d, %d tensors)%n",
          r.architecture(), r.ggufVersion(), r.tensorCount());
      o.printf(
          "parameters    %,d (%.2f bits each as stored; parameters by dtype %s; bytes by dtype %s)%n",
          r.parameters(),
          r.bitsPerParameter(),
          json(r.parametersByDtype()),
          json(r.bytesByDtype()));
    } else {
      o.printf("architecture  %s (%s)%n", r.architecture(), r.modelType());
      o.printf(
          "parameters    %,d (%.2f bits each as stored; bytes by dtype %s)%n",
          r.parameters(), r.bitsPerParameter(), json(r.bytesByDtype()));
    }
    if (r.quantization() != null) {
      JsonNode q = r.quantization();
      o.printf(
          "quantization  %s%s%s%s%n",
          q.path("quant_method").asText(),
          q.has("bits")
              ? ", " + q.get("bits").asInt() + " bits, group " + q.path("group_size").asInt()
              : "",
          q.has("format") ? ", " + q.get("format").asText() : "",
          activations(q)
              + (q.path("kv_cache_scheme").isObject()
                  ? ", kv cache "
                      + ("float".equals(q.at("/kv_cache_scheme/type").asText()) ? "fp8" : "int8")
                      + (q.at("/kv_cache_scheme/dynamic").asBoolean() ? " (dynamic)" : " (static)")
                  : ""));
    }
    o.printf("on disk       %s in %d file(s)%n", Sizes.human(r.sizeOnDiskBytes()), r.files());
    if (r.activationOutliers() != null) {
      o.printf(
          "activations   per layer and input: the largest |x|, and the features above %s%n",
          r.outlierThreshold());
      for (var a : r.activationOutliers()) {
        o.printf(
            "  layer %-3d %-8s max |x| %10.3f  %5d of %d features above%n",
            a.layer(), a.input(), a.maxAbs(), a.featuresAbove(), a.features());
      }
    }
    if (s != null) {
      o.printf(
          "shape         hidden %d, layers %d, heads %d (kv %d, head_dim %d), intermediate %d, vocab %d, context %d%s%n",
          s.hiddenSize(),
          s.numHiddenLayers(),
          s.numAttentionHeads(),
          s.numKeyValueHeads(),
          s.headDim(),
          s.intermediateSize(),
          s.vocabSize(),
          s.contextLength(),
          s.tieWordEmbeddings() ? ", tied embeddings" : "");
    }
    InspectReport.Sparsity sp = r.sparsity();
    if (sp != null) {
      o.printf(
          "sparsity      %.2f%% of the linear layers' weights are zero (%,d of %,d)%s%n",
          100 * sp.linear(), sp.zeros(), sp.weights(), sp.twoFour() ? "; 2:4 in every block" : "");
    }
    if (m != null) {
      o.printf(
          "memory        %s weights + %s KV cache (%s, batch %d x %d tokens) = %s%n",
          Sizes.human(m.weightsBytes()),
          Sizes.human(m.kvCacheBytes()),
          m.kvDtype(),
          m.batch(),
          m.seqLen(),
          Sizes.human(m.totalBytes()));
    }
    if (r.tokenizer() != null) {
      Map<String, JsonNode> t = r.tokenizer();
      StringBuilder ids = new StringBuilder();
      t.forEach(
          (key, value) -> {
            if (!key.equals("model") && !key.equals("tokens")) {
              ids.append(ids.isEmpty() ? "; " : ", ")
                  .append(key)
                  .append(' ')
                  .append(value.asText());
            }
          });
      o.printf(
          "tokenizer     %s, %s tokens%s (llmc tokenizes with --tokenizer DIR)%n",
          t.containsKey("model") ? t.get("model").asText() : "",
          t.containsKey("tokens") ? String.format("%,d", t.get("tokens").asLong()) : "no",
          ids);
    }
    if (r.metadata() != null) {
      o.printf("metadata      %d keys; general.* and %s.*:%n", r.metadataKeys(), r.architecture());
      r.metadata()
          .forEach(
              (key, value) ->
                  o.printf("  %-42s %s%n", key, value.isTextual() ? value.asText() : value));
    }
    if (r.tensors() != null) {
      o.println();
      o.printf("%-56s %-8s %-16s %12s%n", "tensor", "dtype", "shape", "bytes");
      for (InspectReport.Tensor t : r.tensors()) {
        o.printf(
            "%-56s %-8s %-16s %,12d%n",
            t.name(),
            t.dtype(),
            t.shape().stream().map(String::valueOf).collect(Collectors.joining(",", "[", "]")),
            t.bytes());
      }
    }
    o.flush();
  }

  /** A map as compact JSON, e.g. {"F32":1040128}. */
  private static String json(Map<String, Long> map) {
    return Json.mapper().valueToTree(map).toString();
  }

  /**
   * ", activations int8 per token (dynamic)" (or float8) for a config group quantizing its inputs,
   * else "".
   */
  private static String activations(JsonNode quantization) {
    for (JsonNode group : quantization.path("config_groups")) {
      JsonNode a = group.path("input_activations");
      if (a.isObject()) {
        return ", activations "
            + ("float".equals(a.path("type").asText()) ? "float" : "int")
            + a.path("num_bits").asInt(8)
            + " per "
            + a.path("strategy").asText("tensor")
            + (a.path("dynamic").asBoolean() ? " (dynamic)" : " (static)");
      }
    }
    return "";
  }
}
