package llmc.pipeline;

/**
 * A P1 perplexity, and against a base model the KL divergence {@code KL(p_base || p)} and top-1
 * agreement (null without one).
 *
 * @param tokenizer the folder whose tokenizer read the data, or null for the model's own
 * @param streamTokens tokens in the whole data, of which the windows are the first
 * @param scoredTokens next-token predictions scored: {@code windows x (seqLen - 1)}
 * @param seconds the measured passes, without loading and warm-up
 */
public record EvalReport(
    String model,
    String tokenizer,
    String data,
    String protocol,
    int seqLen,
    int windows,
    int streamTokens,
    long scoredTokens,
    double meanNll,
    double perplexity,
    String base,
    Double basePerplexity,
    Double meanKl,
    Double top1Agreement,
    double seconds,
    double tokensPerSecond) {}
