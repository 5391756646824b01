package llmc.calibration;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import llmc.formats.DType;
import llmc.formats.QuantizedTensor;
import llmc.formats.SafetensorsFile;
import llmc.model.Linear;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A finished layer read back from the journal is what was put in, bit for bit. */
class LayerJournalTest {
  @TempDir Path dir;

  private static QuantizedTensor quantized(int rows, int cols) {
    byte[] codes = new byte[rows * cols];
    for (int i = 0; i < codes.length; i++) {
      codes[i] = (byte) (i * 7 % 16);
    }
    float[] scales = new float[rows];
    int[] zeros = new int[rows];
    for (int n = 0; n < rows; n++) {
      scales[n] = 0.125f * (n + 1);
      zeros[n] = 8;
    }
    return new QuantizedTensor(
        rows, cols, 4, -1, true, codes, scales, zeros, new int[cols], DType.F16, null);
  }

  @Test
  void quantizedMatricesKeepOnlyTheirCodesAndComeBackAsTheyWere() {
    QuantizedTensor q = quantized(6, 10);
    float[] pruned = {0f, 1.5f, 0f, -2f, 0.25f, 0f};
    float[] notTheCodes = q.dequantize();
    notTheCodes[3] += 1f; // values that are not the codes' (kept as they are)
    Map<Linear, CompressedMatrix> layer = new LinkedHashMap<>();
    layer.put(Linear.Q, new CompressedMatrix(q.dequantize(), q, 1.0, 2.0, null, 0.01, false, null));
    layer.put(Linear.K, new CompressedMatrix(notTheCodes, q, 1.0, null, 0.5, null, false, "w"));
    layer.put(Linear.V, CompressedMatrix.values(pruned, 0.5, null));
    Path work = dir.resolve("work");
    LayerJournal journal = LayerJournal.open(work, "key", false);
    journal.layerDone(0, layer, List.of(new float[] {1f, 2f}));

    LayerJournal resumed = LayerJournal.open(work, "key", true);
    assertEquals(1, resumed.layersDone());
    Map<Linear, CompressedMatrix> back = resumed.layer(0);
    assertEquals(List.copyOf(layer.keySet()), List.copyOf(back.keySet()));
    for (Linear linear : layer.keySet()) {
      CompressedMatrix a = layer.get(linear);
      CompressedMatrix b = back.get(linear);
      assertArrayEquals(a.weight(), b.weight(), linear.name());
      assertEquals(a.gptqLoss(), b.gptqLoss());
      assertEquals(a.weightMse(), b.weightMse());
      assertEquals(a.warning(), b.warning());
      if (a.quantized() != null) {
        assertArrayEquals(a.quantized().codes(), b.quantized().codes());
        assertArrayEquals(a.quantized().scales(), b.quantized().scales());
      }
    }
    assertArrayEquals(new float[] {1f, 2f}, resumed.activations().get(0));
    try (SafetensorsFile f = SafetensorsFile.open(work.resolve("layer-00000/model.safetensors"))) {
      assertFalse(f.contains("Q.weight"), "the codes say it");
      assertTrue(f.contains("K.weight"));
      assertTrue(f.contains("V.weight"));
    }
  }

  /** Killed right after its first saved piece: the folder is a journal a resume accepts. */
  @Test
  void theFirstThingSavedMakesAJournalThatResumes() {
    Path work = dir.resolve("early");
    LayerJournal journal = LayerJournal.open(work, "key", false);
    journal.saveTensors("gradients", Map.of("loss", "1.5"), Map.of("g", new float[] {1f, -2f}));
    LayerJournal resumed = LayerJournal.open(work, "key", true);
    assertEquals(0, resumed.layersDone());
    assertArrayEquals(
        new float[] {1f, -2f}, resumed.tensors("gradients").orElseThrow().tensors().get("g"));
    assertEquals("1.5", resumed.tensors("gradients").orElseThrow().metadata().get("loss"));
  }
}
