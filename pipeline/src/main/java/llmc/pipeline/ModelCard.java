package llmc.pipeline;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.math.BigDecimal;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import llmc.distill.Trainer;

/**
 * The {@code README.md} model card written beside {@code llmc-report.json} in every model folder
 * llmc writes: Hugging Face front matter, what was done with which settings, what it cost (from the
 * report only), and how to load the folder. A pure function of the report: no wall times, no dates,
 * no paths but the input folder's name, numbers in {@link Locale#ROOT} at fixed precision, so
 * identical runs write identical bytes. GGUF outputs (one file) get no card.
 */
public final class ModelCard {
  /** The card's name in a model folder. */
  public static final String FILE = "README.md";

  /** Stands for the folder in the loading examples (the card does not know where it lies). */
  static final String PATH = "path/to/this/folder";

  private static final String NOT_MEASURED =
      "Quality not measured: run with `--eval FILE` to get perplexity before and after.";

  private ModelCard() {}

  /** The card of a quantized folder (not GGUF). */
  public static String of(QuantizeReport r) {
    QuantizeReport.Scheme q = r.scheme();
    String base = name(r.model());
    List<String> tags = new ArrayList<>(List.of("llmc", r.method(), "quantized"));
    tags.add(q.bits() + "-bit");
    tags.add(r.format());
    StringBuilder md = frontMatter(base, tags, "quantized");
    String method = r.method().equals("gptq") ? "GPTQ" : "round to nearest (RTN)";
    md.append("# ").append(base).append(", ").append(r.method().toUpperCase(Locale.ROOT));
    md.append(' ').append(q.bits()).append("-bit (").append(r.format()).append(")\n\n");
    md.append("Quantized from `")
        .append(base)
        .append("` by `llmc quantize`: ")
        .append(method)
        .append(", ")
        .append(q.bits())
        .append("-bit weights ")
        .append(q.groupSize() == -1 ? "with one scale per row" : "in groups of " + q.groupSize())
        .append(", ")
        .append(q.sym() ? "symmetric" : "asymmetric")
        .append(", stored as ")
        .append(formatName(r.format()))
        .append(".\n\n## Settings\n\n");
    Table t = new Table("setting", "value");
    t.row("method", r.method());
    t.row("bits", Integer.toString(q.bits()));
    t.row("group size", q.groupSize() == -1 ? "-1 (per row)" : Integer.toString(q.groupSize()));
    t.row("symmetric", yesNo(q.sym()));
    t.row("scale dtype", q.scaleDtype());
    t.row("act order", q.actOrder() == null ? null : yesNo(q.actOrder()));
    t.row("static groups", q.staticGroups() == null ? null : yesNo(q.staticGroups()));
    t.row("dampening", q.dampPercent() == null ? null : plain(q.dampPercent()));
    t.row("block size", q.blockSize() == null ? null : q.blockSize().toString());
    t.row("true sequential", q.trueSequential() == null ? null : yesNo(q.trueSequential()));
    t.row("clip", q.clip());
    t.row("left unquantized", list(q.ignore()));
    t.row("other bits", list(q.bitsFor()));
    t.row("format", r.format());
    t.row("checkpoint format", r.checkpointFormat());
    t.row("input dtype", r.modelDtype());
    t.row(
        "calibration",
        r.calibration() != null
            ? calibration(r.calibration())
            : r.method().equals("rtn") ? "none (RTN needs none)" : null);
    md.append(t).append("\n## What it cost\n\n");
    Table c = new Table("measure", "value");
    quality(c, r.eval());
    size(c, r.size());
    Integer dtypeBits = dtypeBits(r.modelDtype());
    if (dtypeBits != null && r.size() != null && r.size().inputBytes() > 0) {
      c.row(
          "bits per weight (whole checkpoint, from its size)",
          fixed(2, (double) dtypeBits * r.size().outputBytes() / r.size().inputBytes()));
    }
    if (r.sparsity() != null) {
      c.row(
          "zeros of the pruned input kept",
          String.format(
              Locale.ROOT,
              "%,d of %,d%s",
              r.sparsity().zerosKept(),
              r.sparsity().inputZeros(),
              r.sparsity().survived() ? "" : " (sparsity lost)"));
    }
    cost(md, c, r.eval() != null);
    loading(md, r.format(), true);
    return md.toString();
  }

