package llmc.cli;

import java.nio.file.Path;
import java.util.List;
import java.util.regex.Pattern;
import llmc.prune.Compare;
import llmc.prune.SparsityPattern;
import llmc.prune.structured.Structured;

/** Everything `llmc prune` was asked to do, checked. */
record PruneOptions(
    Path model,
    Path out,
    boolean overwrite,
    Method method,
    SparsityPattern
        pattern, // unstructured (with its comparison group) or N:M; null when structured
    Structured.Structure structure, // null = unstructured / N:M
    double sparsity,
    int[] dropLayers, // --drop-layers, or null
    double p, // Lp norm
    Structured.GroupReduce taylorGroup,
    Runs.Calibration calibration, // null when the method needs none
    int gradBatch,
    double damp,
    int blockSize,
    List<Pattern> ignore,
    boolean bitmask, // --format sparse-24-bitmask
    Path eval,
    int evalMaxWindows,
    long maxShardBytes) {

  enum Method {
    MAGNITUDE,
    LP,
    SENSITIVITY,
    TAYLOR,
    WANDA,
    SPARSEGPT;

    boolean needsCalibration() {
      return this == SENSITIVITY || this == TAYLOR || this == WANDA || this == SPARSEGPT;
    }

    boolean needsGradients() {
      return this == SENSITIVITY || this == TAYLOR;
    }

    /**
     * The default comparison group of unstructured sparsity: per output row for Wanda, per matrix
     * otherwise.
     */
    Compare defaultCompare() {
      return this == WANDA ? Compare.ROW : Compare.MATRIX;
    }
  }

  /** True when a module (e.g. {@code model.layers.3.mlp.down_proj}) is left as it is. */
  boolean ignored(String module) {
    return ignore.stream().anyMatch(p -> p.matcher(module).find());
  }
}
