package llmc.model;

import java.util.ArrayList;
import java.util.List;

/**
 * Greedy decoding with a KV cache: the prompt is run once, then one token per step; and greedy
 * speculative decoding, where a smaller draft model proposes tokens that the model verifies several
 * at a time, with the same output.
 */
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
    KvCache cache = new KvCache(runtime.family().layers());
    int[] step = prompt;
    int position = 0;
    while (generated.size() < maxTokens) {
      int token = choices(runtime, step, position, cache, 1)[0];
      position += step.length;
      if (token == stopId) {
        break;
      }
      generated.add(token);
      step = new int[] {token};
    }
    return generated;
  }

  /**
   * What greedy speculative decoding produced, and how well the draft guessed.
   *
   * @param tokens the new token ids: the same as {@link #greedy} of the target gives
   * @param proposed draft tokens proposed
   * @param accepted draft tokens the target agreed with
   * @param verificationSteps the target's forward passes (the first one also runs the prompt)
   */
  public record Speculation(
      List<Integer> tokens, int proposed, int accepted, int verificationSteps) {

    /** accepted / proposed; 0 when nothing was proposed. */
    public double acceptanceRate() {
      return proposed == 0 ? 0 : (double) accepted / proposed;
    }

    /** New tokens per forward pass of the target; 0 when there was none. */
    public double tokensPerVerificationStep() {
      return verificationSteps == 0 ? 0 : (double) tokens.size() / verificationSteps;
    }
  }

  /**
   * Greedy speculative decoding: the tokens {@link #greedy}{@code (target, ...)} gives, in fewer
   * forward passes of the target when the draft guesses well. Each step the draft (same vocabulary,
   * its own KV cache) proposes up to {@code draftTokens} tokens greedily; the target runs them in
   * one forward pass (with the tokens it has not run yet), keeps the longest prefix equal to its
   * own greedy choices, and appends its own next token: the correction at the first disagreement,
   * or a bonus token when all were accepted. Both caches are then cut back to what was accepted.
   * The output is the target's greedy output bit for bit: the runtime computes each row as it would
   * alone ({@link LlamaRuntime#decode}).
   *
   * @param prompt token ids (BOS included when the tokenizer asks for it); not empty
   * @param maxTokens how many new tokens at most
   * @param stopId end-of-sequence id (not included in the output), or -1
   * @param draftTokens tokens the draft proposes per step, at least 1
   */
  public static Speculation speculative(
      LlamaRuntime target,
      LlamaRuntime draft,
      int[] prompt,
      int maxTokens,
      int stopId,
      int draftTokens) {
    if (draft.family().vocab() != target.family().vocab()) {
      throw new IllegalArgumentException(
          "the draft has "
              + draft.family().vocab()
              + " tokens, the target "
              + target.family().vocab());
    }
    if (draftTokens < 1) {
      throw new IllegalArgumentException("draftTokens " + draftTokens + " < 1");
    }
    if (prompt.length == 0) {
      throw new IllegalArgumentException("empty prompt");
    }
    KvCache targetCache = new KvCache(target.family().layers());
    KvCache draftCache = new KvCache(draft.family().layers());
    // sequence: the prompt and the tokens committed so far. The target has run all but the last
    // of them (sequence[0, targetRan)), the draft sequence[0, draftRan).
    List<Integer> sequence = new ArrayList<>();
    for (int id : prompt) {
      sequence.add(id);
    }
    List<Integer> generated = new ArrayList<>();
    int targetRan = 0;
    int draftRan = 0;
    int proposed = 0;
    int accepted = 0;
    int steps = 0;
    boolean stopped = false;
    while (!stopped && generated.size() < maxTokens) {
      int length = sequence.size();
      // Proposing more than the tokens left after the target's own one would be wasted.
      int k = Math.min(draftTokens, maxTokens - generated.size() - 1);
      int[] proposal = new int[k];
      int made = 0;
      while (made < k) {
        int[] input = made == 0 ? ids(sequence, draftRan, length) : new int[] {proposal[made - 1]};
        int token = choices(draft, input, draftRan, draftCache, 1)[0];
        draftRan += input.length;
        proposal[made++] = token;
        if (token == stopId) {
          break; // nothing after the end of the sequence matters
        }
      }
      proposed += made;
      // One forward pass of the target over what it has not run and the proposal: its greedy
      // choice after sequence[0, length), then after each proposed token.
      int[] pending = ids(sequence, targetRan, length);
      int[] input = new int[pending.length + made];
      System.arraycopy(pending, 0, input, 0, pending.length);
      System.arraycopy(proposal, 0, input, pending.length, made);
      int[] choice = choices(target, input, targetRan, targetCache, made + 1);
      steps++;
      int agreed = 0;
      while (agreed < made && proposal[agreed] == choice[agreed]) {
        agreed++;
      }
      accepted += agreed;
      // Commit the agreed tokens and the target's next one, up to the end of the sequence.
      for (int i = 0; i <= agreed && !stopped; i++) {
        int token = i < agreed ? proposal[i] : choice[agreed];
        if (token == stopId) {
          stopped = true;
        } else {
          sequence.add(token);
          generated.add(token);
        }
      }
      // The target keeps sequence[0, length + agreed): every committed token but the last.
      targetRan = length + agreed;
      targetCache.truncate(targetRan);
      // The draft ran proposal[0, made - 1) after sequence[0, length); it keeps what was agreed.
      if (made > 0) {
        draftRan = length + Math.min(agreed, made - 1);
        draftCache.truncate(draftRan);
      }
    }
    return new Speculation(List.copyOf(generated), proposed, accepted, steps);
  }

  private static int[] ids(List<Integer> sequence, int from, int to) {
    int[] out = new int[to - from];
    for (int i = from; i < to; i++) {
      out[i - from] = sequence.get(i);
    }
    return out;
  }

  /**
   * Runs {@code tokens} at {@code start} with the cache and returns the greedy choice (the first
   * largest logit) after each of the last {@code last} of them.
   */
  private static int[] choices(
      LlamaRuntime runtime, int[] tokens, int start, KvCache cache, int last) {
    float[] x = runtime.decode(tokens, start, cache);
    float[] logits = runtime.logitsRows(x, tokens.length - last, last);
    int vocab = runtime.family().vocab();
    int[] out = new int[last];
    for (int r = 0; r < last; r++) {
      int best = 0;
      for (int v = 1; v < vocab; v++) {
        if (logits[r * vocab + v] > logits[r * vocab + best]) {
          best = v;
        }
      }
      out[r] = best;
    }
    return out;
  }
}
