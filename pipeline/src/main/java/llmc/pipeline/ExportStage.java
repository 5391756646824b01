package llmc.pipeline;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import llmc.formats.ModelFolder;
import llmc.formats.gguf.GgmlType;
import llmc.formats.gguf.GgufTokenizer;
import llmc.model.LlamaFamily;
import llmc.model.Weights;
import llmc.model.gguf.GgufModelWriter;
import llmc.model.gguf.LlamaGguf;

/**
 * A model as one GGUF file: llama metadata and names, q/k rows in llama.cpp's order, the tokenizer,
 * and dense weights rounded by llama.cpp's own reference rules for the type (GPTQ on the same grids
 * is {@link QuantizeStage} with the GGUF format).
 */
public final class ExportStage implements Stage<ExportSettings, ExportReport> {

  @Override
  public ExportReport run(ExportSettings s, Progress progress) {
    long t0 = System.nanoTime();
    try (ModelFolder input = ModelFolder.open(s.model())) {
      LlamaFamily family = LlamaFamily.of(input);
      Weights weights = Weights.of(input);
      LlamaGguf.checkExportable(family, weights, s.model());
      GgufTokenizer tokenizer = GgufTokenizer.from(input);
      boolean quantizedInput = input.config().json().has("quantization_config");
      // A quantized folder's checkpoint holds qweight/scales: its tensors are the Hugging Face
      // ones, dequantized.
      Iterable<String> names =
          quantizedInput
              ? LlamaGguf.writeOrder(family).keySet().stream().filter(weights::contains).toList()
              : input.checkpoint().names();
      GgmlType type = s.type();
      List<GgufModelWriter.Tensor> plan = GgufModelWriter.plan(family, weights, names, type, null);
      try (GgufModelWriter file =
          new GgufModelWriter(
              s.out(),
              s.overwrite(),
              List.of(input.dir()),
              family,
              s.name() != null ? s.name() : modelName(input),
              type,
              plan,
              tokenizer::writeTo)) {
        int done = 0;
        for (GgufModelWriter.Tensor t : plan) {
          progress.update("export: tensor", ++done, plan.size());
          file.writeFloats(t.hfName(), weights.floats(t.hfName()));
        }
        progress.finished();
        file.finish();
      }
      return new ExportReport(
          "export",
          s.model().toString(),
          s.out().toString(),
          "gguf",
          type.ggmlName(),
          type.isQuantized() ? "llama.cpp reference (round to nearest)" : "none",
          tokenizer.model(),
          tokenizer.size(),
          plan.size(),
          typeCounts(plan),
          fallbacks(plan),
          Size.of(input.checkpoint().sizeOnDisk(), s.out().toFile().length()),
          List.copyOf(tokenizer.warnings()),
          (System.nanoTime() - t0) / 1e9);
    }
  }

  /** {@code general.name}: the model folder's name. */
  static String modelName(ModelFolder input) {
    Path file = input.dir().toAbsolutePath().normalize().getFileName();
    return file == null ? "model" : file.toString();
  }

  /** How many tensors of each type, e.g. {"f32": 11, "q4_0": 28, "f16": 5}. */
  static Map<String, Integer> typeCounts(List<GgufModelWriter.Tensor> plan) {
    Map<String, Integer> counts = new TreeMap<>();
    plan.forEach(t -> counts.merge(t.type().ggmlName(), 1, Integer::sum));
    return counts;
  }

  /** The tensors stored in another type than the file's, and why. */
  static List<ExportReport.Fallback> fallbacks(List<GgufModelWriter.Tensor> plan) {
    List<ExportReport.Fallback> list = new ArrayList<>();
    for (GgufModelWriter.Tensor t : plan) {
      if (t.fallback() != null) {
        list.add(new ExportReport.Fallback(t.ggufName(), t.type().ggmlName(), t.fallback()));
      }
    }
    return list;
  }
}
