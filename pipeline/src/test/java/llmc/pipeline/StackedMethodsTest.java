package llmc.pipeline;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import llmc.calibration.CompressedMatrix;
import llmc.calibration.LayerwisePipeline;
import llmc.calibration.StatisticsSource;
import llmc.formats.DType;
import llmc.formats.ModelFolder;
import llmc.model.Linear;
import llmc.model.LlamaFamily;
import llmc.model.OverlayWeights;
import llmc.model.Weights;
import llmc.prune.Masks;
import llmc.prune.Pruners;
import llmc.prune.SparsityPattern;
import llmc.quantize.GptqCompressor;
import llmc.quantize.QuantScheme;
import org.junit.jupiter.api.Test;

/**
 * Compressors read the layer's current weights: Wanda 2:4 then GPTQ 4-bit in one pass over
 * stories260K gives quantized matrices that are still 2:4 (GPTQ keeps the pruned zeros); and a
 * model held in memory compresses exactly as its mapped checkpoint does.
 */
class StackedMethodsTest {

  @Test
  void wanda24ThenGptqInOnePassKeepsEveryBlock24AndStoresCodes() {
    Path root = Path.of(System.getProperty("llmc.root"));
    try (ModelFolder input = ModelFolder.open(root.resolve("samples/models/stories260K"))) {
      LlamaFamily family = LlamaFamily.from(input.config());
      Calibration cut =
          Calibration.cut(
              input,
              family,
              CalibrationSettings.of(root.resolve("samples/data/tinystories/train.jsonl"))
                  .withNsamples(8)
                  .withSeqLen(128));
      OverlayWeights weights = new OverlayWeights(Weights.of(input.checkpoint()));
      List<CompressedMatrix> results = new ArrayList<>();
      List<int[]> shapes = new ArrayList<>();
      LayerwisePipeline.compress(
          family,
          weights,
          new StatisticsSource.Windows(cut.windows(), null),
          Pruners.wanda((layer, linear) -> true, new SparsityPattern.NofM(2, 4))
              .then(
                  new GptqCompressor(
                      (layer, linear) -> new QuantScheme(4, 32, false, DType.F16),
                      0.01,
                      128,
                      false,
                      false)),
          (layer, compressed) ->
              compressed.forEach(
                  (linear, c) -> {
                    results.add(c);
                    shapes.add(new int[] {linear.outFeatures(family), linear.inFeatures(family)});
                  }),
          (i, n) -> {});
      assertEquals(family.layers() * Linear.values().length, results.size());
      for (int k = 0; k < results.size(); k++) {
        CompressedMatrix c = results.get(k);
        assertNotNull(c.quantized());
        assertNotNull(c.gptqLoss());
        assertArrayEquals(c.quantized().dequantize(), c.weight());
        assertTrue(Masks.satisfies(c.weight(), shapes.get(k)[0], shapes.get(k)[1], 2, 4));
        assertTrue(Masks.sparsity(c.weight()) >= 0.5);
      }
    }
  }

  /** A model held in memory (any {@link Weights}) compresses as the mapped checkpoint does. */
  @Test
  void gptqOnAModelHeldInMemoryEqualsGptqOnTheMappedCheckpoint() {
    Path root = Path.of(System.getProperty("llmc.root"));
    try (ModelFolder input = ModelFolder.open(root.resolve("samples/models/stories260K"))) {
      LlamaFamily family = LlamaFamily.from(input.config());
      Calibration cut =
          Calibration.cut(
              input,
              family,
              CalibrationSettings.of(root.resolve("samples/data/tinystories/train.jsonl"))
                  .withNsamples(4)
                  .withSeqLen(64));
      Weights mapped = Weights.of(input.checkpoint());
      java.util.Map<String, float[]> tensors = new java.util.HashMap<>();
      input.checkpoint().names().forEach(name -> tensors.put(name, mapped.floats(name)));
      Weights inMemory =
          new Weights() {
            @Override
            public boolean contains(String name) {
              return tensors.containsKey(name);
            }

            @Override
            public long[] shape(String name) {
              return mapped.shape(name);
            }

            @Override
            public float[] floats(String name) {
              return tensors.get(name).clone();
            }
          };
      List<float[]> fromMapped = gptq(family, mapped, cut);
      List<float[]> fromMemory = gptq(family, inMemory, cut);
      assertEquals(family.layers() * Linear.values().length, fromMemory.size());
      for (int k = 0; k < fromMapped.size(); k++) {
        assertArrayEquals(fromMapped.get(k), fromMemory.get(k));
      }
    }
  }

  private static List<float[]> gptq(LlamaFamily family, Weights weights, Calibration cut) {
    List<float[]> results = new ArrayList<>();
    LayerwisePipeline.compress(
        family,
        new OverlayWeights(weights),
        new StatisticsSource.Windows(cut.windows(), null),
        new GptqCompressor(
            (layer, linear) -> new QuantScheme(4, 32, true, DType.F16), 0.01, 128, false, false),
        (layer, compressed) -> compressed.values().forEach(c -> results.add(c.weight())),
        (i, n) -> {});
    return results;
  }
}