  /**
   * The card of a pruned folder.
   *
   * @param format how the weights are stored (structured pruning always writes dense)
   */
  public static String of(PruneReport r, PruneSettings.Format format) {
    String base = name(r.model());
    boolean bitmask = r.structured() == null && format == PruneSettings.Format.SPARSE_24_BITMASK;
    String stored = bitmask ? "sparse-24-bitmask" : "dense";
    List<String> tags = new ArrayList<>(List.of("llmc", "pruned", r.method()));
    tags.add(r.structured() != null ? "structured-" + r.structured().structure() : "sparse");
    if (bitmask) {
      tags.add(stored);
    }
    StringBuilder md = frontMatter(base, tags, null);
    md.append("# ").append(base).append(", pruned (").append(r.method()).append(", ");
    md.append(r.pattern()).append(")\n\n");
    md.append("Pruned from `")
        .append(base)
        .append("` by `llmc prune`: method ")
        .append(r.method())
        .append(", ")
        .append(
            r.structured() != null
                ? "structured pruning of " + r.pattern()
                : "sparsity pattern " + r.pattern())
        .append(", stored as ")
        .append(formatName(stored))
        .append(".\n\n## Settings\n\n");
    Table t = new Table("setting", "value");
    t.row("method", r.method());
    t.row(r.structured() != null ? "structure" : "pattern", r.pattern());
    t.row("p (Lp norm)", r.p() == null ? null : plain(r.p()));
    t.row("dampening", r.dampPercent() == null ? null : plain(r.dampPercent()));
    t.row("block size", r.blockSize() == null ? null : r.blockSize().toString());
    t.row("left dense", list(r.ignore()));
    t.row("calibration", r.calibration() == null ? null : calibration(r.calibration()));
    t.row("gradient batch", r.gradients() == null ? null : Integer.toString(r.gradients().batch()));
    t.row("format", stored);
    PruneReport.Structure s = r.structured();
    if (s != null) {
      PruneReport.Shape shape = s.config();
      t.row("layers after", Integer.toString(shape.numHiddenLayers()));
      t.row("intermediate size after", Integer.toString(shape.intermediateSize()));
      t.row(
          "attention heads after",
          shape.numAttentionHeads() + " (" + shape.numKeyValueHeads() + " key/value)");
      t.row("kept layers", s.keptLayers().toString());
    }
    md.append(t).append("\n## What it cost\n\n");
    Table c = new Table("measure", "value");
    quality(c, r.eval());
    size(c, r.size());
    if (s != null) {
      c.row("parameters before", String.format(Locale.ROOT, "%,d", s.parametersBefore()));
      c.row("parameters after", String.format(Locale.ROOT, "%,d", s.parametersAfter()));
    }
    if (r.sparsity() != null) {
      c.row(
          "sparsity of the linear layers",
          String.format(
              Locale.ROOT,
              "%s%% (%,d zeros of %,d weights)",
              fixed(2, 100 * r.sparsity().linear()),
              r.sparsity().zeros(),
              r.sparsity().weights()));
    }
    cost(md, c, r.eval() != null);
    loading(md, stored, false);
    return md.toString();
  }

