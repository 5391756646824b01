package llmc.pipeline;

import java.util.List;

/**
 * A P1 perplexity, and against a base model the KL divergence {@code KL(p_base || p)} and top-1
 * agreement (null without one), and the quality gates asked for (null without any).
 *
 * @param tokenizer the folder whose tokenizer read the data, or null for the model's own
 * @param streamTokens tokens in the whole data, of which the windows are the first
 * @param scoredTokens next-token predictions scored: {@code windows x (seqLen - 1)}
 * @param passed whether every gate passed, or null when no gate was set
 * @param gates each threshold set, in the order perplexity increase, mean KL, top-1 agreement, or
 *     null when none was set
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
    Boolean passed,
    List<QualityGate> gates,
    double seconds,
    double tokensPerSecond) {}
