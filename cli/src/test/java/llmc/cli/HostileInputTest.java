package llmc.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;
import java.util.stream.Stream;
import llmc.formats.Json;
import llmc.pipeline.RecipeRun;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Hostile and broken inputs, each built here from the sample model: for every case, exit code 2, a
 * short stderr whose first line names the file, key, tensor or option at fault, nothing on stdout,
 * nothing at {@code --out}, the input untouched, and all within 30 s.
 */
class HostileInputTest {
  @TempDir static Path dir;
  private static Path gguf;

  /** One case: the arguments, and what the error line must name. */
  private record Case(String name, List<String> args, String names) {}

  @BeforeAll
  static void cleanGguf() {
    gguf = dir.resolve("ok.gguf");
    Cli c =
        Cli.run("export", Cli.stories(), "--format", "gguf", "--type", "f32", "--out", "" + gguf);
    assertEquals(0, c.exitCode(), c.err());
  }

  /** A copy of the sample model with its config.json changed. */
  private static Path withConfig(String name, Consumer<ObjectNode> change) throws IOException {
    Path copy = copyModel(name);
    ObjectNode config = (ObjectNode) Json.mapper().readTree(copy.resolve("config.json").toFile());
    change.accept(config);
    Files.writeString(copy.resolve("config.json"), config.toString());
    return copy;
  }

  /** A copy of the sample model whose tokenizer.json has an added token past the vocabulary. */
  private static Path withForeignTokenizer(String name) throws IOException {
    Path copy = copyModel(name);
    ObjectNode tokenizer =
        (ObjectNode) Json.mapper().readTree(copy.resolve("tokenizer.json").toFile());
    ObjectNode added = tokenizer.withArray("added_tokens").addObject();
    added.put("id", 5000).put("content", "Once").put("special", false);
    added.put("single_word", false).put("lstrip", false).put("rstrip", false);
    added.put("normalized", false);
    Files.writeString(copy.resolve("tokenizer.json"), tokenizer.toString());
    return copy;
  }

  private static Path withTokenizerText(String name, String text) throws IOException {
    Path copy = copyModel(name);
    Files.writeString(copy.resolve("tokenizer.json"), text);
    return copy;
  }

  private static Path copyModel(String name) throws IOException {
    Path from = Path.of(Cli.stories());
    Path to = dir.resolve(name);
    Files.createDirectories(to);
    try (Stream<Path> files = Files.list(from)) {
      for (Path f : files.toList()) {
        Files.copy(f, to.resolve(f.getFileName()));
      }
    }
    return to;
  }

  /** A copy of the clean GGUF file with one u32 metadata value replaced. */
  private static Path ggufWith(String name, String key, int value) throws IOException {
    byte[] bytes = Files.readAllBytes(gguf);
    byte[] k = key.getBytes(StandardCharsets.UTF_8);
    ByteBuffer prefix = ByteBuffer.allocate(8 + k.length).order(ByteOrder.LITTLE_ENDIAN);
    prefix.putLong(k.length).put(k);
    int at = indexOf(bytes, prefix.array());
    assertTrue(at > 0, key);
    int valueAt = at + prefix.capacity() + 4; // after the key, its u32 type tag
    ByteBuffer.wrap(bytes, valueAt, 4).order(ByteOrder.LITTLE_ENDIAN).putInt(value);
    return Files.write(dir.resolve(name), bytes);
  }

  private static int indexOf(byte[] haystack, byte[] needle) {
    outer:
    for (int i = 0; i + needle.length <= haystack.length; i++) {
      for (int j = 0; j < needle.length; j++) {
        if (haystack[i + j] != needle[j]) {
          continue outer;
        }
      }
      return i;
    }
    return -1;
  }

  /** A copy of the sample model with one weight of layer 1's q_proj set to {@code value}. */
  private static Path withWeight(String name, float value) throws IOException {
    Path copy = copyModel(name);
    setFloat(
        copy.resolve("model.safetensors"), "model.layers.1.self_attn.q_proj.weight", 10, value);
    return copy;
  }

  private static void setFirstFloat(Path file, String tensor, float value) throws IOException {
    setFloat(file, tensor, 0, value);
  }