  /** The card of a distilled student. */
  public static String of(DistillReport r) {
    String base = name(r.teacher());
    String student = student(r.student());
    List<String> tags = new ArrayList<>(List.of("llmc", "distilled"));
    if (r.lora() != null) {
      tags.add("lora");
    }
    StringBuilder md = frontMatter(base, tags, null);
    DistillReport.Training tr = r.training();
    DistillReport.Loss loss = r.loss();
    md.append("# ").append(base).append(", distilled student\n\n");
    md.append("A student (")
        .append(student)
        .append(") distilled from the teacher `")
        .append(base)
        .append("` by `llmc distill`: ")
        .append(tr.steps())
        .append(" steps of ")
        .append(tr.batchSize())
        .append(" x ")
        .append(tr.seqLen())
        .append(" tokens, ")
        .append(loss.divergence())
        .append(" at temperature ")
        .append(plain(loss.temperature()))
        .append(" with alpha ")
        .append(plain(loss.alpha()))
        .append(r.lora() != null ? ", LoRA rank " + r.lora().rank() : "")
        .append(".\n\n## Settings\n\n");
    Table t = new Table("setting", "value");
    t.row("teacher", "`" + base + "`");
    t.row("student", student);
    t.row("steps", Integer.toString(tr.steps()));
    t.row("batch size", Integer.toString(tr.batchSize()));
    t.row("sequence length", Integer.toString(tr.seqLen()));
    t.row("gradient accumulation", Integer.toString(tr.gradAccum()));
    t.row("optimizer", tr.optimizer());
    t.row("learning rate", plain(tr.lr()) + " (" + tr.schedule() + ", " + tr.warmup() + " warmup)");
    t.row("weight decay", plain(tr.weightDecay()));
    t.row("gradient clip", plain(tr.gradClip()));
    t.row("seed", Long.toString(tr.seed()));
    t.row("divergence", loss.divergence());
    t.row("alpha (soft vs hard labels)", plain(loss.alpha()));
    t.row("temperature", plain(loss.temperature()));
    t.row("beta (hidden-state MSE)", plain(loss.beta()));
    t.row("jsd beta", loss.jsdBeta() == null ? null : plain(loss.jsdBeta()));
    t.row("hidden pairs", list(loss.hiddenPairs()));
    if (r.lora() != null) {
      t.row(
          "LoRA",
          "rank "
              + r.lora().rank()
              + ", alpha "
              + plain(r.lora().alpha())
              + ", on "
              + String.join(", ", r.lora().targets()));
    }
    t.row(
        "training data",
        r.data() == null
            ? null
            : "`" + name(r.data().file()) + "` (field " + r.data().field() + ")");
    t.row("trainable parameters", String.format(Locale.ROOT, "%,d", r.trainableParameters()));
    md.append(t).append("\n## What it cost\n\n");
    Table c = new Table("measure", "value");
    c.row("teacher perplexity", perplexity(r.teacherEval()));
    c.row("student perplexity before training", perplexity(r.studentBefore()));
    c.row("student perplexity after training", perplexity(r.studentAfter()));
    if (r.data() != null && r.data().eval() != null && r.teacherEval() != null) {
      c.row(
          "evaluation",
          "P1 on `"
              + name(r.data().eval())
              + "`"
              + (r.data().evalWindows() == null
                  ? ""
                  : ", " + r.data().evalWindows() + " windows of " + r.data().evalSeqLen()));
    }
    cost(md, c, r.teacherEval() != null || r.studentAfter() != null);
    loading(md, "dense", false);
    return md.toString();
  }

  /**
   * The card of a recipe run's output folder: what the recipe did to its model, stage by stage
   * (each stage's command line, and the card of each stage that wrote one, a level down), what the
   * whole run cost (the last evaluation, the size before the first stage and after the last), and
   * how to load the result. Built from the stages' reports and cards, so as reproducible as they.
   *
   * @param report the run's report: its {@code stages} records hold each stage's report
   */
  static String of(RecipeRun.Settings settings, JsonNode report) {
    String base = name(settings.model().toString());
    RecipeRun.Stage last = settings.last();
    boolean gguf = last != null && !Files.isDirectory(last.output());
    List<String> tags = new ArrayList<>(List.of("llmc", "recipe"));
    List<String> sections = new ArrayList<>();
    String loading = null;
    JsonNode eval = null;
    Long before = null;
    Long after = null;
    for (int i = 0; i < settings.stages().size(); i++) {
      RecipeRun.Stage stage = settings.stages().get(i);
      JsonNode stageReport = report.path("stages").path(i).path("report");
      StringBuilder section = new StringBuilder();
      section.append("## Stage ").append(stage.name()).append("\n\n```\nllmc");
      for (String arg : stage.commandLine()) {
        section.append(' ').append(shownArgument(arg, settings));
      }
      section.append("\n```\n\n");
      JsonNode size = stageReport.path("size");
      if (size.has("input_bytes") && before == null) {
        before =
            stageReport.path("model").asText().equals(settings.model().toString())
                ? size.get("input_bytes").asLong()
                : -1L;
      }
      if (size.has("output_bytes") && stage == last) {
        after = size.get("output_bytes").asLong();
      }
      if (stage.command().equals("eval")) {
        eval = stageReport;
        Table q = new Table("measure", "value");
        evaluation(q, stageReport);
        section.append(q);
      }
      Path card = stage.output() == null ? null : stage.output().resolve(FILE);
      if (card != null && Files.isRegularFile(card)) {
        String[] parts = stageCard(card);
        for (String line : parts[0].split("\n")) {
          if (line.startsWith("- ")) {
            String tag = line.substring(2);
            tags.add(tag.startsWith("\"") ? tag.substring(1, tag.length() - 1) : tag);
          }
        }
        section.append(parts[1]);
        if (stage == last) {
          loading = parts[2];
        }
      }
      sections.add(section.toString());
    }
    if (gguf) {
      tags.add("gguf");
    }
    StringBuilder md = frontMatter(base, tags, null);
    if (gguf) {
      md.replace(0, md.indexOf("\n") + 1, "---\nlibrary_name: gguf\n");
    }
    String recipe = name(settings.recipe().toString());
    md.append("# ").append(base).append(", by the recipe `").append(recipe).append("`\n\n");
    md.append("Made from `").append(base).append("` by `llmc run ").append(recipe).append("`");
    md.append(settings.overrides().isEmpty() ? "" : " with `--set`");
    for (String set : settings.overrides()) {
      md.append(" `").append(set).append('`');
    }
    md.append(", in ").append(settings.stages().size()).append(" stages: ");
    md.append(
        String.join(", then ", settings.stages().stream().map(RecipeRun.Stage::command).toList()));
    md.append(".\n\n## What it cost\n\n");
    Table c = new Table("measure", "value");
    if (eval != null) {
      evaluation(c, eval);
    }
    if (before != null && before > 0) {
      c.row("size before", String.format(Locale.ROOT, "%,d bytes", before));
    }
    if (after != null) {
      String text = String.format(Locale.ROOT, "%,d bytes", after);
      if (before != null && before > 0 && after > 0) {
        text += " (" + fixed(2, (double) before / after) + "x smaller)";
      }
      c.row("size after", text);
    }
    md.append(c);
    if (eval == null) {
      md.append(c.toString().isEmpty() ? "" : "\n")
          .append("Quality not measured: add an `eval` stage to the recipe.\n");
    }
    for (String section : sections) {
      md.append('\n').append(section);
    }
    if (gguf) {
      md.append("\n## How to load it\n\n");
      md.append("One GGUF file, `model.gguf`, with its tokenizer inside. llama.cpp:\n\n");
      md.append("```\nllama-cli -m ")
          .append(PATH)
          .append("/model.gguf -p \"Once upon a time\"\n```\n");
      md.append("\nOllama: a `Modelfile` with `FROM ./model.gguf`, then `ollama create`.\n");
    } else if (loading != null) {
      md.append('\n').append(loading);
    }
    return md.toString();
  }

