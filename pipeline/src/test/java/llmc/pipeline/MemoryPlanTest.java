package llmc.pipeline;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.file.Path;
import llmc.calibration.StatisticsSource;
import llmc.formats.InvalidSettingException;
import llmc.formats.Json;
import llmc.formats.ModelConfig;
import llmc.model.LlamaFamily;
import org.junit.jupiter.api.Test;

/**
 * The memory plan of a layer of the Llama-70B shape (hidden 8192, intermediate 28672, 64 and 8
 * heads), BF16, GPTQ 4-bit g128 over 8 windows of 512 tokens: what docs/scaling.md measures.
 */
class MemoryPlanTest {
  private static final long GB = 1_000_000_000L;

  private static LlamaFamily llama70bShape(int layers) {
    ObjectNode c = Json.mapper().createObjectNode();
    c.putArray("architectures").add("LlamaForCausalLM");
    c.put("hidden_size", 8192);
    c.put("intermediate_size", 28672);
    c.put("num_attention_heads", 64);
    c.put("num_key_value_heads", 8);
    c.put("num_hidden_layers", layers);
    c.put("vocab_size", 32000);
    c.put("max_position_embeddings", 4096);
    c.put("rms_norm_eps", 1e-5);
    c.put("rope_theta", 500000.0);
    c.put("tie_word_embeddings", false);
    return LlamaFamily.from(ModelConfig.fromJson(c, "config.json"));
  }

  private static MemoryPlan gptq(LlamaFamily f, long limit) {
    return MemoryPlan.of(
        f, MemoryPlan.Work.GPTQ, 2, (layer, linear) -> true, true, 8, 512, 128, limit);
  }

  @Test
  void gptqPeaksAtDownProjWithItsHessianAndTheOtherMatricesAsCodes() {
    MemoryPlan plan = gptq(llama70bShape(6), 6 * GB);
    assertEquals("layer 0, compressing mlp.down_proj", plan.peakAt());
    assertEquals(plan.peak(), plan.parts().stream().mapToLong(MemoryPlan.Part::bytes).sum());
    long hessian = 4L * 28672 * 28672; // 3.29 GB, made in the statistics' memory: once
    assertTrue(plan.parts().stream().anyMatch(p -> p.bytes() == hessian));
    // q, k, v, o, gate and up as codes: one byte per weight, plus scales and zeros per 128
    long others = 2L * 8192 * 8192 + 2L * 1024 * 8192 + 2L * 28672 * 8192;
    long held = others + 8 * others / 128 + 4L * (3 * 8192 + 8192 + 2 * 8192);
    assertEquals(held, plan.parts().get(0).bytes());
    long down = 5L * 8192 * 28672; // float32 copy, worked in place, and the codes
    assertTrue(plan.parts().stream().anyMatch(p -> p.bytes() == down));
    assertTrue(plan.fits());
    assertFalse(plan.keepsMlpActivations(), "470 MB of kept activations do not fit 6 GB");
    assertTrue(gptq(llama70bShape(6), 8 * GB).keepsMlpActivations());
    // every layer is alike: the peak does not grow with the number of layers
    assertEquals(plan.peak(), gptq(llama70bShape(1), 6 * GB).peak());
  }

  @Test
  void aBudgetBelowThePeakIsRefusedNamingTheLeastThatWould() {
    MemoryPlan plan = gptq(llama70bShape(1), 4 * GB);
    assertFalse(plan.fits());
    InvalidSettingException e =
        assertThrows(InvalidSettingException.class, () -> plan.check(Long.MAX_VALUE));
    assertTrue(e.getMessage().contains("compressing mlp.down_proj"), e.getMessage());
    assertTrue(
        e.getMessage().contains("give maxMemoryBytes " + MemoryPlan.gigabytes(plan.peak())),
        e.getMessage());
    MemoryPlan fits = gptq(llama70bShape(1), 6 * GB);
    InvalidSettingException heap =
        assertThrows(InvalidSettingException.class, () -> fits.check(1L << 30));
    assertTrue(heap.getMessage().contains("-Xmx"), heap.getMessage());
  }

  @Test
  void rtnHoldsNoLayerNoStatisticsNoActivations() {
    LlamaFamily f = llama70bShape(1);
    MemoryPlan plan =
        MemoryPlan.of(f, MemoryPlan.Work.RTN, 2, (layer, linear) -> true, false, 0, 0, 128, 6 * GB);
    // the peak is the layer written: all seven matrices as codes, the largest as float32
    assertEquals("layer 0, writing it", plan.peakAt());
    long weights = 2L * 8192 * 8192 + 2L * 1024 * 8192 + 3L * 28672 * 8192;
    long codes = weights + 8 * weights / 128 + 4L * (4 * 8192 + 2 * 8192 + 28672);
    long arrays = codes + 4L * 28672 * 8192;
    assertEquals(
        MemoryPlan.process(arrays + arrays * MemoryPlan.HEADROOM_PERCENT / 100),
        plan.peak(),
        "codes + largest, with the heap's headroom");
  }

