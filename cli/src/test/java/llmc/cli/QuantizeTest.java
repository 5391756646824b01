package llmc.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Stream;
import llmc.formats.DType;
import llmc.formats.ModelConfig;
import llmc.formats.ModelFolder;
import llmc.model.Linear;
import llmc.model.RandomModel;
import llmc.model.Weights;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/** `llmc quantize` on stories260K: what it writes reads back exactly, runs, and is reproducible. */
class QuantizeTest {
  @TempDir Path dir;

  @TempDir static Path shared;

  /**
   * stories260K's architecture and tokenizer with 2 layers and an MLP width of 128 instead of 172,
   * so that every matrix fits the GPTQ layout's whole int32 words at every bit width; random
   * weights.
   */
  static Path model;

  @BeforeAll
  static void gptqFriendlyModel() {
    model = shared.resolve("stories-shape-128");
    try (ModelFolder stories = ModelFolder.open(Path.of(Cli.stories()))) {
      ModelConfig config =
          stories
              .config()
              .with(
                  json -> {
                    json.put("intermediate_size", 128);
                    json.put("num_hidden_layers", 2);
                  });
      RandomModel.write(config, stories, model, 3, DType.F32, 0.05, 0.1);
    }
  }

  static Cli quantize(Path out, String... args) {
    return quantizeModel(model.toString(), out, args);
  }

  static Cli quantizeModel(String input, Path out, String... args) {
    List<String> all =
        new ArrayList<>(List.of("quantize", input, "--out", out.toString(), "--json"));
    all.addAll(List.of(args));
    Cli r = Cli.run(all.toArray(String[]::new));
    assertEquals(0, r.exitCode(), r.err());
    return r;
  }

  static String train() {
    return Cli.root().resolve("samples/data/tinystories/train.jsonl").toString();
  }

  static Stream<Arguments> layouts() {
    return Stream.of(
        Arguments.of(
            "gptq v1, 4 bits, g32, sym",
            "gptq --checkpoint-format v1",
            "--bits 4 --group-size 32 --sym"),
        Arguments.of("gptq v1, 4 bits, g32, asym", "gptq", "--bits 4 --group-size 32 --asym"),
        Arguments.of(
            "gptq v2, 3 bits, g32, asym",
            "gptq --checkpoint-format v2",
            "--bits 3 --group-size 32 --asym"),
        Arguments.of("gptq v1, 8 bits, per-channel", "gptq", "--bits 8 --group-size -1 --asym"),
        Arguments.of("gptq v1, 2 bits, g32", "gptq", "--bits 2 --group-size 32 --asym"),
        Arguments.of(
            "compressed-tensors, 4 bits, g32, sym",
            "compressed-tensors",
            "--bits 4 --group-size 32 --sym"),
        Arguments.of(
            "compressed-tensors, 5 bits, g32, asym",
            "compressed-tensors",
            "--bits 5 --group-size 32 --asym"),
        Arguments.of(
            "compressed-tensors, 6 bits, per-channel, sym",
            "compressed-tensors",
            "--bits 6 --group-size -1 --sym"));
  }

  /**
   * Every layout stores exactly the weights the quantizer produced: the dense output of the same
   * run (float32 for this float32 model) is the reference, and every other layout, read back and
   * dequantized by llmc, must equal it bit for bit; for RTN and for GPTQ with act-order.
   */
  @ParameterizedTest(name = "{0}")
  @MethodSource("layouts")
  void layoutReadsBackExactlyAsTheDenseWeights(String name, String format, String scheme) {
    for (String method :
        new String[] {
          "--method rtn", "--method gptq --act-order --nsamples 8 --calib " + train()
        }) {
      String run = scheme + " " + method;
      Path dense = dir.resolve("dense");
      Path stored = dir.resolve("stored");
      quantize(dense, (run + " --format dense").split(" "));
      quantize(stored, (run + " --format " + format).split(" "));
      try (ModelFolder a = ModelFolder.open(dense);
          ModelFolder b = ModelFolder.open(stored)) {
        Weights expected = Weights.of(a);
        Weights actual = Weights.of(b);
        for (int layer = 0; layer < 2; layer++) {
          for (Linear linear : Linear.values()) {
            assertArrayEquals(
                expected.floats(linear.weightName(layer)),
                actual.floats(linear.weightName(layer)),
                name + ", " + method + ": " + linear.weightName(layer));
          }
        }
      }
      deleteTree(dense);
      deleteTree(stored);
    }
  }

  @Test
  void quantizedFolderRunsInEvalAndGenerate() {
    Path out = dir.resolve("w4");
    quantizeModel(
        Cli.stories(),
        out,
        "--method",
        "rtn",
        "--bits",
        "4",
        "--group-size",
        "32",
        "--asym",
        "--format",
        "compressed-tensors");
    Cli eval =
        Cli.run(
            "eval",
            out.toString(),
            "--data",
            Cli.valid(),
            "--max-windows",
            "2",
            "--base",
            Cli.stories(),
            "--json");
    assertEquals(0, eval.exitCode(), eval.err());
    assertTrue(eval.json().get("mean_kl").asDouble() > 0, eval.out());
    assertTrue(eval.json().get("top1_agreement").asDouble() > 0.7, eval.out());
    Cli generate =
        Cli.run("generate", out.toString(), "--prompt", "Once upon a time", "--max-tokens", "8");
    assertEquals(0, generate.exitCode(), generate.err());
    assertTrue(generate.out().startsWith("Once upon a time"), generate.out());
    Cli inspect = Cli.run("inspect", out.toString(), "--json");
    assertEquals(0, inspect.exitCode(), inspect.err());
  }