  /** An argument of a stage's command line, paths named by their last name only. */
  private static String shownArgument(String arg, RecipeRun.Settings settings) {
    for (RecipeRun.Stage s : settings.stages()) {
      for (Path p : s.inputs()) {
        if (p.toString().equals(arg)) {
          return name(arg);
        }
      }
      if (s.output() != null && s.output().toString().equals(arg)) {
        return name(arg);
      }
    }
    return arg.matches("[A-Za-z0-9._:=%,+/-]+") ? arg : "'" + arg.replace("'", "'\\''") + "'";
  }

  /**
   * A stage's card in three parts: its front matter, its body without the title (headings one level
   * down) and its "How to load it" section.
   */
  private static String[] stageCard(Path card) {
    String text;
    try {
      text = Files.readString(card, StandardCharsets.UTF_8);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot read " + card, e);
    }
    String front = "";
    if (text.startsWith("---\n")) {
      int end = text.indexOf("\n---\n", 3);
      front = text.substring(4, end + 1);
      text = text.substring(end + 5);
    }
    int loading = text.indexOf("## How to load it\n");
    String tail = loading < 0 ? "" : text.substring(loading);
    String body = loading < 0 ? text : text.substring(0, loading);
    StringBuilder out = new StringBuilder();
    for (String line : body.strip().split("\n", -1)) {
      if (line.startsWith("# ") || line.equals(NOT_MEASURED)) {
        continue; // the stage's title (the section has its own); the run's eval stage measures
      }
      out.append(line.startsWith("#") ? "#" + line : line).append('\n');
    }
    return new String[] {front, out.toString().strip() + "\n", tail};
  }

