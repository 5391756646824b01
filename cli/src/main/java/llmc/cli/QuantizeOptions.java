package llmc.cli;

import java.nio.file.Path;
import java.util.List;
import java.util.regex.Pattern;
import llmc.formats.gguf.GgmlType;

/** Everything `llmc quantize` was asked to do, checked. */
record QuantizeOptions(
    Path model,
    Path out,
    boolean overwrite,
    Method method,
    int bits,
    int groupSize,
    boolean symmetric,
    boolean actOrder,
    boolean staticGroups,
    double damp,
    int blockSize,
    boolean clipMse,
    Runs.Calibration calibration,
    Format format,
    boolean checkpointV2,
    List<Pattern> ignore,
    List<BitsOverride> bitsFor,
    Path eval,
    int evalMaxWindows,
    long maxShardBytes,
    Path saveStats,
    Path stats,
    GgmlType ggufType) {

  enum Method {
    GPTQ,
    RTN
  }

  /** The output layout; GGUF is one file whose linear layers are blocks of {@code ggufType}. */
  enum Format {
    GPTQ,
    COMPRESSED_TENSORS,
    DENSE,
    GGUF
  }

  /** {@code --bits-for REGEX=BITS}: matrices whose module name matches get other bits. */
  record BitsOverride(Pattern pattern, int bits) {}

  /**
   * Bits for a module (e.g. {@code model.layers.3.mlp.down_proj}), or null when it is left as it
   * is.
   */
  Integer bitsOf(String module) {
    for (Pattern p : ignore) {
      if (p.matcher(module).find()) {
        return null;
      }
    }
    Integer chosen = bits;
    for (BitsOverride o : bitsFor) {
      if (o.pattern().matcher(module).find()) {
        chosen = o.bits();
      }
    }
    return chosen;
  }
}
