package llmc.prune;

import java.util.Arrays;
import java.util.Random;
import llmc.calibration.InputStatistics;
import llmc.quantize.Gptq;
import llmc.quantize.QuantScheme;

/**
 * Times SparseGPT (unstructured 50% and 2:4) beside GPTQ (4 bits, group 128) on the same matrix and
 * Hessian ({@code 2048} random calibration rows), median of {@code --runs}. Not a unit test; run
 * with the test class path, e.g. {@code java -cp ... llmc.prune.SparseGptBenchmark --shapes
 * 4096x4096}; threads: {@code -Dllmc.threads=T}.
 */
public final class SparseGptBenchmark {

  public static void main(String[] args) {
    String shapes = "1536x576,4096x4096,11008x4096,4096x11008";
    int runs = 3;
    int samples = 2048;
    for (int i = 0; i < args.length; i++) {
      switch (args[i]) {
        case "--shapes" -> shapes = args[++i];
        case "--runs" -> runs = Integer.parseInt(args[++i]);
        case "--samples" -> samples = Integer.parseInt(args[++i]);
        default -> throw new IllegalArgumentException("unknown argument " + args[i]);
      }
    }
    System.out.printf(
        "%d threads, %d calibration rows, %s%n",
        llmc.model.kernels.Parallel.threads(), samples, Runtime.version());
    run(256, 512, 256, 3); // warm-up: compiles the kernels
    System.out.printf(
        "%-12s %10s %12s %12s %8s %8s%n",
        "shape", "GPTQ", "SparseGPT50%", "SparseGPT2:4", "ratio", "ratio");
    for (String shape : shapes.split(",")) {
      String[] p = shape.split("x");
      double[] t = run(Integer.parseInt(p[0]), Integer.parseInt(p[1]), samples, runs);
      System.out.printf(
          "%-12s %9.3fs %11.3fs %11.3fs %7.2fx %7.2fx%n",
          shape, t[0], t[1], t[2], t[1] / t[0], t[2] / t[0]);
    }
    System.out.println("median seconds; ratio = SparseGPT / GPTQ (below 1: SparseGPT faster)");
  }

  /** Median seconds of GPTQ, SparseGPT 50% and SparseGPT 2:4 on a {@code rows x cols} matrix. */
  static double[] run(int rows, int cols, int samples, int runs) {
    Random random = new Random(0);
    float[] x = new float[samples * cols];
    for (int i = 0; i < x.length; i++) {
      x[i] = (float) random.nextGaussian();
    }
    InputStatistics stats = new InputStatistics(cols);
    stats.add(x, samples);
    float[] h = stats.hessian();
    float[] w = new float[rows * cols];
    for (int i = 0; i < w.length; i++) {
      w[i] = (float) (0.02 * random.nextGaussian());
    }
    double[][] seconds = new double[3][runs];
    for (int run = 0; run < runs; run++) {
      seconds[0][run] =
          Gptq.quantize(w, rows, cols, h, Gptq.Options.of(new QuantScheme(4, 128, false)))
              .seconds();
      seconds[1][run] =
          SparseGpt.prune(
                  w,
                  rows,
                  cols,
                  h,
                  new SparsityPattern.Unstructured(0.5, Compare.MATRIX),
                  0.01,
                  128)
              .seconds();
      seconds[2][run] =
          SparseGpt.prune(w, rows, cols, h, new SparsityPattern.NofM(2, 4), 0.01, 128).seconds();
    }
    double[] medians = new double[3];
    for (int k = 0; k < 3; k++) {
      Arrays.sort(seconds[k]);
      medians[k] = seconds[k][runs / 2];
    }
    return medians;
  }
}
