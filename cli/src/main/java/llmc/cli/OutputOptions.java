package llmc.cli;

import java.nio.file.Path;
import llmc.formats.BadInputException;
import picocli.CommandLine.Option;

/**
 * What every compressing command offers around its output folder: sharding and evaluation of the
 * result.
 */
final class OutputOptions {
  static final String DEFAULT_SHARD_SIZE = "5GB";

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
      defaultValue = DEFAULT_SHARD_SIZE,
      paramLabel = "SIZE",
      description =
          "Split the safetensors output into shards of at most SIZE (default: ${DEFAULT-VALUE}).")
  String maxShardSize;

  /** True when --max-shard-size asks for something other than the default. */
  boolean shardSizeGiven() {
    return !maxShardSize.equals(DEFAULT_SHARD_SIZE);
  }

  /**
   * --max-shard-size in bytes: a number with GB, MB, KB or B (decimal units, as Hugging Face's).
   */
  long maxShardBytes() {
    String s = maxShardSize.trim().toUpperCase();
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
      return (long) (Double.parseDouble(s) * unit);
    } catch (NumberFormatException e) {
      throw new BadInputException(
          "--max-shard-size '" + maxShardSize + "': use a size like 5GB or 500MB");
    }
  }
}
