package llmc.pipeline;

import java.util.List;
import java.util.Map;

/** What an export wrote: the file's tensor types, fallbacks, tokenizer and sizes. */
public record ExportReport(
    String command,
    String model,
    String out,
    String format,
    String type,
    String rounding,
    String tokenizer,
    int vocab,
    int tensors,
    Map<String, Integer> tensorTypes,
    List<Fallback> fallbacks,
    Size size,
    List<String> warnings,
    double seconds) {

  /** A tensor stored in another type than the file's, and why. */
  public record Fallback(String name, String type, String reason) {}
}
