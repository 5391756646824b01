package llmc.cli;

import java.io.PrintWriter;
import java.util.List;
import llmc.pipeline.Comparison;

/** Lines every compressing command's text summary ends with. */
final class Summaries {
  private Summaries() {}

  /** The quality measured with --eval, then every warning. */
  static void qualityAndWarnings(PrintWriter out, Comparison eval, List<String> warnings) {
    if (eval != null) {
      out.printf(
          "quality   perplexity %.4f -> %.4f (P1, %d windows of %d), mean KL %.5f, top-1 agreement"
              + " %.2f%%%n",
          eval.perplexityBefore(),
          eval.perplexityAfter(),
          eval.windows(),
          eval.seqLen(),
          eval.meanKl(),
          100 * eval.top1Agreement());
    }
    for (String w : warnings) {
      out.println("warning   " + w);
    }
  }
}
