package llmc.pipeline;

import java.util.List;
import java.util.Map;

/**
 * What a quantization run did and what it cost; {@code llmc-report.json} is this without wall
 * times. Null parts are left out of the JSON.
 */
public record QuantizeReport(
    String command,
    String model,
    String out,
    String method,
    String format,
    String checkpointFormat,
    String modelDtype,
    Scheme scheme,
    String ggufType,
    Map<String, Integer> tensorTypes,
    List<ExportReport.Fallback> fallbacks,
    Calibration.Report calibration,
    String savedStatistics,
    SparsityKept sparsity,
    Seconds seconds,
    List<Matrix> matrices,
    List<AwqScales> awq,
    Double outlierThreshold,
    List<llmc.calibration.ActivationOutliers> activationOutliers,
    BitBudget bitBudget,
    KvCache kvCache,
    Size size,
    Comparison eval,
    MemoryPlan memory,
    List<String> warnings) {

  /** The grid and the method's settings. */
  public record Scheme(
      int bits,
      int groupSize,
      boolean sym,
      String scaleDtype,
      Boolean actOrder,
      Boolean staticGroups,
      Double dampPercent,
      Integer blockSize,
      Boolean trueSequential,
      String clip,
      List<String> ignore,
      List<String> bitsFor,
      String vllmScheme,
      Double smoothquantAlpha) {}

  /**
   * One quantized matrix: RTN's weight error or GPTQ's loss and dampening; a pruned input's
   * sparsity before and after.
   */
  public record Matrix(
      String name,
      int bits,
      int groupSize,
      double seconds,
      Double weightMse,
      Double sparsityBefore,
      Double sparsityAfter,
      Double gptqLoss,
      Double damp,
      Boolean fellBackToRtn) {}

  /**
   * AWQ's search for one input of a layer: the exponent chosen and the output error of the matrices
   * reading it ({@code sum d H dᵀ} over the calibration tokens, {@code H = 2/n sum x xᵀ}), with it
   * and with plain round-to-nearest ({@code alpha = 0}).
   *
   * @param input attn_in (q, k, v), attn_out (o), mlp_in (gate, up) or mlp_out (down)
   */
  public record AwqScales(
      int layer, String input, double alpha, double outputError, double rtnOutputError) {}

  /**
   * An automatic bit budget: the bits chosen for every matrix under {@code targetBpw}, the
   * sensitivities they were chosen by (the calibration loss increase with only that matrix rounded
   * to nearest at each choice), and the loss increase the allocation predicts (their sum) and the
   * one measured on the written model (same windows).
   */
  public record BitBudget(
      double targetBpw,
      List<Integer> bitsChoices,
      double bitsPerWeight,
      double baselineLoss,
      double predictedLossIncrease,
      double measuredLossIncrease,
      List<Allocated> allocation) {

    /** One matrix: its bits and its sensitivity at each choice. */
    public record Allocated(String module, long weights, int bits, double[] sensitivity) {}

    static BitBudget of(QuantizeSettings asked, BitAllocation a, double measured) {
      List<Allocated> list = new java.util.ArrayList<>();
      for (int i = 0; i < a.modules().size(); i++) {
        list.add(new Allocated(a.modules().get(i), a.sizes()[i], a.bits()[i], a.sensitivity()[i]));
      }
      return new BitBudget(
          asked.targetBpw(),
          asked.bitsChoices(),
          a.bitsPerWeight(),
          a.baseline(),
          a.predictedIncrease(),
          measured,
          list);
    }
  }

  /**
   * The key/value cache's quantization: {@code fp8} (static, with the calibrated scale of every
   * layer's keys and values, {@code max|x| / 448}) or {@code int8} (dynamic, no scales).
   */
  public record KvCache(String type, float[] keyScales, float[] valueScales) {}

  /** A pruned input's zeros in the quantized matrices, and how many are still exactly 0. */
  public record SparsityKept(long inputZeros, long zerosKept, boolean survived) {}

  /** Wall times per phase. */
  public record Seconds(double forward, double statistics, double quantize, double total) {}
}
