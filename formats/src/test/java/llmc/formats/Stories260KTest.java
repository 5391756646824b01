package llmc.formats;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The shared tiny Llama (Karpathy's stories260K converted to Hugging Face layout). */
class Stories260KTest {

  private static Path folder() {
    Path dir = Path.of(System.getProperty("llmc.shared", "../shared"), "models", "stories260K");
    Assumptions.assumeTrue(Files.isDirectory(dir), "no " + dir);
    return dir;
  }

  @Test
  void checkpointHas260032ParametersWithTiedEmbeddings() {
    try (ModelFolder model = ModelFolder.open(folder())) {
      Checkpoint checkpoint = model.checkpoint();
      TensorInfo embed = checkpoint.info("model.embed_tokens.weight");
      assertEquals(DType.F32, embed.dtype());
      assertArrayEquals(new long[] {512, 64}, embed.shape());
      long parameters =
          checkpoint.names().stream().mapToLong(n -> checkpoint.info(n).numel()).sum();
      assertEquals(260032, parameters);
      assertEquals(
          47, checkpoint.names().size()); // 5 layers * (7 linears + 2 norms) + embed + norm
      assertFalse(checkpoint.contains("lm_head.weight"));
      float[] embedding = checkpoint.floats("model.embed_tokens.weight");
      assertEquals(512 * 64, embedding.length);
      assertTrue(Float.isFinite(embedding[0]));
    }
  }

  @Test
  void configReadsTheTinyLlamaShape() {
    try (ModelFolder model = ModelFolder.open(folder())) {
      ModelConfig config = model.config();
      assertEquals(64, config.hiddenSize());
      assertEquals(5, config.numHiddenLayers());
      assertEquals(8, config.numAttentionHeads());
      assertEquals(4, config.numKeyValueHeads());
      assertEquals(8, config.headDim());
      assertEquals(512, config.vocabSize());
      assertEquals(172, config.intermediateSize());
      assertTrue(config.tieWordEmbeddings());
      assertEquals(1e-5, config.rmsNormEps());
      assertEquals(1, config.bosTokenId());
      assertEquals(2, config.eosTokenId());
    }
  }

  @Test
  void auxiliaryFilesCopyVerbatim(@TempDir Path out) throws IOException {
    try (ModelFolder model = ModelFolder.open(folder())) {
      assertTrue(model.tokenizerJson().isPresent());
      assertTrue(model.addBosToken());
      assertEquals(
          List.of(
              "generation_config.json",
              "tokenizer.json",
              "tokenizer_config.json",
              "special_tokens_map.json",
              "tokenizer.model"),
          model.auxiliaryFiles().stream().map(p -> p.getFileName().toString()).toList());
      model.copyAuxiliaryFilesTo(out);
      for (Path file : model.auxiliaryFiles()) {
        Path copy = out.resolve(file.getFileName());
        assertEquals(TestFiles.sha256(file), TestFiles.sha256(copy));
        assertTrue(Files.isWritable(copy));
      }
    }
  }

  @Test
  void folderWithoutConfigIsRejected(@TempDir Path empty) {
    TestFiles.assertBadInput(() -> ModelFolder.open(empty), empty.toString(), "config.json");
    TestFiles.assertBadInput(() -> ModelFolder.open(empty.resolve("nope")), "nope", "not a folder");
  }
}
