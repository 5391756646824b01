package llmc.pipeline;

import java.util.ArrayList;
import java.util.List;
import llmc.formats.DType;
import llmc.formats.Floats;
import llmc.formats.SafetensorsWriter;
import llmc.formats.quant.KvCacheQuantization;
import llmc.model.DecoderLayer;
import llmc.model.LlamaFamily;
import llmc.model.LlamaRuntime;
import llmc.model.TensorNames;
import llmc.model.Weights;

/**
 * The static FP8 scales of a key/value cache, one per layer for the keys (after RoPE) and one for
 * the values: {@code scale = max |k| / 448} over the calibration windows, so that the largest key
 * is E4M3's largest value (vLLM's FP8 KV cache, llm-compressor's kv_cache_scheme with a min-max
 * observer). Measured on the model as it is given, one layer at a time.
 *
 * @param keyScales {@code [layers]}
 * @param valueScales {@code [layers]}
 */
record KvCacheScales(float[] keyScales, float[] valueScales) {

  /** Runs {@code windows} through the model and takes every layer's largest |k| and |v|. */
  static KvCacheScales measure(
      LlamaFamily family, Weights weights, List<int[]> windows, Progress progress) {
    float[] kMax = new float[family.layers()];
    float[] vMax = new float[family.layers()];
    try (LlamaRuntime runtime = new LlamaRuntime(family, weights, false)) {
      runtime.observeKeysValues(
          (layer, k, v, rows) -> {
            int n = rows * family.kvWidth();
            for (int i = 0; i < n; i++) {
              kMax[layer] = Math.max(kMax[layer], Math.abs(k[i]));
              vMax[layer] = Math.max(vMax[layer], Math.abs(v[i]));
            }
          });
      List<float[]> xs = new ArrayList<>();
      for (int[] window : windows) {
        xs.add(runtime.embedRows(new int[][] {window}));
      }
      for (int i = 0; i < family.layers(); i++) {
        progress.update("kv cache scales: layer", i + 1, family.layers());
        try (DecoderLayer layer = runtime.layer(i)) {
          for (int j = 0; j < xs.size(); j++) {
            xs.set(
                j,
                runtime.runLayer(
                    layer,
                    xs.get(j),
                    1,
                    windows.get(j).length,
                    0,
                    null,
                    llmc.model.CaptureHook.NONE));
          }
        }
      }
    }
    float[] ks = new float[kMax.length];
    float[] vs = new float[vMax.length];
    for (int i = 0; i < ks.length; i++) {
      ks[i] = kMax[i] == 0 ? 1f : kMax[i] / Floats.E4M3_MAX;
      vs[i] = vMax[i] == 0 ? 1f : vMax[i] / Floats.E4M3_MAX;
    }
    return new KvCacheScales(ks, vs);
  }

  /** Writes {@code model.layers.i.self_attn.k_scale} and {@code v_scale}, float32 {@code [1]}. */
  void write(SafetensorsWriter out) {
    for (int i = 0; i < keyScales.length; i++) {
      out.writeFloats(
          TensorNames.layer(i) + KvCacheQuantization.KEY_SCALE,
          DType.F32,
          new long[] {1},
          new float[] {keyScales[i]});
      out.writeFloats(
          TensorNames.layer(i) + KvCacheQuantization.VALUE_SCALE,
          DType.F32,
          new long[] {1},
          new float[] {valueScales[i]});
    }
  }
}
