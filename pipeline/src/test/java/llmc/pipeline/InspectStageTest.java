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
    assertEquals(KvDtype.FP8, KvDtype.parse("int8"));
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
