package llmc.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import java.util.ArrayList;
import java.util.List;

/** Greedy decoding with a KV cache: the prompt is run once, then one token per step. */
public final class Generator {
  private Generator() {}

  /**
   * @param prompt token ids (BOS included when the tokenizer asks for it); not empty
   * @param maxTokens how many new tokens at most
   * @param stopId end-of-sequence id (not included in the output), or -1
   * @return the new token ids
   */
  public static List<Integer> greedy(
      LlamaRuntime runtime, int[] prompt, int maxTokens, int stopId) {
    List<Integer> generated = new ArrayList<>();
    LlamaFamily family = runtime.family();
    KvCache cache = new KvCache(family.layers());
    try (NDManager scope = runtime.manager().newSubManager()) {
      int[] step = prompt;
      int position = 0;
      while (generated.size() < maxTokens) {
        NDArray x = runtime.embed(scope, new int[][] {step});
        for (int i = 0; i < family.layers(); i++) {
          NDArray next = runtime.runLayer(runtime.layer(i), x, position, cache, CaptureHook.NONE);
          x.close();
          x = next;
        }
        NDArray last = x.get(":, -1:, :"); // [1, 1, H]
        NDArray logits = runtime.logits(last); // [1, 1, V]
        int token = (int) logits.argMax(-1).toLongArray()[0];
        logits.close();
        last.close();
        x.close();
        position += step.length;
        if (token == stopId) {
          break;
        }
        generated.add(token);
        step = new int[] {token};
      }
    }
    return generated;
  }
}
