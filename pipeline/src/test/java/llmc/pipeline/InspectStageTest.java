package llmc.pipeline;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.List;
import llmc.formats.InvalidSettingException;
import llmc.pipeline.InspectSettings.KvDtype;
import org.junit.jupiter.api.Test;

class InspectStageTest {
  /**
   * The activation outliers of stories260K over 16 windows of valid.jsonl: one entry per layer and
   * input in order, every width right, the count of features above a threshold falling as it rises
   * (all features at 0, none above the largest |x|).
   */
  @Test
  void activationOutliersOfEveryInput() {
    java.util.function.DoubleFunction<InspectReport> at =
        threshold ->
            new InspectStage()
                .run(
                    new InspectSettings(
                        EvalStageTest.STORIES,
                        false,
                        1,
                        null,
                        KvDtype.F16,
                        CalibrationSettings.of(EvalStageTest.VALID).withNsamples(16),
                        threshold));
    InspectReport r = at.apply(6.0);
    assertEquals(6.0, r.outlierThreshold());
    List<llmc.calibration.ActivationOutliers> all = r.activationOutliers();
    assertEquals(5 * 4, all.size());
    String[] inputs = {"attn_in", "attn_out", "mlp_in", "mlp_out"};
    int[] widths = {64, 64, 64, 172};
    for (int i = 0; i < all.size(); i++) {
      assertEquals(i / 4, all.get(i).layer());
      assertEquals(inputs[i % 4], all.get(i).input());
      assertEquals(widths[i % 4], all.get(i).features());
    }
    double largest = all.stream().mapToDouble(a -> a.maxAbs()).max().orElseThrow();
    int above6 = all.stream().mapToInt(a -> a.featuresAbove()).sum();
    int above3 = at.apply(3.0).activationOutliers().stream().mapToInt(a -> a.featuresAbove()).sum();
    org.junit.jupiter.api.Assertions.assertTrue(
        above6 > 0 && above3 > above6, above3 + " " + above6);
    assertEquals(
        0, at.apply(largest).activationOutliers().stream().mapToInt(a -> a.featuresAbove()).sum());
    assertEquals(
        5 * (64 * 3 + 172),
        at.apply(1e-30).activationOutliers().stream().mapToInt(a -> a.featuresAbove()).sum());
  }

  @Test
  void stories260kFolder() {
    InspectReport r =
        new InspectStage()
            .run(new InspectSettings(EvalStageTest.STORIES, true, 2, 512, KvDtype.F32));
    assertFalse(r.gguf());
    assertEquals("LlamaForCausalLM", r.architecture());
    assertEquals(260_032, r.parameters());
    assertEquals(64, r.shape().hiddenSize());
    assertEquals(2L * 5 * 4 * 8 * 4 * 2 * 512, r.memory().kvCacheBytes());
    assertEquals("f32", r.memory().kvDtype());
    assertEquals(0, r.sparsity().zeros());
    assertEquals(2 + 5 * 9, r.tensors().size());
    assertEquals(List.of(512L, 64L), r.tensors().getFirst().shape());
    assertNull(r.metadata());
    assertEquals(
        "{\"batch\":2,\"seq_len\":512,\"kv_dtype\":\"f32\",\"weights_bytes\":1040128,"
            + "\"kv_cache_bytes\":1310720,\"total_bytes\":2350848}",
        Reports.toJson(r).get("memory").toString());
  }

  @Test
  void kvDtypeNamesParse() {
    assertEquals(KvDtype.BF16, KvDtype.parse("BF16"));
    assertEquals(KvDtype.INT8, KvDtype.parse("int8"));
    assertEquals(KvDtype.FP8, KvDtype.parse("f8"));
    assertEquals(1, KvDtype.INT8.bytes());
    assertEquals(1, KvDtype.FP8.bytes());
    InvalidSettingException e =
        assertThrows(InvalidSettingException.class, () -> KvDtype.parse("f9"));
    assertEquals(List.of("kvDtype"), e.settings());
    assertEquals(
        List.of("batch"),
        assertThrows(
                InvalidSettingException.class,
                () -> new InspectSettings(EvalStageTest.STORIES, false, 0, null, null))
            .settings());
  }
}
