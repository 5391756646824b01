package llmc.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.Callable;
import llmc.formats.BadInputException;
import llmc.formats.Json;
import llmc.formats.ModelFolder;
import llmc.formats.gguf.GgmlType;
import llmc.formats.gguf.GgufTokenizer;
import llmc.model.LlamaFamily;
import llmc.model.Weights;
import llmc.model.gguf.GgufModelWriter;
import llmc.model.gguf.LlamaGguf;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

/**
 * {@code llmc export MODEL --format gguf --type TYPE --out FILE.gguf}: a model as one GGUF file for
 * llama.cpp, Ollama and LM Studio. Dense weights are rounded by llama.cpp's own reference rules for
 * the type (so llmc's Q4_0 of a dense model is the file llama.cpp's {@code llama-quantize} would
 * make, with the same F16 fallback); GPTQ on the same grids is {@code llmc quantize --format gguf}.
 */
@Command(
    name = "export",
    mixinStandardHelpOptions = true,
    sortOptions = false,
    description = {
      "Write a model as one GGUF file (llama.cpp, Ollama, LM Studio): llama metadata and tensor names,",
      "q/k rows in llama.cpp's order, the tokenizer, and the weights rounded by llama.cpp's rules for --type.",
      "Tensors a block type cannot hold (in_features not a multiple of 32) are stored as F16 and reported."
    },
    footer = {
      "",
      "Examples:",
      "  llmc export samples/models/stories260K --format gguf --type q8_0 --out /tmp/stories260K-q8_0.gguf",
      "  llmc export MODEL --format gguf --type f16 --out model-f16.gguf --json"
    })
final class ExportCommand implements Callable<Integer> {
  @Parameters(
      index = "0",
      paramLabel = "MODEL",
      description = "A Hugging Face model folder (a quantized folder is read dequantized).")
  Path model;

  @Option(
      names = "--format",
      defaultValue = "gguf",
      paramLabel = "gguf",
      description = "Output format (default: ${DEFAULT-VALUE}).")
  String format;

  @Option(
      names = {"--type", "--outtype"},
      required = true,
      paramLabel = "TYPE",
      description = "Tensor type of the linear layers: f32|f16|q8_0|q4_0|q4_1|q5_0|q5_1.")
  String type;

  @Option(
      names = "--out",
      required = true,
      paramLabel = "FILE",
      description = "The .gguf file, written atomically.")
  Path out;

  @Option(names = "--overwrite", description = "Replace --out if it exists.")
  boolean overwrite;

  @Option(
      names = "--name",
      paramLabel = "NAME",
      description = "general.name (default: the model folder's name).")
  String name;

  @Mixin CommonOptions common;

  @Spec CommandSpec spec;

