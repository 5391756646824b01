package llmc.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import llmc.formats.ModelFolder;
import llmc.formats.QuantizedTensor;
import llmc.formats.gguf.GgmlBlocks;
import llmc.formats.gguf.GgmlType;
import llmc.formats.gguf.GgufFile;
import llmc.formats.gguf.GgufTensorInfo;
import llmc.model.LlamaFamily;
import llmc.model.gguf.LlamaGguf;
import llmc.quantize.QuantScheme;
import llmc.quantize.Rtn;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code llmc export --format gguf} and {@code llmc quantize --format gguf} on stories260K, read
 * back byte by byte.
 */
class GgufExportTest {
  @TempDir Path dir;

  static float[] hfWeights(String name) {
    try (ModelFolder folder = ModelFolder.open(Path.of(Cli.stories()))) {
      return folder.checkpoint().floats(name);
    }
  }

  static LlamaFamily stories() {
    try (ModelFolder folder = ModelFolder.open(Path.of(Cli.stories()))) {
      return LlamaFamily.from(folder.config());
    }
  }

  @Test
  void f32ExportHasLlamaMetadataNamesAndInterleavedQkRows() {
    Path out = dir.resolve("s.gguf");
    Cli r =
        Cli.run(
            "export",
            Cli.stories(),
            "--format",
            "gguf",
            "--type",
            "f32",
            "--out",
            out.toString(),
            "--json");
    assertEquals(0, r.exitCode(), r.err());
    JsonNode report = r.json();
    assertEquals(
        47, report.get("tensors").asInt()); // token_embd, output_norm, 5 x 9 (tied: no output)
    assertEquals(0, report.get("fallbacks").size());
    try (GgufFile file = GgufFile.open(out)) {
      var m = file.metadata();
      assertEquals("llama", m.string("general.architecture"));
      assertEquals(0, m.integer("general.file_type"));
      assertEquals(32, m.integer("general.alignment"));
      assertEquals(5, m.integer("llama.block_count"));
      assertEquals(64, m.integer("llama.embedding_length"));
      assertEquals(172, m.integer("llama.feed_forward_length"));
      assertEquals(8, m.integer("llama.attention.head_count"));
      assertEquals(4, m.integer("llama.attention.head_count_kv"));
      assertEquals(8, m.integer("llama.rope.dimension_count"));
      assertEquals(512, m.integer("llama.context_length"));
      assertEquals("llama", m.string("tokenizer.ggml.model"));
      assertFalse(file.contains("output.weight"));
      assertArrayEquals(new long[] {512, 64}, file.info("token_embd.weight").shape());
      assertArrayEquals(
          hfWeights("model.layers.2.self_attn.v_proj.weight"), file.floats("blk.2.attn_v.weight"));
      // q: head h, GGUF row h*8 + 2j + i is HF row h*8 + 4i + j
      float[] hf = hfWeights("model.layers.2.self_attn.q_proj.weight");
      float[] gguf = file.floats("blk.2.attn_q.weight");
      for (int h = 0; h < 8; h++) {
        for (int j = 0; j < 4; j++) {
          for (int i = 0; i < 2; i++) {
            int ggufRow = h * 8 + 2 * j + i;
            int hfRow = h * 8 + 4 * i + j;
            for (int k = 0; k < 64; k++) {
              assertEquals(hf[hfRow * 64 + k], gguf[ggufRow * 64 + k]);
            }
          }
        }
      }
    }
  }

  @Test
  void q4_0ExportUsesLlamaCppRoundingWithQ8_0EmbeddingAndF16Fallback() throws IOException {
    Path out = dir.resolve("q.gguf");
    Cli r = Cli.run("export", Cli.stories(), "--type", "q4_0", "--out", out.toString(), "--json");
    assertEquals(0, r.exitCode(), r.err());
    JsonNode report = r.json();
    assertEquals(5, report.get("fallbacks").size());
    for (JsonNode f : report.get("fallbacks")) {
      assertTrue(f.get("name").asText().endsWith(".ffn_down.weight"), f.toString());
      assertEquals("f16", f.get("type").asText());
      assertTrue(f.get("reason").asText().contains("172"), f.toString());
    }
    assertEquals(30, report.at("/tensor_types/q4_0").asInt());
    assertEquals(1, report.at("/tensor_types/q8_0").asInt());
    try (GgufFile file = GgufFile.open(out);
        Arena arena = Arena.ofConfined()) {
      assertEquals(2, file.metadata().integer("general.file_type"));
      assertEquals(GgmlType.Q8_0, file.info("token_embd.weight").type());
      assertEquals(GgmlType.F32, file.info("blk.0.attn_norm.weight").type());
      assertEquals(GgmlType.F16, file.info("blk.0.ffn_down.weight").type());
      // Byte for byte llama.cpp's reference Q4_0 of the weights (v keeps its rows).
      float[] v = hfWeights("model.layers.1.self_attn.v_proj.weight");
      MemorySegment expected = arena.allocate(GgmlType.Q4_0.byteSize(v.length));
      GgmlBlocks.encode(GgmlType.Q4_0, v, 0, v.length, expected);
      assertEquals(-1, expected.mismatch(file.bytes("blk.1.attn_v.weight")));
    }
  }

