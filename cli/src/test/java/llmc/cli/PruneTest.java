package llmc.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import llmc.formats.Checkpoint;
import llmc.formats.ModelFolder;
import llmc.model.Linear;
import llmc.model.LlamaFamily;
import llmc.prune.Masks;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code llmc prune} on stories260K: every output read back from its files. */
class PruneTest {
  @TempDir Path dir;

  static String calib() {
    return Cli.root().resolve("samples/data/tinystories/train.jsonl").toString();
  }

  /** Zeros of every linear weight of a written folder, read back. */
  static double[] sparsities(Path folder) {
    try (ModelFolder m = ModelFolder.open(folder)) {
      LlamaFamily f = LlamaFamily.from(m.config());
      Checkpoint c = m.checkpoint();
      List<Double> out = new ArrayList<>();
      for (int i = 0; i < f.layers(); i++) {
        for (Linear linear : Linear.values()) {
          out.add(Masks.sparsity(c.floats(linear.weightName(i))));
        }
      }
      return out.stream().mapToDouble(Double::doubleValue).toArray();
    }
  }

  @Test
  void magnitudeHalvesEveryMatrixAndTheReportSaysSo() {
    Path out = dir.resolve("mag");
    Cli r =
        Cli.run(
            "prune",
            Cli.stories(),
            "--out",
            out.toString(),
            "--method",
            "magnitude",
            "--sparsity",
            "0.5",
            "--json");
    assertEquals(0, r.exitCode(), r.err());
    for (double s : sparsities(out)) {
      assertEquals(0.5, s, 1e-3);
    }
    JsonNode report = r.json();
    assertEquals(0.5, report.at("/sparsity/linear").asDouble(), 1e-3);
    assertEquals(35, report.get("matrices").size());
    assertTrue(Files.isRegularFile(out.resolve("llmc-report.json")));
    assertTrue(Files.isRegularFile(out.resolve("tokenizer.json")));
    JsonNode inspect = Cli.run("inspect", out.toString(), "--json").json();
    assertEquals(0.5, inspect.at("/sparsity/linear").asDouble(), 1e-3);
    assertFalse(inspect.at("/sparsity/two_four").asBoolean());
  }

  @Test
  void twoFourOutputsSatisfyTheConstraintInEveryBlockAndSparseGptBeatsWandaBeatsMagnitude() {
    double[] ppl = new double[3];
    String[] methods = {"magnitude", "wanda", "sparsegpt"};
    for (int k = 0; k < 3; k++) {
      Path out = dir.resolve(methods[k]);
      List<String> args =
          new ArrayList<>(
              List.of(
                  "prune",
                  Cli.stories(),
                  "--out",
                  out.toString(),
                  "--method",
                  methods[k],
                  "--pattern",
                  "2:4",
                  "--eval",
                  Cli.valid(),
                  "--eval-max-windows",
                  "24",
                  "--json"));
      if (k > 0) {
        args.addAll(List.of("--calib", calib(), "--nsamples", "32"));
      }
      Cli r = Cli.run(args.toArray(String[]::new));
      assertEquals(0, r.exitCode(), r.err());
      try (ModelFolder m = ModelFolder.open(out)) {
        LlamaFamily f = LlamaFamily.from(m.config());
        for (int i = 0; i < f.layers(); i++) {
          for (Linear linear : Linear.values()) {
            float[] w = m.checkpoint().floats(linear.weightName(i));
            assertTrue(
                Masks.satisfies(w, linear.outFeatures(f), linear.inFeatures(f), 2, 4),
                linear.weightName(i));
            assertEquals(0.5, Masks.sparsity(w), 0.01, linear.weightName(i));
          }
        }
      }
      assertTrue(
          Cli.run("inspect", out.toString(), "--json").json().at("/sparsity/two_four").asBoolean());
      ppl[k] = r.json().at("/eval/perplexity_after").asDouble();
    }
    assertTrue(
        ppl[2] <= ppl[1] && ppl[1] < ppl[0],
        "sparsegpt " + ppl[2] + ", wanda " + ppl[1] + ", magnitude " + ppl[0]);
  }