  @Test
  void twoRunsWriteByteIdenticalFolders() throws IOException {
    String[] args = {
      "--bits",
      "4",
      "--group-size",
      "32",
      "--asym",
      "--act-order",
      "--calib",
      train(),
      "--nsamples",
      "16"
    };
    Path first = dir.resolve("first");
    Path second = dir.resolve("second");
    quantize(first, args);
    quantize(second, args);
    Map<String, String> a = hashes(first);
    assertTrue(
        a.containsKey("model.safetensors")
            && a.containsKey("llmc-report.json")
            && a.containsKey("config.json"),
        a.toString());
    assertEquals(a, hashes(second));
  }

  @Test
  void gptqConfigAndReportDescribeTheRun() throws IOException {
    Path out = dir.resolve("gptq");
    Cli r =
        quantize(
            out,
            "--bits",
            "4",
            "--group-size",
            "32",
            "--calib",
            train(),
            "--nsamples",
            "4",
            "--bits-for",
            "down_proj=8",
            "--ignore",
            "layers\\.1\\.mlp\\.up_proj");
    JsonNode config = llmc.formats.Json.mapper().readTree(out.resolve("config.json").toFile());
    JsonNode qc = config.get("quantization_config");
    assertEquals("gptq", qc.get("quant_method").asText());
    assertEquals(4, qc.get("bits").asInt());
    assertEquals(32, qc.get("group_size").asInt());
    assertTrue(qc.get("sym").asBoolean());
    assertFalse(qc.get("desc_act").asBoolean());
    assertEquals("gptq", qc.get("checkpoint_format").asText());
    assertEquals(8, qc.at("/dynamic/+:down_proj/bits").asInt());
    assertTrue(Files.exists(out.resolve("quantize_config.json")));
    assertTrue(Files.exists(out.resolve("tokenizer.json")));
    JsonNode report = r.json();
    assertEquals(2 * 7 - 1, report.get("matrices").size());
    for (JsonNode m : report.get("matrices")) {
      assertEquals(m.get("name").asText().endsWith("down_proj") ? 8 : 4, m.get("bits").asInt());
      assertTrue(m.get("gptq_loss").asDouble() >= 0 && m.has("seconds"), m.toString());
    }
    assertEquals(4, report.at("/calibration/windows").asInt());
    assertTrue(report.at("/size/output_bytes").asLong() < report.at("/size/input_bytes").asLong());
  }

  /**
   * Saved statistics are those of the unquantized model: layer 0's q/k/v see the same input (the
   * embeddings) either way, so they quantize identically; the report warns it is not sequential.
   */
  @Test
  void savedStatisticsQuantizeWithoutCalibration() throws IOException {
    Path stats = dir.resolve("stats");
    Path sequential = dir.resolve("sequential");
    Path fromStats = dir.resolve("from-stats");
    quantize(sequential, "--calib", train(), "--nsamples", "8", "--save-stats", stats.toString());
    Cli r = quantize(fromStats, "--stats", stats.toString());
    assertTrue(r.json().get("warnings").toString().contains("not sequential"), r.out());
    try (llmc.formats.SafetensorsFile file =
        llmc.formats.SafetensorsFile.open(stats.resolve("statistics.safetensors"))) {
      assertEquals(2 * 4, file.tensors().size());
      assertEquals(Long.toString(8 * 512), file.metadata().get("tokens"));
    }
    try (ModelFolder a = ModelFolder.open(sequential);
        ModelFolder b = ModelFolder.open(fromStats)) {
      for (Linear linear : new Linear[] {Linear.Q, Linear.K, Linear.V}) {
        assertArrayEquals(
            Weights.of(a).floats(linear.weightName(0)), Weights.of(b).floats(linear.weightName(0)));
      }
      assertFalse(
          java.util.Arrays.equals(
              Weights.of(a).floats(Linear.DOWN.weightName(1)),
              Weights.of(b).floats(Linear.DOWN.weightName(1))),
          "later layers differ: sequential vs not");
    }
  }

  @Test
  void refusedOptionsWriteNothing() {
    for (String[] args :
        new String[][] {
          {"--method", "gptq"}, // no --calib
          {"--method", "rtn", "--bits", "5"}, // gptq format holds 2, 3, 4, 8
          {"--method", "rtn", "--bits", "9", "--format", "dense"},
          {"--method", "rtn", "--act-order"},
          {"--method", "rtn", "--ignore", "("},
          {"--stats", "/nonexistent-stats"}
        }) {
      Path out = dir.resolve("refused");
      List<String> all =
          new ArrayList<>(List.of("quantize", model.toString(), "--out", out.toString()));
      all.addAll(List.of(args));
      Cli r = Cli.run(all.toArray(String[]::new));
      assertEquals(2, r.exitCode(), String.join(" ", args) + ": " + r.err());
      assertEquals(1, r.err().lines().count(), r.err());
      assertFalse(Files.exists(out), String.join(" ", args));
    }
  }

  static Map<String, String> hashes(Path folder) throws IOException {
    Map<String, String> out = new TreeMap<>();
    try (Stream<Path> files = Files.list(folder)) {
      for (Path f : files.toList()) {
        try {
          out.put(
              f.getFileName().toString(),
              HexFormat.of()
                  .formatHex(MessageDigest.getInstance("SHA-256").digest(Files.readAllBytes(f))));
        } catch (java.security.NoSuchAlgorithmException e) {
          throw new IllegalStateException(e);
        }
      }
    }
    return out;
  }

  static void deleteTree(Path p) {
    try (Stream<Path> files = Files.walk(p)) {
      for (Path f : files.sorted(java.util.Comparator.reverseOrder()).toList()) {
        Files.delete(f);
      }
    } catch (IOException e) {
      throw new java.io.UncheckedIOException(e);
    }
  }
}
