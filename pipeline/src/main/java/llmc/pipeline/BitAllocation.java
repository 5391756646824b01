package llmc.pipeline;

import java.util.ArrayList;
import java.util.List;
import java.util.function.BiFunction;
import llmc.model.CaptureHook;
import llmc.model.DecoderLayer;
import llmc.model.Linear;
import llmc.model.LlamaFamily;
import llmc.model.LlamaRuntime;
import llmc.model.Weights;
import llmc.model.kernels.WeightMatrix;
import llmc.quantize.BitBudget;
import llmc.quantize.QuantScheme;
import llmc.quantize.Rtn;

/**
 * An automatic bit budget ({@code --target-bpw}): each matrix's sensitivity at each choice of bits
 * is the increase of the calibration loss (mean next-token NLL over the calibration windows) when
 * that matrix alone is rounded to nearest at those bits; {@link BitBudget} then picks the bits of
 * every matrix that minimise the summed sensitivity under the budget. The model's layers are kept
 * in memory and each layer's input is kept for every window, so a matrix's trial runs from its own
 * layer on: {@code 7 x choices} trials per layer, each through the layers after it. That is meant
 * for small models (stories260K: a few minutes with 128 windows); for large ones it is slow.
 *
 * @param modules the matrices, {@code model.layers.i.<path>}
 * @param sizes their weights
 * @param choices the bits to choose from
 * @param sensitivity {@code [module][choice]}: the loss increase
 * @param baseline the calibration loss of the model as given
 * @param bits the chosen bits per module
 */