  @Test
  void rtnOnTheGgufGridIsStoredWithoutFurtherRounding() {
    Path out = dir.resolve("rtn-q4_1.gguf");
    Cli r =
        Cli.run(
            "quantize",
            Cli.stories(),
            "--method",
            "rtn",
            "--format",
            "gguf",
            "--gguf-type",
            "q4_1",
            "--out",
            out.toString(),
            "--json");
    assertEquals(0, r.exitCode(), r.err());
    assertEquals("gguf", r.json().get("format").asText());
    assertEquals(30, r.json().get("matrices").size()); // 5 x (q, k, v, o, gate, up); down is F16
    LlamaFamily f = stories();
    try (GgufFile file = GgufFile.open(out)) {
      assertEquals(3, file.metadata().integer("general.file_type"));
      for (String hf :
          List.of("model.layers.3.self_attn.k_proj.weight", "model.layers.3.mlp.up_proj.weight")) {
        float[] w = hfWeights(hf);
        long[] shape = file.info(LlamaGguf.ggufName(hf)).shape();
        QuantizedTensor q =
            Rtn.quantize(
                w, (int) shape[0], (int) shape[1], QuantScheme.ggml(GgmlType.Q4_1), Rtn.Clip.NONE);
        float[] expected = q.dequantize();
        int[] order = LlamaGguf.rowOrder(hf, f);
        if (order != null) {
          expected = LlamaGguf.reorderRows(expected, (int) shape[1], order);
        }
        assertArrayEquals(expected, file.floats(LlamaGguf.ggufName(hf)), hf);
      }
      assertArrayEquals(
          hfWeights("model.layers.3.mlp.down_proj.weight"),
          file.floats("blk.3.ffn_down.weight"),
          1e-3f);
    }
  }

  @Test
  void gptqGgufRunsAreByteIdenticalAndBeatRtnOnTheLayerOutputs() throws IOException {
    List<Path> files = new ArrayList<>();
    for (int run = 0; run < 2; run++) {
      Path out = dir.resolve("gptq-" + run + ".gguf");
      Cli r =
          Cli.run(
              "quantize",
              Cli.stories(),
              "--format",
              "gguf",
              "--gguf-type",
              "q4_0",
              "--calib",
              Cli.root().resolve("samples/data/tinystories/train.jsonl").toString(),
              "--nsamples",
              "16",
              "--out",
              out.toString(),
              "--json");
      assertEquals(0, r.exitCode(), r.err());
      assertTrue(r.json().get("matrices").get(0).get("gptq_loss").asDouble() > 0);
      files.add(out);
    }
    assertEquals(-1, Files.mismatch(files.get(0), files.get(1)));
    try (GgufFile file = GgufFile.open(files.get(0))) {
      for (GgufTensorInfo t : file.tensors()) {
        GgmlType expected =
            t.name().endsWith("_norm.weight")
                ? GgmlType.F32
                : t.name().equals("token_embd.weight")
                    ? GgmlType.Q8_0
                    : t.name().endsWith("ffn_down.weight") ? GgmlType.F16 : GgmlType.Q4_0;
        assertEquals(expected, t.type(), t.name());
      }
    }
  }

  @Test
  void refusedGgufOptionsWriteNothing() {
    Path out = dir.resolve("x.gguf");
    String calib = Cli.root().resolve("samples/data/tinystories/train.jsonl").toString();
    List<String[]> refused =
        List.of(
            new String[] {
              "--format", "gguf", "--gguf-type", "q4_0", "--act-order", "--calib", calib
            },
            new String[] {
              "--format", "gguf", "--gguf-type", "q4_0", "--group-size", "64", "--calib", calib
            },
            new String[] {"--format", "gguf", "--gguf-type", "q4_0", "--asym", "--calib", calib},
            new String[] {
              "--format", "gguf", "--gguf-type", "q4_1", "--bits", "8", "--calib", calib
            },
            new String[] {"--format", "gguf", "--calib", calib},
            new String[] {"--format", "gguf", "--gguf-type", "f16", "--calib", calib},
            new String[] {"--gguf-type", "q4_0", "--calib", calib});
    for (String[] extra : refused) {
      List<String> args =
          new ArrayList<>(List.of("quantize", Cli.stories(), "--out", out.toString()));
      args.addAll(List.of(extra));
      Cli r = Cli.run(args.toArray(String[]::new));
      assertEquals(2, r.exitCode(), String.join(" ", extra) + ": " + r.err());
      assertTrue(r.err().startsWith("llmc: error: "), r.err());
      assertFalse(Files.exists(out));
    }
    Cli r = Cli.run("export", Cli.stories(), "--type", "q3_k", "--out", out.toString());
    assertEquals(2, r.exitCode(), r.err());
    assertTrue(r.err().contains("q4_0"), r.err());
    assertFalse(Files.exists(out));
  }
}