  /** An evaluation's rows, from its JSON report (the run holds the stages' reports as JSON). */
  private static void evaluation(Table c, JsonNode e) {
    if (e.has("base_perplexity")) {
      double b = e.get("base_perplexity").asDouble();
      double a = e.path("perplexity").asDouble();
      c.row("perplexity before (`" + name(e.path("base").asText()) + "`)", fixed(4, b));
      c.row("perplexity after", fixed(4, a) + " (" + signedPercent((a - b) / b) + ")");
    } else if (e.has("perplexity")) {
      c.row("perplexity", fixed(4, e.get("perplexity").asDouble()));
    }
    if (e.has("mean_kl")) {
      c.row("mean KL (before ‖ after)", fixed(6, e.get("mean_kl").asDouble()) + " nats");
    }
    if (e.has("top1_agreement")) {
      c.row("top-1 agreement", fixed(2, 100 * e.get("top1_agreement").asDouble()) + "%");
    }
    for (JsonNode g : e.path("gates")) {
      c.row(
          "gate " + g.path("name").asText(),
          String.format(
              Locale.ROOT,
              "%s (%s %s, measured %s)",
              g.path("passed").asBoolean() ? "passed" : "FAILED",
              g.path("bound").asText(),
              plain(g.path("threshold").asDouble()),
              fixed(6, g.path("measured").asDouble())));
    }
    if (e.has("windows")) {
      c.row(
          "evaluation",
          String.format(
              Locale.ROOT,
              "%s on `%s`, %d windows of %d tokens (%,d scored)",
              e.path("protocol").asText(),
              name(e.path("data").asText()),
              e.path("windows").asInt(),
              e.path("seq_len").asInt(),
              e.path("scored_tokens").asLong()));
    }
  }

  /** Writes a card into a folder being written. */
  static void store(String card, Path dir) {
    try {
      Files.writeString(dir.resolve(FILE), card, StandardCharsets.UTF_8);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot write " + dir.resolve(FILE), e);
    }
  }

  private static StringBuilder frontMatter(String base, List<String> tags, String relation) {
    StringBuilder md = new StringBuilder("---\n");
    md.append("library_name: transformers\n");
    md.append("pipeline_tag: text-generation\n");
    md.append("base_model: ").append(yaml(base)).append('\n');
    if (relation != null) {
      md.append("base_model_relation: ").append(relation).append('\n');
    }
    md.append("tags:\n");
    tags.stream().distinct().forEach(tag -> md.append("- ").append(yaml(tag)).append('\n'));
    return md.append("---\n\n");
  }

  private static void cost(StringBuilder md, Table c, boolean measured) {
    md.append(c);
    if (!measured) {
      md.append(c.toString().isEmpty() ? "" : "\n").append(NOT_MEASURED).append('\n');
    }
  }

  private static void quality(Table c, Comparison e) {
    if (e == null) {
      return;
    }
    c.row("perplexity before", fixed(4, e.perplexityBefore()));
    c.row(
        "perplexity after",
        fixed(4, e.perplexityAfter())
            + " ("
            + signedPercent((e.perplexityAfter() - e.perplexityBefore()) / e.perplexityBefore())
            + ")");
    c.row("mean KL (before ‖ after)", fixed(6, e.meanKl()) + " nats");
    c.row("top-1 agreement", fixed(2, 100 * e.top1Agreement()) + "%");
    c.row(
        "evaluation",
        String.format(
            Locale.ROOT,
            "%s on `%s`, %d windows of %d tokens (%,d scored)",
            e.protocol(),
            name(e.data()),
            e.windows(),
            e.seqLen(),
            e.scoredTokens()));
  }

  private static void size(Table c, Size s) {
    if (s == null) {
      return;
    }
    c.row("size before", String.format(Locale.ROOT, "%,d bytes", s.inputBytes()));
    String after = String.format(Locale.ROOT, "%,d bytes", s.outputBytes());
    if (s.outputBytes() > 0) {
      after += " (" + fixed(2, (double) s.inputBytes() / s.outputBytes()) + "x smaller)";
    }
    c.row("size after", after);
  }

  private static void loading(StringBuilder md, String format, boolean quantized) {
    md.append("\n## How to load it\n\n");
    md.append("Transformers");
    switch (format) {
      case "gptq" ->
          md.append(
              " (GPTQ needs `optimum` and `gptqmodel` installed; transformers reads"
                  + " `quantization_config` from `config.json`)");
      case "compressed-tensors", "sparse-24-bitmask" ->
          md.append(" (needs the `compressed-tensors` package installed)");
      default -> {}
    }
    md.append(":\n\n```python\n");
    md.append("from transformers import AutoModelForCausalLM, AutoTokenizer\n\n");
    md.append("model = AutoModelForCausalLM.from_pretrained(\"").append(PATH).append("\")\n");
    md.append("tokenizer = AutoTokenizer.from_pretrained(\"").append(PATH).append("\")\n");
    md.append("```\n\n");
    if (!format.equals("dense")) {
      md.append("vLLM:\n\n```\nvllm serve ").append(PATH).append("\n```\n\n");
    }
    md.append("llama.cpp, Ollama, LM Studio: make a GGUF file of it with llmc (")
        .append(quantized ? "the weights dequantized, then stored" : "stored")
        .append(" as f16; `--type q8_0` or `q4_0` for llama.cpp's own quantization):\n\n");
    md.append("```\nllmc export ")
        .append(PATH)
        .append(" --format gguf --type f16 --out model.gguf\n```\n");
    if (quantized) {
      md.append(
          "\nFor llama.cpp's 4-bit blocks with GPTQ's accuracy, quantize the base model straight"
              + " to GGUF instead: `llmc quantize BASE --format gguf --gguf-type q4_0 --calib"
              + " FILE --out model.gguf`.\n");
    }
  }