record BitAllocation(
    List<String> modules,
    long[] sizes,
    int[] choices,
    double[][] sensitivity,
    double baseline,
    int[] bits) {

  /** Code bits per weight of the allocation (scales not counted). */
  double bitsPerWeight() {
    double bitsSum = 0;
    long total = 0;
    for (int i = 0; i < sizes.length; i++) {
      bitsSum += (double) sizes[i] * bits[i];
      total += sizes[i];
    }
    return bitsSum / total;
  }

  /** The summed sensitivity of the chosen bits: the loss increase the allocation predicts. */
  double predictedIncrease() {
    double sum = 0;
    for (int i = 0; i < bits.length; i++) {
      for (int c = 0; c < choices.length; c++) {
        if (choices[c] == bits[i]) {
          sum += sensitivity[i][c];
        }
      }
    }
    return sum;
  }

  /**
   * Measures every sensitivity and allocates.
   *
   * @param compresses whether a matrix is quantized at all (the others are left out)
   * @param schemeOf the grid at some bits (group size and symmetry of the run)
   */
  static BitAllocation measure(
      LlamaFamily family,
      Weights weights,
      List<int[]> windows,
      int[] choices,
      double targetBpw,
      BiFunction<Integer, Linear, Boolean> compresses,
      java.util.function.IntFunction<QuantScheme> schemeOf,
      Progress progress) {
    int rows = windows.get(0).length;
    List<String> modules = new ArrayList<>();
    List<Long> sizes = new ArrayList<>();
    List<double[]> costs = new ArrayList<>();
    try (LlamaRuntime runtime = new LlamaRuntime(family, weights, true)) {
      runtime.preload();
      if (!runtime.keepsAllLayers()) {
        throw new llmc.formats.InvalidSettingException(
            "{targetBpw}: the sensitivity pass keeps the whole model in memory, and this one does"
                + " not fit in the heap; give the bits yourself ({bitsFor})");
      }
      // inputs[l][j]: layer l's input for window j, from the model as given
      float[][][] inputs = new float[family.layers() + 1][windows.size()][];
      for (int j = 0; j < windows.size(); j++) {
        inputs[0][j] = runtime.embedRows(new int[][] {windows.get(j)});
      }
      for (int l = 0; l < family.layers(); l++) {
        DecoderLayer layer = runtime.layer(l);
        for (int j = 0; j < windows.size(); j++) {
          inputs[l + 1][j] =
              runtime.runLayer(layer, inputs[l][j], 1, rows, 0, null, CaptureHook.NONE);
        }
      }
      double baseline = loss(runtime, inputs[family.layers()], windows);
      int trials = 0;
      int allTrials = family.layers() * Linear.values().length * choices.length;
      for (int l = 0; l < family.layers(); l++) {
        DecoderLayer layer = runtime.layer(l);
        for (Linear linear : Linear.values()) {
          if (!compresses.apply(l, linear)) {
            continue;
          }
          String name = linear.weightName(l);
          float[] w = weights.floats(name);
          WeightMatrix original = weights.matrix(name);
          double[] cost = new double[choices.length];
          for (int c = 0; c < choices.length; c++) {
            progress.update("bit budget: sensitivity", ++trials, allTrials);
            var q =
                Rtn.quantize(
                    w,
                    linear.outFeatures(family),
                    linear.inFeatures(family),
                    schemeOf.apply(choices[c]),
                    Rtn.Clip.NONE);
            layer.replace(linear, new WeightMatrix.Codes(q));
            float[][] xs = inputs[l].clone();
            for (int k = l; k < family.layers(); k++) {
              DecoderLayer run = runtime.layer(k);
              for (int j = 0; j < xs.length; j++) {
                xs[j] = runtime.runLayer(run, xs[j], 1, rows, 0, null, CaptureHook.NONE);
              }
            }
            cost[c] = loss(runtime, xs, windows) - baseline;
          }
          layer.replace(linear, original);
          modules.add(linear.moduleName(l));
          sizes.add((long) linear.outFeatures(family) * linear.inFeatures(family));
          costs.add(cost);
        }
      }
      long[] n = sizes.stream().mapToLong(Long::longValue).toArray();
      double[][] cost = costs.toArray(double[][]::new);
      int[] picked = BitBudget.allocate(n, choices, cost, targetBpw);
      int[] bits = new int[picked.length];
      for (int i = 0; i < bits.length; i++) {
        bits[i] = choices[picked[i]];
      }
      return new BitAllocation(modules, n, choices, cost, baseline, bits);
    }
  }

  /** Mean next-token NLL of the windows from the last layer's outputs {@code xs[j] [T][H]}. */
  static double loss(LlamaRuntime runtime, float[][] xs, List<int[]> windows) {
    int vocab = runtime.family().vocab();
    double sum = 0;
    long scored = 0;
    for (int j = 0; j < xs.length; j++) {
      int[] tokens = windows.get(j);
      int t = tokens.length;
      float[] logits = runtime.logitsRows(xs[j], 0, t - 1); // [T-1][V]
      for (int p = 0; p < t - 1; p++) {
        int from = p * vocab;
        float max = Float.NEGATIVE_INFINITY;
        for (int v = 0; v < vocab; v++) {
          max = Math.max(max, logits[from + v]);
        }
        double z = 0;
        for (int v = 0; v < vocab; v++) {
          z += Math.exp(logits[from + v] - max);
        }
        sum += Math.log(z) + max - logits[from + tokens[p + 1]];
        scored++;
      }
    }
    return sum / scored;
  }

  /** The calibration loss of a model. */
  static double loss(LlamaFamily family, Weights weights, List<int[]> windows) {
    int rows = windows.get(0).length;
    try (LlamaRuntime runtime = new LlamaRuntime(family, weights, false)) {
      float[][] xs = new float[windows.size()][];
      for (int j = 0; j < xs.length; j++) {
        xs[j] = runtime.embedRows(new int[][] {windows.get(j)});
      }
      for (int l = 0; l < family.layers(); l++) {
        try (DecoderLayer layer = runtime.layer(l)) {
          for (int j = 0; j < xs.length; j++) {
            xs[j] = runtime.runLayer(layer, xs[j], 1, rows, 0, null, CaptureHook.NONE);
          }
        }
      }
      return loss(runtime, xs, windows);
    }
  }
}