  @Override
  public Integer call() {
    common.configureEngine();
    if (!format.equalsIgnoreCase("gguf")) {
      throw new BadInputException(
          "--format '"
              + format
              + "': llmc export writes gguf; for safetensors layouts use"
              + " llmc quantize --format gptq|compressed-tensors|dense");
    }
    GgmlType ggmlType = GgmlType.byName(type.toLowerCase());
    long t0 = System.nanoTime();
    ObjectNode report = Json.mapper().createObjectNode();
    try (ModelFolder input = ModelFolder.open(model)) {
      LlamaFamily family = LlamaFamily.from(input.config());
      Weights weights = Weights.of(input);
      LlamaGguf.checkExportable(family, weights, model);
      GgufTokenizer tokenizer = GgufTokenizer.from(input);
      boolean quantizedInput = input.config().json().has("quantization_config");
      // A quantized folder's checkpoint holds qweight/scales: its tensors are the Hugging Face
      // ones, dequantized.
      Iterable<String> names =
          quantizedInput
              ? LlamaGguf.writeOrder(family).keySet().stream().filter(weights::contains).toList()
              : input.checkpoint().names();
      List<GgufModelWriter.Tensor> plan =
          GgufModelWriter.plan(family, weights, names, ggmlType, null);
      report.put("command", "export");
      report.put("model", model.toString());
      report.put("out", out.toString());
      report.put("format", "gguf");
      report.put("type", ggmlType.ggmlName());
      report.put(
          "rounding", ggmlType.isQuantized() ? "llama.cpp reference (round to nearest)" : "none");
      report.put("tokenizer", tokenizer.model());
      report.put("vocab", tokenizer.size());
      try (GgufModelWriter file =
          new GgufModelWriter(
              out,
              overwrite,
              List.of(model),
              family,
              name != null ? name : modelName(input),
              ggmlType,
              plan,
              tokenizer::writeTo)) {
        int done = 0;
        for (GgufModelWriter.Tensor t : plan) {
          CommonOptions.progress("export: tensor " + ++done + "/" + plan.size());
          file.writeFloats(t.hfName(), weights.floats(t.hfName()));
        }
        CommonOptions.endProgress();
        file.finish();
      }
      report.put("tensors", plan.size());
      report.set("tensor_types", typeCounts(plan));
      report.set("fallbacks", fallbacks(plan));
      ObjectNode size = report.putObject("size");
      long inBytes = input.checkpoint().sizeOnDisk();
      long outBytes = out.toFile().length();
      size.put("input_bytes", inBytes);
      size.put("output_bytes", outBytes);
      size.put("compression", (double) inBytes / outBytes);
      ArrayNode warnings = report.putArray("warnings");
      tokenizer.warnings().forEach(warnings::add);
      report.put("seconds", (System.nanoTime() - t0) / 1e9);
    }
    PrintWriter stdout = spec.commandLine().getOut();
    if (common.json) {
      common.print(stdout, report);
    } else {
      printSummary(stdout, report);
    }
    return Llmc.OK;
  }

  /** {@code general.name}: the model folder's name. */
  static String modelName(ModelFolder input) {
    Path file = input.dir().toAbsolutePath().normalize().getFileName();
    return file == null ? "model" : file.toString();
  }

  /** How many tensors of each type, e.g. {"f32": 11, "q4_0": 28, "f16": 5}. */
  static ObjectNode typeCounts(List<GgufModelWriter.Tensor> plan) {
    Map<String, Integer> counts = new TreeMap<>();
    plan.forEach(t -> counts.merge(t.type().ggmlName(), 1, Integer::sum));
    ObjectNode node = Json.mapper().createObjectNode();
    counts.forEach(node::put);
    return node;
  }

  /** The tensors stored in another type than the file's, and why. */
  static ArrayNode fallbacks(List<GgufModelWriter.Tensor> plan) {
    ArrayNode list = Json.mapper().createArrayNode();
    for (GgufModelWriter.Tensor t : plan) {
      if (t.fallback() != null) {
        list.addObject()
            .put("name", t.ggufName())
            .put("type", t.type().ggmlName())
            .put("reason", t.fallback());
      }
    }
    return list;
  }

  private static void printSummary(PrintWriter out, ObjectNode r) {
    out.printf(
        "exported %s -> %s (gguf, %s, %s tokenizer of %d tokens)%n",
        r.get("model").asText(),
        r.get("out").asText(),
        r.get("type").asText(),
        r.get("tokenizer").asText(),
        r.get("vocab").asInt());
    StringBuilder types = new StringBuilder();
    r.get("tensor_types")
        .fields()
        .forEachRemaining(
            e ->
                types
                    .append(types.isEmpty() ? "" : ", ")
                    .append(e.getValue().asInt())
                    .append(' ')
                    .append(e.getKey()));
    out.printf("tensors   %d (%s)%n", r.get("tensors").asInt(), types);
    for (JsonNode f : r.get("fallbacks")) {
      out.printf(
          "fallback  %s stored as %s: %s%n",
          f.get("name").asText(), f.get("type").asText(), f.get("reason").asText());
    }
    out.printf(
        "size      %s -> %s (%.2fx smaller) in %.1f s%n",
        Sizes.human(r.at("/size/input_bytes").asLong()),
        Sizes.human(r.at("/size/output_bytes").asLong()),
        r.at("/size/compression").asDouble(),
        r.get("seconds").asDouble());
    for (JsonNode w : r.get("warnings")) {
      out.println("warning   " + w.asText());
    }
    out.flush();
  }
}