  @Test
  void sparse24BitmaskReadsBackAsTheDenseResult() {
    Path dense = dir.resolve("dense");
    Path packed = dir.resolve("packed");
    assertEquals(
        0,
        Cli.run("prune", Cli.stories(), "--out", dense.toString(), "--pattern", "2:4").exitCode());
    Cli r =
        Cli.run(
            "prune",
            Cli.stories(),
            "--out",
            packed.toString(),
            "--pattern",
            "2:4",
            "--format",
            "sparse-24-bitmask",
            "--json");
    assertEquals(0, r.exitCode(), r.err());
    try (ModelFolder d = ModelFolder.open(dense);
        ModelFolder p = ModelFolder.open(packed)) {
      JsonNode sc = p.config().json().at("/quantization_config/sparsity_config");
      assertEquals("sparse-24-bitmask", sc.get("format").asText());
      assertEquals("2:4", sc.get("sparsity_structure").asText());
      assertTrue(p.checkpoint().contains("model.layers.0.mlp.up_proj.compressed"));
      assertTrue(p.checkpoint().contains("model.layers.0.mlp.up_proj.bitmask"));
      assertFalse(p.checkpoint().contains("model.layers.0.mlp.up_proj.weight"));
      var read = llmc.model.Weights.of(p);
      LlamaFamily f = LlamaFamily.from(d.config());
      for (int i = 0; i < f.layers(); i++) {
        for (Linear linear : Linear.values()) {
          assertArrayEquals(
              d.checkpoint().floats(linear.weightName(i)), read.floats(linear.weightName(i)));
        }
      }
    }
    JsonNode inspect = Cli.run("inspect", packed.toString(), "--json").json();
    assertTrue(inspect.at("/sparsity/two_four").asBoolean());
    Cli e =
        Cli.run(
            "eval",
            packed.toString(),
            "--data",
            Cli.valid(),
            "--max-windows",
            "2",
            "--base",
            dense.toString(),
            "--json");
    assertEquals(0, e.exitCode(), e.err());
    assertEquals(0.0, e.json().get("mean_kl").asDouble(), 1e-6);
    Cli q =
        Cli.run(
            "quantize", packed.toString(), "--out", dir.resolve("q").toString(), "--method", "rtn");
    assertEquals(2, q.exitCode());
    assertTrue(
        q.err().contains("quantize the dense pruned folder (pruned with the dense format)"),
        q.err());
  }

  @Test
  void quantizingAPrunedModelKeepsItsZeros() {
    Path pruned = dir.resolve("pruned");
    assertEquals(
        0,
        Cli.run("prune", Cli.stories(), "--out", pruned.toString(), "--pattern", "2:4").exitCode());
    Path quantized = dir.resolve("quantized");
    Cli r =
        Cli.run(
            "quantize",
            pruned.toString(),
            "--out",
            quantized.toString(),
            "--bits",
            "4",
            "--group-size",
            "32",
            "--asym",
            "--format",
            "dense",
            "--calib",
            calib(),
            "--nsamples",
            "8",
            "--json");
    assertEquals(0, r.exitCode(), r.err());
    assertTrue(r.json().at("/sparsity/survived").asBoolean(), r.out());
    assertEquals(
        r.json().at("/sparsity/input_zeros").asLong(),
        r.json().at("/sparsity/zeros_kept").asLong());
    for (double s : sparsities(quantized)) {
      assertTrue(s >= 0.5, "sparsity " + s);
    }
  }

  @Test
  void channelPruningWritesASmallerModelThatRuns() {
    Path out = dir.resolve("channels");
    Cli r =
        Cli.run(
            "prune",
            Cli.stories(),
            "--out",
            out.toString(),
            "--method",
            "lp",
            "--structure",
            "channels",
            "--sparsity",
            "0.25",
            "--eval",
            Cli.valid(),
            "--eval-max-windows",
            "4",
            "--json");
    assertEquals(0, r.exitCode(), r.err());
    try (ModelFolder m = ModelFolder.open(out)) {
      assertEquals(129, m.config().intermediateSize()); // 172 - round(0.25 * 172)
      assertArrayEquals(
          new long[] {129, 64}, m.checkpoint().info("model.layers.2.mlp.gate_proj.weight").shape());
      assertArrayEquals(
          new long[] {129, 64}, m.checkpoint().info("model.layers.2.mlp.up_proj.weight").shape());
      assertArrayEquals(
          new long[] {64, 129}, m.checkpoint().info("model.layers.2.mlp.down_proj.weight").shape());
    }
    JsonNode report = r.json();
    assertEquals(260032 - 5 * 3 * 43 * 64, report.at("/structured/parameters_after").asLong());
    assertTrue(report.at("/eval/perplexity_after").asDouble() < 1000);
    Cli g =
        Cli.run(
            "generate",
            out.toString(),
            "--prompt",
            "Once upon a time",
            "--max-tokens",
            "5",
            "--json");
    assertEquals(0, g.exitCode(), g.err());
  }