  @Test
  void sparseGptSpillsFinishedMatricesAroundDownProjOnlyWhenNothingElseFits() {
    LlamaFamily f = llama70bShape(6);
    MemoryPlan plan =
        MemoryPlan.of(
            f, MemoryPlan.Work.SPARSEGPT, 2, (layer, linear) -> true, true, 8, 512, -1, 6 * GB);
    assertTrue(plan.fits(), plan.toString());
    assertTrue(plan.spillsFinishedMatrices());
    assertTrue(plan.keepsMlpActivations(), "the spill computes down's input before its Hessian");
    assertEquals("layer 0, compressing mlp.down_proj", plan.peakAt());
    // the six finished matrices (2.48 GB of float32) are on disk, not in the peak
    assertEquals(0, plan.parts().get(0).bytes(), plan.parts().get(0).what());
    assertTrue(plan.parts().get(0).what().contains("2.48 GB compressed on disk"));
    long arrays = 4L * 28672 * 28672 + 5L * 8192 * 28672 + 4L * 8 * 512 * (8192 + 28672);
    assertEquals(
        MemoryPlan.process(arrays + arrays * MemoryPlan.HEADROOM_PERCENT / 100), plan.peak());
    // with room to spare, nothing goes to disk
    MemoryPlan roomy =
        MemoryPlan.of(
            f, MemoryPlan.Work.SPARSEGPT, 2, (layer, linear) -> true, true, 8, 512, -1, 9 * GB);
    assertFalse(roomy.spillsFinishedMatrices());
    assertTrue(roomy.fits());
    // too little for any way: the refusal names the least of them (the spill's peak)
    MemoryPlan tight =
        MemoryPlan.of(
            f, MemoryPlan.Work.SPARSEGPT, 2, (layer, linear) -> true, true, 8, 512, -1, 4 * GB);
    assertFalse(tight.fits());
    assertTrue(tight.activationsOnDisk() && tight.spillsFinishedMatrices(), tight.toString());
    assertTrue(tight.peak() < plan.peak());
    // quantized matrices are kept as codes: GPTQ never spills
    assertFalse(gptq(f, 4 * GB).spillsFinishedMatrices());
  }

  @Test
  void calibrationTooLargeForMemoryWaitsOnDiskOneWindowAtATime() {
    LlamaFamily f = llama70bShape(1);
    // 128 windows of 2048 tokens: the layer's input alone is 8.6 GB, the heads as much again
    MemoryPlan plan =
        MemoryPlan.of(
            f, MemoryPlan.Work.GPTQ, 2, (layer, linear) -> true, true, 128, 2048, 128, 7 * GB);
    assertTrue(plan.fits(), plan.toString());
    assertTrue(plan.activationsOnDisk());
    assertFalse(plan.keepsMlpActivations());
    assertEquals(new StatisticsSource.Spill(Path.of("w"), false, true), plan.spill(Path.of("w")));
    long window = 4L * 2048 * (2 * 8192 + 8192) + 4L * 2048 * 28672;
    assertEquals(
        window,
        plan.parts().stream()
            .filter(p -> p.what().contains("activations"))
            .mapToLong(MemoryPlan.Part::bytes)
            .sum(),
        plan.parts().toString());
    // 8 windows of 512 fit in memory: nothing on disk
    assertEquals(null, gptq(f, 6 * GB).spill(Path.of("w")));
  }

  @Test
  void theHeapLeavesG1ItsShareAndTheRestOutside() {
    // what ./llmc gives -Xmx for --max-memory 6GB: (6e9 - 256 MiB) / 1.03
    assertEquals(5306, MemoryPlan.heapFor(6 * GB) >> 20);
    long heap = MemoryPlan.heapFor(6 * GB);
    assertTrue(MemoryPlan.process(heap) <= 6 * GB);
    assertTrue(MemoryPlan.process(heap + 1_000_000) > 6 * GB);
  }

  @Test
  void gigabytesRoundUpToATenth() {
    assertEquals("6.1GB", MemoryPlan.gigabytes(6_010_000_000L));
    assertEquals("6.0GB", MemoryPlan.gigabytes(6_000_000_000L));
  }
}
