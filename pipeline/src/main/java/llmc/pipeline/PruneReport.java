package llmc.pipeline;

import java.util.List;
import java.util.Map;

/**
 * What a pruning run did and what it cost; {@code llmc-report.json} is this without wall times.
 * Null parts are left out of the JSON.
 */
public record PruneReport(
    String command,
    String model,
    String out,
    String method,
    String pattern,
    Double p,
    Double dampPercent,
    Integer blockSize,
    List<String> ignore,
    Calibration.Report calibration,
    GradientsUsed gradients,
    Seconds seconds,
    Structure structured,
    List<Matrix> matrices,
    Sparsity sparsity,
    Size size,
    Comparison eval,
    MemoryPlan memory,
    List<String> warnings) {

  /** The backward pass of the gradient scores: mean loss, the gradients' bytes, batch. */
  public record GradientsUsed(double loss, long bytes, int batch, double seconds) {}

  /** Wall times: of the layer-sequential walk (Wanda, SparseGPT), and in all. */
  public record Seconds(Double forward, Double statistics, Double prune, double total) {}

  /** One pruned matrix. */
  public record Matrix(String name, double sparsity, double seconds) {}

  /** Zeros among the linear layers' weights. */
  public record Sparsity(double linear, long zeros, long weights) {}

  /** Structured pruning: the smaller shape, and what was removed. */
  public record Structure(
      String structure,
      Shape config,
      long parametersBefore,
      long parametersAfter,
      List<Integer> keptLayers,
      Map<String, List<Integer>> removed) {}

  /** The smaller model's config. */
  public record Shape(
      int numHiddenLayers,
      int intermediateSize,
      int numAttentionHeads,
      int numKeyValueHeads,
      int headDim) {}
}
