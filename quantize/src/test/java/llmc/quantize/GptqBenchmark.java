package llmc.quantize;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Random;

/**
 * Times the Hessian ({@code H = 2/n X^T X} of 2048 random rows) and GPTQ (4 bits, group 128,
 * asymmetric) per matrix shape, median of {@code --runs}, and prints them beside the PyTorch
 * baseline of bench/gptq_reference.py ({@code --reference FILE}, its JSON output) with ratios. Run
 * by bench/gptq-vs-pytorch.sh; threads: {@code -Dllmc.threads=T}.
 */
public final class GptqBenchmark {

  public static void main(String[] args) throws Exception {
    String shapes = "1536x576,4096x4096,11008x4096,4096x11008";
    int runs = 3;
    int samples = 2048;
    JsonNode reference = null;
    for (int i = 0; i < args.length; i++) {
      switch (args[i]) {
        case "--shapes" -> shapes = args[++i];
        case "--runs" -> runs = Integer.parseInt(args[++i]);
        case "--samples" -> samples = Integer.parseInt(args[++i]);
        case "--reference" ->
            reference = new ObjectMapper().readTree(Files.readString(Path.of(args[++i])));
        default -> throw new IllegalArgumentException("unknown argument " + args[i]);
      }
    }
    System.out.printf(
        "llmc GPTQ benchmark: %d threads, %d calibration rows, 4 bits, group 128%n",
        llmc.model.kernels.Parallel.threads(), samples);
    warmUp();
    StringBuilder table = new StringBuilder();
    table.append(
        String.format(
            "%-12s %10s %10s %7s   %10s %10s %7s   %7s%n",
            "shape", "H llmc", "H torch", "ratio", "GPTQ llmc", "GPTQ torch", "ratio", "total"));
    for (String shape : shapes.split(",")) {
      String[] p = shape.split("x");
      int rows = Integer.parseInt(p[0]);
      int cols = Integer.parseInt(p[1]);
      Random random = new Random(0);
      float[] x = new float[samples * cols];
      for (int i = 0; i < x.length; i++) {
        x[i] = (float) random.nextGaussian();
      }
      float[] w = new float[rows * cols];
      for (int i = 0; i < w.length; i++) {
        w[i] = (float) (0.02 * random.nextGaussian());
      }
      double[] hessianSeconds = new double[runs];
      double[] gptqSeconds = new double[runs];
      for (int run = 0; run < runs; run++) {
        long t0 = System.nanoTime();
        float[] h = Gptq.hessian(x, samples, cols);
        hessianSeconds[run] = (System.nanoTime() - t0) / 1e9;
        t0 = System.nanoTime();
        Gptq.Result r =
            Gptq.quantize(w, rows, cols, h, Gptq.Options.of(new QuantScheme(4, 128, false)));
        gptqSeconds[run] = (System.nanoTime() - t0) / 1e9;
        System.out.printf(
            "%s run %d: hessian %.3f s, gptq %.3f s, loss %.4g%n",
            shape, run, hessianSeconds[run], gptqSeconds[run], r.loss());
      }
      double hessian = median(hessianSeconds);
      double gptq = median(gptqSeconds);
      JsonNode ref = reference == null ? null : reference.path("shapes").path(shape);
      double refHessian =
          ref == null || ref.isMissingNode() ? Double.NaN : ref.get("hessian_s").asDouble();
      double refGptq =
          ref == null || ref.isMissingNode() ? Double.NaN : ref.get("gptq_s").asDouble();
      table.append(
          String.format(
              "%-12s %9.3fs %9.3fs %6.1fx   %9.3fs %9.3fs %6.1fx   %6.1fx%n",
              shape,
              hessian,
              refHessian,
              refHessian / hessian,
              gptq,
              refGptq,
              refGptq / gptq,
              (refHessian + refGptq) / (hessian + gptq)));
    }
    System.out.println();
    System.out.println("median seconds; ratio = PyTorch / llmc (higher is faster for llmc)");
    System.out.print(table);
  }

  /** Compiles the kernels before anything is timed. */
  private static void warmUp() {
    Random random = new Random(1);
    int cols = 512;
    float[] x = new float[1024 * cols];
    for (int i = 0; i < x.length; i++) {
      x[i] = (float) random.nextGaussian();
    }
    float[] w = Arrays.copyOf(x, 256 * cols);
    for (int i = 0; i < 3; i++) {
      Gptq.quantize(
          w,
          256,
          cols,
          Gptq.hessian(x, 1024, cols),
          Gptq.Options.of(new QuantScheme(4, 128, false)));
    }
  }

  private static double median(double[] values) {
    double[] sorted = values.clone();
    Arrays.sort(sorted);
    int n = sorted.length;
    return n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
  }
}