  @Test
  void gradientScoresPruneChannelsAndReportTheirMemory() {
    Path out = dir.resolve("taylor");
    Cli r =
        Cli.run(
            "prune",
            Cli.stories(),
            "--out",
            out.toString(),
            "--method",
            "taylor",
            "--structure",
            "channels",
            "--sparsity",
            "0.25",
            "--calib",
            calib(),
            "--nsamples",
            "4",
            "--seq-len",
            "128",
            "--grad-batch",
            "2",
            "--json");
    assertEquals(0, r.exitCode(), r.err());
    JsonNode report = r.json();
    assertEquals(
        226560L * 4, report.at("/gradients/bytes").asLong()); // float32 per linear parameter
    assertTrue(
        report.at("/gradients/loss").asDouble() > 0.5
            && report.at("/gradients/loss").asDouble() < 3);
    try (ModelFolder m = ModelFolder.open(out)) {
      assertEquals(129, m.config().intermediateSize());
    }
    Cli u =
        Cli.run(
            "prune",
            Cli.stories(),
            "--out",
            dir.resolve("sens").toString(),
            "--method",
            "sensitivity",
            "--sparsity",
            "0.3",
            "--calib",
            calib(),
            "--nsamples",
            "2",
            "--seq-len",
            "128");
    assertEquals(0, u.exitCode(), u.err());
    for (double s : sparsities(dir.resolve("sens"))) {
      assertEquals(0.3, s, 1e-3);
    }
  }

  @Test
  void headPruningRemovesWholeKeyValueGroups() {
    Path out = dir.resolve("heads");
    Cli r =
        Cli.run(
            "prune",
            Cli.stories(),
            "--out",
            out.toString(),
            "--method",
            "magnitude",
            "--structure",
            "heads",
            "--sparsity",
            "0.25",
            "--json");
    assertEquals(0, r.exitCode(), r.err());
    try (ModelFolder m = ModelFolder.open(out)) {
      assertEquals(6, m.config().numAttentionHeads());
      assertEquals(3, m.config().numKeyValueHeads());
      assertEquals(8, m.config().headDim());
      assertArrayEquals(
          new long[] {48, 64},
          m.checkpoint().info("model.layers.0.self_attn.q_proj.weight").shape());
      assertArrayEquals(
          new long[] {24, 64},
          m.checkpoint().info("model.layers.0.self_attn.k_proj.weight").shape());
      assertArrayEquals(
          new long[] {64, 48},
          m.checkpoint().info("model.layers.0.self_attn.o_proj.weight").shape());
    }
    Cli e = Cli.run("eval", out.toString(), "--data", Cli.valid(), "--max-windows", "2", "--json");
    assertEquals(0, e.exitCode(), e.err());
  }

  @Test
  void droppedLayersAreRenumbered() {
    Path out = dir.resolve("layers");
    Cli r =
        Cli.run("prune", Cli.stories(), "--out", out.toString(), "--drop-layers", "1,3", "--json");
    assertEquals(0, r.exitCode(), r.err());
    try (ModelFolder m = ModelFolder.open(out);
        ModelFolder in = ModelFolder.open(Path.of(Cli.stories()))) {
      assertEquals(3, m.config().numHiddenLayers());
      assertFalse(m.checkpoint().contains("model.layers.3.mlp.up_proj.weight"));
      assertArrayEquals(
          in.checkpoint().floats("model.layers.2.mlp.up_proj.weight"),
          m.checkpoint().floats("model.layers.1.mlp.up_proj.weight"));
    }
  }

  @Test
  void twoSparseGptRunsWriteByteIdenticalFolders() throws java.io.IOException {
    List<Path> outs = new ArrayList<>();
    for (int run = 0; run < 2; run++) {
      Path out = dir.resolve("sgpt-" + run);
      Cli r =
          Cli.run(
              "prune",
              Cli.stories(),
              "--out",
              out.toString(),
              "--method",
              "sparsegpt",
              "--sparsity",
              "0.5",
              "--calib",
              calib(),
              "--nsamples",
              "8");
      assertEquals(0, r.exitCode(), r.err());
      outs.add(out);
    }
    for (String file : List.of("model.safetensors", "config.json", "llmc-report.json")) {
      assertEquals(-1, Files.mismatch(outs.get(0).resolve(file), outs.get(1).resolve(file)), file);
    }
  }

  @Test
  void refusedOptionsWriteNothing() {
    Path out = dir.resolve("x");
    List<String[]> refused =
        List.of(
            new String[] {"--method", "wanda"}, // no --calib
            new String[] {"--method", "nonsense"},
            new String[] {"--sparsity", "1.5"},
            new String[] {"--pattern", "5:4"},
            new String[] {"--method", "wanda", "--structure", "channels", "--calib", calib()},
            new String[] {"--structure", "heads", "--sparsity", "0.01"},
            new String[] {"--drop-layers", "7"},
            new String[] {"--pattern", "2:4", "--compare", "row"},
            new String[] {"--format", "sparse-24-bitmask"});
    for (String[] extra : refused) {
      List<String> args = new ArrayList<>(List.of("prune", Cli.stories(), "--out", out.toString()));
      args.addAll(List.of(extra));
      Cli r = Cli.run(args.toArray(String[]::new));
      assertEquals(2, r.exitCode(), String.join(" ", extra) + ": " + r.err());
      assertTrue(r.err().startsWith("llmc: error: "), r.err());
      assertFalse(Files.exists(out), String.join(" ", extra));
    }
  }
}
