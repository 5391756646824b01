package llmc.cli;

import java.nio.file.Path;
import llmc.formats.BadInputException;
import llmc.pipeline.EvaluationSettings;
import picocli.CommandLine.Option;

/**
 * What every compressing command offers around its output folder: sharding and evaluation of the
 * result.
 */
final class OutputOptions {
  @Option(
      names = "--eval",
      paramLabel = "FILE",
      description = "Also measure P1 perplexity before and after (and KL) on this text.")
  Path eval;

  @Option(
      names = "--eval-max-windows",
      defaultValue = "0",
      paramLabel = "W",
      description = "With --eval: only the first W windows (default: all).")
  int evalMaxWindows;

  @Option(
      names = "--max-shard-size",
      paramLabel = "SIZE",
      description = "Split the safetensors output into shards of at most SIZE (default: 5GB).")
  String maxShardSize;

  @Option(
      names = "--work-dir",
      paramLabel = "DIR",
      description =
          "Where each finished layer is kept while the run goes, for --resume (default: OUT.work"
              + " beside --out; removed when the run succeeds).")
  Path workDir;

  @Option(
      names = "--resume",
      description =
          "Continue a killed run from the layers its work folder holds (same inputs and settings;"
              + " the output is the bytes of an uninterrupted run).")
  boolean resume;

  /** The evaluation asked for, or null. */
  EvaluationSettings evaluation() {
    return eval == null ? null : new EvaluationSettings(eval, evalMaxWindows);
  }

  /**
   * --max-shard-size in bytes (a number with GB, MB, KB or B: decimal units, as Hugging Face's), or
   * null when not given.
   */
  Long maxShardBytes() {
    return maxShardSize == null ? null : shardBytes(maxShardSize);
  }

  /** A --max-shard-size value in bytes: a number with GB, MB, KB or B (decimal units). */
  static long shardBytes(String size) {
    return bytes("--max-shard-size", size);
  }

  /** A size option's value in bytes: a number with GB, MB, KB or B (decimal units). */
  static long bytes(String flag, String size) {
    String s = size.trim().toUpperCase();
    long unit = 1;
    for (String[] u :
        new String[][] {{"GB", "1000000000"}, {"MB", "1000000"}, {"KB", "1000"}, {"B", "1"}}) {
      if (s.endsWith(u[0])) {
        unit = Long.parseLong(u[1]);
        s = s.substring(0, s.length() - u[0].length()).trim();
        break;
      }
    }
    try {
      double bytes = Double.parseDouble(s) * unit;
      if (!(bytes >= 1) || bytes > Long.MAX_VALUE) {
        throw new NumberFormatException();
      }
      return (long) bytes;
    } catch (NumberFormatException e) {
      throw new BadInputException(flag + " '" + size + "': use a size like 5GB or 500MB");
    }
  }
}
