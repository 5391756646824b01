package llmc.pipeline;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.ref.WeakReference;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import llmc.calibration.CompressedMatrix;
import llmc.calibration.InputStatistics;
import llmc.calibration.LayerwisePipeline;
import llmc.calibration.MatrixCompressor;
import llmc.calibration.StatisticsSource;
import llmc.formats.ModelFolder;
import llmc.model.Linear;
import llmc.model.LlamaFamily;
import llmc.model.OverlayWeights;
import llmc.model.Weights;
import llmc.prune.Compare;
import llmc.prune.Pruners;
import llmc.prune.SparsityPattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * SparseGPT over stories260K with what {@code --max-memory} may put on disk: each layer's finished
 * matrices while {@code down_proj}'s input is accumulated and compressed (what a 70B-class layer
 * needs in 6 GB), and the calibration activations of every window, one window in memory at a time.
 * Each gives the same matrices, bit for bit and in the same order, as a run in memory; matrices
 * aside cannot be read and are let go; no file is left behind.
 */
class SpillTest {

  @Test
  void spilledFinishedMatricesComeBackBitForBit(@TempDir Path tmp) throws Exception {
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
      Path work = tmp.resolve("work");
      List<String> asideWhileDown = new ArrayList<>();
      Map<String, CompressedMatrix> inMemory = prune(input, family, cut, true, null, null);
      var matrices = new StatisticsSource.Spill(work, true, false);
      var activations = new StatisticsSource.Spill(work, false, true);
      var both = new StatisticsSource.Spill(work, true, true);
      Map<String, Map<String, CompressedMatrix>> runs = new LinkedHashMap<>();
      runs.put("matrices on disk", prune(input, family, cut, true, matrices, asideWhileDown));
      runs.put(
          "activations on disk, recomputed", prune(input, family, cut, false, activations, null));
      runs.put("activations on disk, kept", prune(input, family, cut, true, activations, null));
      runs.put("both on disk", prune(input, family, cut, true, both, null));
      assertEquals(family.layers() * Linear.values().length, inMemory.size());
      for (var run : runs.entrySet()) {
        Map<String, CompressedMatrix> spilled = run.getValue();
        assertEquals(List.copyOf(inMemory.keySet()), List.copyOf(spilled.keySet()), run.getKey());
        for (String name : inMemory.keySet()) {
          assertArrayEquals(
              inMemory.get(name).weight(), spilled.get(name).weight(), run.getKey() + ": " + name);
        }
      }
      // while down_proj was compressed, the six matrices before it were on disk, not readable
      assertEquals(family.layers() * 6, asideWhileDown.size(), asideWhileDown.toString());
      assertFalse(Files.exists(work), "the spill files are unlinked, the folder they made removed");
    }
  }

  /**
   * SparseGPT 50% over the model, with {@code spill}; {@code aside} (given with finished matrices
   * on disk) collects the matrices that could not be read while down_proj was compressed.
   */
  private static Map<String, CompressedMatrix> prune(
      ModelFolder input,
      LlamaFamily family,
      Calibration cut,
      boolean keepActivations,
      StatisticsSource.Spill spill,
      List<String> aside) {
    OverlayWeights weights = new OverlayWeights(Weights.of(input.checkpoint()));
    MatrixCompressor sparseGpt =
        Pruners.sparseGpt(
            (layer, linear) -> true,
            new SparsityPattern.Unstructured(0.5, Compare.MATRIX),
            0.01,
            32);
    Map<String, WeakReference<float[]>> made = new java.util.HashMap<>();
    MatrixCompressor watched =
        new MatrixCompressor() {
          @Override
          public boolean compresses(int layer, Linear linear) {
            return true;
          }

          @Override
          public boolean needsStatistics() {
            return true;
          }

          @Override
          public CompressedMatrix compress(
              int layer, Linear linear, float[] w, int rows, int cols, InputStatistics stats) {
            if (aside != null && linear == Linear.DOWN) {
              System.gc(); // the values of the six matrices on disk are let go, not only hidden
              for (Linear before : Linear.values()) {
                if (before != Linear.DOWN) {
                  String name = before.weightName(layer);
                  assertThrows(IllegalStateException.class, () -> weights.matrix(name));
                  assertTrue(made.get(name).get() == null, name + " is still held");
                  aside.add(name);
                }
              }
            }
            CompressedMatrix c = sparseGpt.compress(layer, linear, w, rows, cols, stats);
            made.put(linear.weightName(layer), new WeakReference<>(c.weight()));
            return c;
          }
        };
    Map<String, CompressedMatrix> out = new LinkedHashMap<>();
    LayerwisePipeline.compress(
        family,
        weights,
        new StatisticsSource.Windows(cut.windows(), null, keepActivations, spill),
        watched,
        (layer, compressed) ->
            compressed.forEach((linear, c) -> out.put(linear.weightName(layer), c)),
        (i, n) -> {});
    return out;
  }

  @Test
  void spillingNeedsKeptActivations(@TempDir Path tmp) {
    assertThrows(
        IllegalArgumentException.class,
        () ->
            new StatisticsSource.Windows(
                List.of(new int[] {1}), null, false, new StatisticsSource.Spill(tmp, true, false)));
    assertTrue(Files.isDirectory(tmp));
  }
}
