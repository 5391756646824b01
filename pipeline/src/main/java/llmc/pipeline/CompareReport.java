package llmc.pipeline;

import java.util.List;

/**
 * Variants of one model side by side: size and quality, each measured as {@code inspect} and {@code
 * eval} measure them, on the same windows.
 *
 * @param base the original (its row has no KL or top-1), or null
 * @param models one row per variant, in the order given
 * @param chart the PNG of size against perplexity, or null
 */
public record CompareReport(
    String command,
    String data,
    String protocol,
    int seqLen,
    int windows,
    Row base,
    List<Row> models,
    String chart) {

  /**
   * One model.
   *
   * @param format {@code safetensors} or {@code gguf}
   * @param sizeBytes bytes on disk (every file of the folder)
   * @param bitsPerParameter stored bits per parameter, as {@code inspect} reports it
   * @param perplexityIncrease {@code ppl / base_ppl - 1}, with a base
   */
  public record Row(
      String model,
      String format,
      long sizeBytes,
      double bitsPerParameter,
      double perplexity,
      Double perplexityIncrease,
      Double meanKl,
      Double top1Agreement) {}
}