  /** Element {@code index} of an F32 tensor in a safetensors file set to {@code value}. */
  private static void setFloat(Path file, String tensor, int index, float value)
      throws IOException {
    byte[] bytes = Files.readAllBytes(file);
    long headerLength = ByteBuffer.wrap(bytes, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
    var header =
        Json.mapper().readTree(new String(bytes, 8, (int) headerLength, StandardCharsets.UTF_8));
    long begin = header.get(tensor).get("data_offsets").get(0).asLong();
    ByteBuffer.wrap(bytes, (int) (8 + headerLength + begin + 4L * index), 4)
        .order(ByteOrder.LITTLE_ENDIAN)
        .putFloat(value);
    Files.write(file, bytes);
  }

  /**
   * A copy of saved statistics, rewritten tensor by tensor: {@code edit} returns the new values of
   * a tensor (its shape follows: a square of their count), or null to leave it out.
   */
  private static Path statisticsWith(
      Path from, String name, java.util.function.BiFunction<String, float[], float[]> edit)
      throws IOException {
    Path to = Files.createDirectories(dir.resolve(name));
    try (var in = llmc.formats.SafetensorsFile.open(from.resolve("statistics.safetensors"));
        var out = new llmc.formats.SafetensorsWriter(to, 0, in.metadata())) {
      for (var t : in.tensors()) {
        float[] values = edit.apply(t.name(), in.floats(t.name()));
        if (values != null) {
          long side = Math.round(Math.sqrt(values.length));
          out.writeFloats(t.name(), llmc.formats.DType.F32, new long[] {side, side}, values);
        }
      }
      out.finish();
    }
    Files.move(to.resolve("model.safetensors"), to.resolve("statistics.safetensors"));
    return to;
  }

  private static Path fifo(String name) throws IOException, InterruptedException {
    Path f = dir.resolve(name);
    Process p = new ProcessBuilder("mkfifo", f.toString()).start();
    assertEquals(0, p.waitFor());
    return f;
  }

  private static List<String> quantize(Path model, String out, String... more) {
    List<String> args =
        new ArrayList<>(
            List.of(
                "quantize",
                model.toString(),
                "--out",
                dir.resolve(out).toString(),
                "--method",
                "rtn",
                "--format",
                "dense"));
    args.addAll(List.of(more));
    return args;
  }

  private static List<String> eval(Path model, String... more) {
    List<String> args =
        new ArrayList<>(
            List.of("eval", model.toString(), "--data", Cli.valid(), "--max-windows", "1"));
    args.addAll(List.of(more));
    return args;
  }

  @Test
  void everyHostileInputIsOneClearLineAndExit2WithNothingWritten() throws Exception {
    Path stories = Path.of(Cli.stories());
    Path fifoModel = copyModel("fifo-model");
    Files.delete(fifoModel.resolve("model.safetensors"));
    Files.move(fifo("fifo-weights"), fifoModel.resolve("model.safetensors"));
    Path folderAsData = Files.createDirectories(dir.resolve("data.jsonl"));
    Path nanStatistics = dir.resolve("nan-stats");
    Cli saved =
        Cli.run(
            "quantize",
            stories.toString(),
            "--out",
            dir.resolve("with-stats").toString(),
            "--format",
            "dense",
            "--calib",
            Cli.valid(),
            "--nsamples",
            "2",
            "--save-stats",
            nanStatistics.toString());
    assertEquals(0, saved.exitCode(), saved.err());
    Path statsWithoutALayer =
        statisticsWith(
            nanStatistics,
            "stats-no-layer-3",
            (name, v) -> name.equals("model.layers.3.mlp_in.xxt") ? null : v);
    Path statsOfAnotherModel =
        statisticsWith(nanStatistics, "stats-4x4", (name, v) -> new float[16]);
    setFirstFloat(
        nanStatistics.resolve("statistics.safetensors"), "model.layers.0.attn_in.xxt", Float.NaN);
    Path shortData =
        Files.writeString(dir.resolve("short.jsonl"), "{\"text\": \"Once upon a time\"}\n");
    List<Case> cases =
        List.of(
            // Usage errors: one line and a hint, not the whole help.
            new Case("unknown option", quantize(stories, "o1", "--bogus"), "--bogus"),
            new Case("bad number", quantize(stories, "o2", "--bits", "four"), "--bits"),
            new Case(
                "missing --out", List.of("quantize", stories.toString(), "--bits", "4"), "--out"),
            // Option values out of range.
            new Case("40000 threads", quantize(stories, "o3", "--threads", "40000"), "--threads"),
            new Case(
                "infinite dampening",
                List.of(
                    "quantize",
                    stories.toString(),
                    "--out",
                    dir.resolve("o4").toString(),
                    "--damp-percent",
                    "Infinity",
                    "--calib",
                    Cli.valid()),
                "--damp"),
            new Case("negative windows", eval(stories, "--max-windows", "-1"), "--max-windows"),
            new Case("seq-len past the context", eval(stories, "--seq-len", "100000"), "--seq-len"),
            // config.json that lies or overflows.
            new Case(
                "2^31-1 layers",
                quantize(
                    withConfig("layers-max", c -> c.put("num_hidden_layers", Integer.MAX_VALUE)),
                    "o5"),
                "num_hidden_layers"),
            new Case(
                "fewer layers than the weights",
                quantize(withConfig("layers-3", c -> c.put("num_hidden_layers", 3)), "o6"),
                "num_hidden_layers"),
            new Case(
                "more layers than the weights",
                eval(withConfig("layers-6", c -> c.put("num_hidden_layers", 6))),
                "num_hidden_layers"),
            new Case(
                "infinite rms_norm_eps",
                eval(
                    withConfig(
                        "eps-inf", c -> c.put("rms_norm_eps", new java.math.BigDecimal("1e999")))),
                "rms_norm_eps"),
            new Case(
                "zero key/value heads",
                eval(withConfig("kv-0", c -> c.put("num_key_value_heads", 0))),
                "num_key_value_heads"),
            new Case(
                "quantization_config a string",
                eval(withConfig("qc-string", c -> c.put("quantization_config", "gptq"))),
                "quantization_config"),
            new Case(
                "untied without lm_head.weight",
                eval(withConfig("untied", c -> c.put("tie_word_embeddings", false))),
                "tie_word_embeddings"),
            new Case(
                "calibration shorter than one window",
                List.of(
                    "quantize",
                    stories.toString(),
                    "--out",
                    dir.resolve("o9").toString(),
                    "--format",
                    "compressed-tensors",
                    "--calib",
                    shortData.toString()),
                "short.jsonl"),
            new Case(
                "NaN in saved statistics",
                List.of(
                    "quantize",
                    stories.toString(),
                    "--out",
                    dir.resolve("o10").toString(),
                    "--format",
                    "dense",
                    "--stats",
                    nanStatistics.toString()),
                "model.layers.0.attn_in.xxt"),
            new Case(
                "saved statistics without a layer",
                List.of(
                    "quantize",
                    stories.toString(),
                    "--out",
                    dir.resolve("o11").toString(),
                    "--format",
                    "dense",
                    "--stats",
                    statsWithoutALayer.toString()),
                "model.layers.3.mlp_in.xxt"),
            new Case(
                "saved statistics of another model",
                List.of(
                    "quantize",
                    stories.toString(),
                    "--out",
                    dir.resolve("o12").toString(),
                    "--format",
                    "dense",
                    "--stats",
                    statsOfAnotherModel.toString()),
                "model.layers.0.attn_in.xxt"),
            // Tokenizer files.
            new Case(
                "a tokenizer with ids past the vocabulary",
                eval(withForeignTokenizer("foreign-tokenizer")),
                "tokenizer.json"),
            new Case(
                "bos_token_id past the vocabulary",
                eval(withConfig("bos-past", c -> c.put("bos_token_id", 512))),
                "bos_token_id"),
            new Case(
                "tokenizer.json not JSON",
                eval(withTokenizerText("broken-tokenizer", "{\"model\": ")),
                "tokenizer.json"),
            // Non-finite weights.
            new Case(
                "NaN weight",
                quantize(withWeight("nan", Float.NaN), "o7"),
                "model.layers.1.self_attn.q_proj.weight"),
            new Case(
                "infinite weight",
                eval(withWeight("inf", Float.NEGATIVE_INFINITY)),
                "model.layers.1.self_attn.q_proj.weight"),
            new Case(
                "a weight beyond float16 exported as F16",
                List.of(
                    "export",
                    withWeight("huge", 1e9f).toString(),
                    "--type",
                    "f16",
                    "--out",
                    dir.resolve("o13.gguf").toString()),
                "blk.1.attn_q.weight"),
            // GGUF metadata that lies or overflows.
            new Case(
                "GGUF with zero heads",
                eval(
                    ggufWith("heads-0.gguf", "llama.attention.head_count", 0),
                    "--tokenizer",
                    "" + stories),
                "llama.attention.head_count"),
            new Case(
                "GGUF with 2e9 blocks",
                eval(
                    ggufWith("blocks-2e9.gguf", "llama.block_count", 2_000_000_000),
                    "--tokenizer",
                    "" + stories),
                "llama.block_count"),
            new Case(
                "GGUF with fewer blocks than tensors",
                eval(
                    ggufWith("blocks-3.gguf", "llama.block_count", 3), "--tokenizer", "" + stories),
                "llama.block_count"),
            new Case(
                "GGUF with a wrong embedding length",
                eval(
                    ggufWith("embd-128.gguf", "llama.embedding_length", 128),
                    "--tokenizer",
                    "" + stories),
                "token_embd.weight"),
            // Files that are not regular files.
            new Case("FIFO as weights", quantize(fifoModel, "o8"), "fifo-model"),
            new Case(
                "FIFO as data",
                List.of("eval", stories.toString(), "--data", "" + fifo("fifo.jsonl")),
                "fifo.jsonl"),
            new Case(
                "folder as data",
                List.of("eval", stories.toString(), "--data", folderAsData.toString()),
                "data.jsonl"));
    String before = RecipeRun.sha256(stories);
    for (Case c : cases) {
      long start = System.nanoTime();
      Cli r = Cli.run(c.args().toArray(String[]::new));
      double seconds = (System.nanoTime() - start) / 1e9;
      String[] lines = r.err().strip().split("\n");
      assertEquals(2, r.exitCode(), c.name() + ": " + r.err());
      assertEquals("", r.out(), c.name() + ": stdout");
      assertTrue(lines[0].startsWith("llmc: error: "), c.name() + ": " + r.err());
      assertTrue(lines[0].contains(c.names()), c.name() + ": names " + c.names() + ": " + lines[0]);
      assertTrue(lines.length <= 3, c.name() + ": " + lines.length + " lines: " + r.err());
      assertTrue(seconds < 30, c.name() + ": " + seconds + " s");
      int out = c.args().indexOf("--out");
      if (out >= 0) {
        assertFalse(Files.exists(Path.of(c.args().get(out + 1))), c.name() + ": --out written");
      }
    }
    assertEquals(before, RecipeRun.sha256(stories), "the sample model is untouched");
    try (Stream<Path> left = Files.list(dir)) {
      assertTrue(
          left.noneMatch(p -> p.getFileName().toString().contains(".tmp-")),
          "no temporary output folder left behind");
    }
  }

  /**
   * A disk that fills up while the output is written (a file size limit of 100 KB, which the JVM
   * sees as a failed write, as on a full disk): exit 2, one line naming the file and the reason, no
   * output and no temporary folder left.
   */
  @Test
  void aDiskThatFillsUpIsExit2AndLeavesNothing() throws Exception {
    Path out = dir.resolve("full");
    List<String> args = new ArrayList<>(List.of("bash", "-c", "ulimit -f 200; exec \"$@\"", "-"));
    args.addAll(Cli.child());
    args.addAll(
        List.of(
            "quantize",
            Cli.stories(),
            "--out",
            out.toString(),
            "--method",
            "rtn",
            "--format",
            "dense",
            "--quiet"));
    Process p = new ProcessBuilder(args).redirectErrorStream(true).start();
    String output = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertEquals(2, p.waitFor(), output);
    String error =
        output
            .lines()
            .filter(l -> l.startsWith("llmc:"))
            .findFirst()
            .orElseThrow(() -> new AssertionError(output));
    assertTrue(error.startsWith("llmc: error: cannot write"), error);
    assertTrue(error.contains("File too large"), error);
    assertFalse(Files.exists(out));
    try (Stream<Path> left = Files.list(dir)) {
      assertTrue(left.noneMatch(f -> f.getFileName().toString().startsWith(".full.tmp-")));
    }
  }

  /**
   * A heap too small for what a command makes without a memory plan (a random model whose layer
   * matrices are 4096 x 11008: 180 MB each, in a 48 MB heap): exit 2 and one line that says so and
   * how to give it more, not a stack trace; nothing at --out. (The layer-by-layer methods refuse
   * such a run before they start: MemoryBoundTest.)
   */
  @Test
  void runningOutOfMemoryIsExit2AndOneLine() throws Exception {
    Path out = dir.resolve("oom");
    Path config = dir.resolve("oom-config");
    Files.createDirectories(config);
    Path stories = Path.of(Cli.stories());
    ObjectNode c = (ObjectNode) Json.mapper().readTree(stories.resolve("config.json").toFile());
    c.put("hidden_size", 4096).put("intermediate_size", 11008).put("head_dim", 512);
    Json.mapper().writeValue(config.resolve("config.json").toFile(), c);
    Files.copy(stories.resolve("tokenizer.json"), config.resolve("tokenizer.json"));
    List<String> args = new ArrayList<>(Cli.child("-Xmx48m"));
    args.addAll(
        List.of("random-model", "--config", config.toString(), "--out", out.toString(), "--quiet"));
    Process p = new ProcessBuilder(args).start();
    String stdout = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    String stderr = new String(p.getErrorStream().readAllBytes(), StandardCharsets.UTF_8);
    assertEquals(2, p.waitFor(), stderr);
    assertEquals("", stdout);
    List<String> lines = stderr.lines().filter(l -> !l.startsWith("WARNING:")).toList();
    assertEquals(1, lines.size(), stderr);
    assertTrue(lines.get(0).startsWith("llmc: error: out of memory"), stderr);
    assertTrue(lines.get(0).contains("-Xmx"), stderr);
    assertFalse(Files.exists(out));
  }
}