  private static String calibration(Calibration.Report c) {
    if (c.statistics() != null) {
      return "saved statistics (`" + name(c.statistics()) + "`)";
    }
    StringBuilder s = new StringBuilder();
    if (c.windows() != null && c.seqLen() != null) {
      s.append(c.windows()).append(" windows of ").append(c.seqLen()).append(" tokens");
    }
    if (c.file() != null) {
      s.append(s.isEmpty() ? "" : " from ").append('`').append(name(c.file())).append('`');
    }
    if (c.sampling() != null) {
      s.append(" (").append(c.protocol() == null ? "" : c.protocol() + ", ");
      s.append(c.sampling()).append(c.seed() == null ? "" : ", seed " + c.seed()).append(')');
    }
    return s.toString();
  }

  private static String perplexity(Trainer.EvalPoint p) {
    return p == null ? null : fixed(4, p.perplexity());
  }

  /** The student's description without the machine's paths (a chart's title uses it too). */
  static String student(String description) {
    String prefix = "the model in ";
    return description.startsWith(prefix)
        ? "the model `" + name(description.substring(prefix.length())) + "`"
        : description;
  }

  private static String formatName(String format) {
    return switch (format) {
      case "gptq" -> "a GPTQ checkpoint (AutoGPTQ / GPTQModel layout)";
      case "compressed-tensors" -> "compressed-tensors (pack-quantized)";
      case "sparse-24-bitmask" -> "compressed-tensors (sparse-24-bitmask)";
      case "dense" -> "a dense checkpoint";
      default -> format;
    };
  }

  private static Integer dtypeBits(String dtype) {
    return switch (dtype == null ? "" : dtype) {
      case "F32" -> 32;
      case "F16", "BF16" -> 16;
      default -> null;
    };
  }

  /** A path's last name: the card names no folder of the machine it was made on. */
  static String name(String path) {
    Path file = Path.of(path).toAbsolutePath().normalize().getFileName();
    return file == null ? path : file.toString();
  }

  private static String list(List<String> items) {
    return items == null || items.isEmpty() ? null : "`" + String.join("`, `", items) + "`";
  }

  private static String yesNo(boolean b) {
    return b ? "yes" : "no";
  }

  static String fixed(int decimals, double x) {
    return String.format(Locale.ROOT, "%." + decimals + "f", x);
  }

  private static String signedPercent(double fraction) {
    return String.format(Locale.ROOT, "%+.2f%%", 100 * fraction);
  }

  /** A setting as written: 0.0001, 2, 0.5 (locale-free, no exponent). */
  private static String plain(double x) {
    return BigDecimal.valueOf(x).stripTrailingZeros().toPlainString();
  }

  /** A YAML scalar: plain when unambiguous, else double-quoted. */
  private static String yaml(String s) {
    if (s.matches("[A-Za-z][A-Za-z0-9._-]*")
        && !s.matches("(?i)true|false|yes|no|on|off|null|y|n")) {
      return s;
    }
    StringBuilder q = new StringBuilder("\"");
    for (char ch : s.toCharArray()) {
      switch (ch) {
        case '"' -> q.append("\\\"");
        case '\\' -> q.append("\\\\");
        default -> {
          if (ch < 0x20) {
            q.append(String.format(Locale.ROOT, "\\u%04x", (int) ch));
          } else {
            q.append(ch);
          }
        }
      }
    }
    return q.append('"').toString();
  }

  /** A two-column Markdown table that leaves out rows without a value. */
  private static final class Table {
    private final StringBuilder md = new StringBuilder();
    private boolean empty = true;

    Table(String left, String right) {
      md.append("| ").append(left).append(" | ").append(right).append(" |\n|---|---|\n");
    }

    void row(String name, String value) {
      if (value != null) {
        empty = false;
        md.append("| ").append(name).append(" | ").append(value.replace("|", "\\|")).append(" |\n");
      }
    }

    /** The table, or nothing when it has no rows. */
    @Override
    public String toString() {
      return empty ? "" : md.toString();
    }
  }
}
