package llmc.quantize;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Locale;
import java.util.Random;
import java.util.concurrent.CountDownLatch;
import java.util.function.IntToDoubleFunction;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;
import llmc.formats.QuantizedTensor;
import llmc.model.kernels.Gemm;
import llmc.model.kernels.Gram;
import llmc.model.kernels.Parallel;
import llmc.model.kernels.WeightMatrix;

/**
 * llmc's numerical kernels beside the machine's own limits and PyTorch's (bench/run.sh): the FMA
 * peak of a tight Vector-API loop and a STREAM-like copy bandwidth, measured here; the float32
 * matrix product and {@code XᵀX} of 2048-sized problems, the Cholesky factorization of a 4096
 * Hessian and GPTQ's whole inverse-Hessian factor ({@link InverseHessian#factor}) against the JSON
 * of bench/kernels_torch.py ({@code --reference FILE}); and two memory-bound kernels, RTN and GGUF
 * Q4_0 encoding, as GB/s against the copy bandwidth. Median of {@code --runs} after {@code
 * --warmup}; threads: {@code -Dllmc.threads=T}.
 */
public final class KernelBenchmark {
  private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;

  private KernelBenchmark() {}

  public static void main(String[] args) throws Exception {
    int runs = 5;
    int warmup = 2;
    JsonNode reference = null;
    Path secondsFile = null;
    for (int i = 0; i < args.length; i++) {
      switch (args[i]) {
        case "--seconds" -> secondsFile = Path.of(args[++i]);
        case "--runs" -> runs = Integer.parseInt(args[++i]);
        case "--warmup" -> warmup = Integer.parseInt(args[++i]);
        case "--reference" ->
            reference = new ObjectMapper().readTree(Files.readString(Path.of(args[++i])));
        default -> throw new IllegalArgumentException("unknown argument " + args[i]);
      }
    }
    int threads = Parallel.threads();
    double peak = fmaPeakGflops(threads);
    double copy = copyGigabytesPerSecond(threads);
    System.out.printf(
        Locale.ROOT,
        "machine: %d threads, %d-bit vectors; FMA peak %.0f GFLOPS, copy %.1f GB/s (read + write)%n",
        threads,
        S.vectorBitSize(),
        peak,
        copy);
    if (reference != null) {
      System.out.printf(
          Locale.ROOT,
          "baseline: PyTorch %s, %s (OpenBLAS kernel %s), matmul probe %.0f GFLOPS%n",
          reference.path("torch").asText(),
          reference.path("blas").asText(),
          reference.path("openblas_core").asText("-"),
          reference.path("probe_gflops").asDouble());
    }
    System.out.printf(
        Locale.ROOT,
        "%-34s %10s %10s %8s %8s %8s%n",
        "kernel",
        "llmc s",
        "torch s",
        "speed",
        "GFLOPS",
        "of peak");
    Random random = new Random(0);

    int n = 2048;
    float[] a = gaussian(random, n * n);
    float[] b = gaussian(random, n * n);
    float[] c = new float[n * n];
    double gemm =
        median(
            runs,
            warmup,
            r -> {
              Arrays.fill(c, 0f);
              long t0 = System.nanoTime();
              Gemm.parallelMultiplyAdd(1f, a, 0, n, 1, b, 0, n, c, 0, n, n, n, n);
              return (System.nanoTime() - t0) / 1e9;
            });
    row("matrix product 2048³", gemm, reference, "gemm_2048", 2.0 * n * n * n, peak);

    // A linear layer y = x Wᵀ, 512 tokens through a 4096 x 4096 weight, read in the form a layer
    // keeps it (BF16 as stored, 4-bit codes once quantized), against PyTorch's float32 linear.
    int tokens = 512;
    int width = 4096;
    float[] lx = gaussian(random, tokens * width);
    float[] lw = gaussian(random, width * width);
    short[] bf16 = new short[lw.length];
    byte[] codes = new byte[lw.length];
    for (int i = 0; i < lw.length; i++) {
      bf16[i] = (short) (Float.floatToRawIntBits(lw[i]) >>> 16);
      codes[i] = (byte) random.nextInt(16);
    }
    int groups = width / 128;
    float[] scales = new float[groups * width];
    Arrays.fill(scales, 0.01f);
    int[] gIdx = new int[width];
    for (int k = 0; k < width; k++) {
      gIdx[k] = k / 128;
    }
    WeightMatrix[] forms = {
      new WeightMatrix.F32(lw, width, width),
      new WeightMatrix.Bf16(bf16, width, width),
      new WeightMatrix.Codes(
          new QuantizedTensor(
              width,
              width,
              4,
              128,
              true,
              codes,
              scales,
              new int[groups * width],
              gIdx,
              llmc.formats.DType.F16))
    };
    String[] names = {
      "linear 512x4096², float32 rows", "  the same, BF16 rows", "  the same, 4-bit codes"
    };
    float[] ly = new float[tokens * width];
    for (int f = 0; f < forms.length; f++) {
      WeightMatrix w = forms[f];
      double linear =
          median(
              runs,
              warmup,
              r -> {
                Arrays.fill(ly, 0f);
                long t0 = System.nanoTime();
                Gemm.parallelMultiplyAdd(1f, lx, 0, width, 1, w, ly, 0, width, tokens);
                return (System.nanoTime() - t0) / 1e9;
              });
      row(names[f], linear, reference, "linear_512x4096x4096", 2.0 * tokens * width * width, peak);
    }

    float[] s = new float[n * n];
    double xtx =
        median(
            runs,
            warmup,
            r -> {
              Arrays.fill(s, 0f);
              long t0 = System.nanoTime();
              Gram.addUpper(a, 0, n, n, s);
              return (System.nanoTime() - t0) / 1e9;
            });
    // GFLOPS of the full product's count, though only the upper triangle is computed
    row("XᵀX 2048 x 2048 (upper triangle)", xtx, reference, "xtx_2048", 2.0 * n * n * n, peak);

    int m = 4096;
    float[] xs = gaussian(random, 2 * m * m);
    float[] h = new float[m * m];
    Gram.addUpper(xs, 0, 2 * m, m, h);
    Gram.mirrorUpper(h, m);
    for (int i = 0; i < h.length; i++) {
      h[i] /= 2 * m;
    }
    for (int i = 0; i < m; i++) {
      h[i * m + i] += 1f;
    }
    float[] work = new float[m * m];
    double cholesky =
        median(
            runs,
            warmup,
            r -> {
              System.arraycopy(h, 0, work, 0, h.length);
              long t0 = System.nanoTime();
              if (!Cholesky.factorInPlace(work, m)) {
                throw new AssertionError("not positive definite");
              }
              return (System.nanoTime() - t0) / 1e9;
            });
    row("Cholesky 4096", cholesky, reference, "cholesky_4096", m * (double) m * m / 3, peak);
    double inverse =
        median(
            runs,
            warmup,
            r -> {
              System.arraycopy(h, 0, work, 0, h.length);
              long t0 = System.nanoTime();
              if (InverseHessian.factor(work, m, 0.0).upper() == null) {
                throw new AssertionError("not positive definite");
              }
              return (System.nanoTime() - t0) / 1e9;
            });
    // PyTorch's chain is three factorizations of n^3/3 each; llmc's is one and an inverse
    row(
        "GPTQ inverse factor 4096",
        inverse,
        reference,
        "gptq_inverse_4096",
        2 * m * (double) m * m / 3,
        peak);

    // GPTQ's column loop after the inverse: per block of 128 columns, each column quantized (4-bit,
    // group 128, asymmetric, groups fitted as they are reached) and its error spread over the
    // block's later columns, then the lazy update of the columns after the block. Every weight is
    // updated once by each earlier column: rows * cols^2 / 2 FMAs.
    float[] hinv = InverseHessian.factor(h.clone(), m, 0.01).upper();
    float[] loopWeights = gaussian(random, m * m);
    float[] loopWork = new float[m * m];
    Gptq.Options loopOptions = Gptq.Options.of(new QuantScheme(4, 128, false));
    int loopGroups = m / 128;
    int[] identity = java.util.stream.IntStream.range(0, m).toArray();
    double loop =
        median(
            runs,
            warmup,
            r -> {
              System.arraycopy(loopWeights, 0, loopWork, 0, loopWork.length);
              long t0 = System.nanoTime();
              Gptq.process(
                  loopWork,
                  m,
                  m,
                  hinv,
                  loopOptions,
                  128,
                  new float[loopGroups * m],
                  new int[loopGroups * m],
                  null,
                  null,
                  identity,
                  new byte[m * m],
                  new double[m]);
              return (System.nanoTime() - t0) / 1e9;
            });
    row("GPTQ column loop 4096² g128", loop, reference, "gptq_loop_4096", (double) m * m * m, peak);

    // Memory-bound kernels: round-to-nearest of a 4096 x 4096 float32 matrix (4-bit, group 128,
    // asymmetric: codes, scales, zeros) and llama.cpp's Q4_0 block encoding of the same values
    // (scale and two nibbles per byte, written into the block layout). GB/s of float32 input; of
    // copy = that against the copy bandwidth above (read + write), the bound for one pass.
    System.out.printf(
        Locale.ROOT,
        "%-34s %10s %10s %8s %8s %8s%n",
        "kernel (4096², float32 in)",
        "llmc s",
        "torch s",
        "speed",
        "GB/s in",
        "of copy");
    float[] weights = gaussian(random, m * m);
    QuantScheme rtn4 = new QuantScheme(4, 128, false, llmc.formats.DType.F16);
    double rtn =
        median(
            runs,
            warmup,
            r -> {
              long t0 = System.nanoTime();
              Rtn.quantize(weights, m, m, rtn4, Rtn.Clip.NONE);
              return (System.nanoTime() - t0) / 1e9;
            });
    bandwidthRow("RTN 4-bit g128 asym", rtn, reference, "rtn_4096", 4.0 * m * m, copy);
    // The codes of that matrix packed into int32 words as compressed-tensors stores them (8 per
    // word), GB/s of the float32 input they came from; then the whole of a weight's way to disk:
    // RTN, packing, and writing the safetensors file (scales, zero points, header) to the page
    // cache.
    QuantizedTensor rtnCodes = Rtn.quantize(weights, m, m, rtn4, Rtn.Clip.NONE);
    double pack =
        median(
            runs,
            warmup,
            r -> {
              long t0 = System.nanoTime();
              llmc.formats.quant.CompressedTensorsLayout.packedWeights(rtnCodes, "w");
              return (System.nanoTime() - t0) / 1e9;
            });
    bandwidthRow("pack 4-bit codes, int32 words", pack, reference, "pack_4096", 4.0 * m * m, copy);
    Path folder = Files.createTempDirectory("llmc-bench-write");
    double write =
        median(
            runs,
            warmup,
            r -> {
              Path out = folder.resolve("run" + r);
              long t0 = System.nanoTime();
              try {
                Files.createDirectories(out);
                try (llmc.formats.SafetensorsWriter writer =
                    new llmc.formats.SafetensorsWriter(out, 0, null)) {
                  QuantizedTensor q = Rtn.quantize(weights, m, m, rtn4, Rtn.Clip.NONE);
                  llmc.formats.quant.CompressedTensorsLayout.write(
                      writer, "layer", q, llmc.formats.DType.F16, new java.util.ArrayList<>());
                  writer.finish();
                }
                double seconds = (System.nanoTime() - t0) / 1e9;
                llmc.formats.FileTrees.deleteRecursively(out);
                return seconds;
              } catch (java.io.IOException e) {
                throw new java.io.UncheckedIOException(e);
              }
            });
    Files.deleteIfExists(folder);
    bandwidthRow(
        "RTN + pack + write safetensors", write, reference, "rtn_write_4096", 4.0 * m * m, copy);
    java.lang.foreign.MemorySegment blocks =
        java.lang.foreign.MemorySegment.ofArray(
            new byte[m * m / 32 * 18]); // Q4_0: 18 bytes per 32 weights
    double q40 =
        median(
            runs,
            warmup + 10, // the vector code compiles late: its first call takes 15 times longer
            r -> {
              long t0 = System.nanoTime();
              // in parallel ranges of whole blocks, as GgufWriter encodes an export's chunks
              int parts = Parallel.threads();
              int allBlocks = m * m / 32;
              int perPart = (allBlocks + parts - 1) / parts;
              Parallel.forEach(
                  parts,
                  part -> {
                    int first = part * perPart;
                    int count = Math.min(perPart, allBlocks - first);
                    llmc.formats.gguf.GgmlBlocks.encode(
                        llmc.formats.gguf.GgmlType.Q4_0,
                        weights,
                        first * 32,
                        count * 32,
                        blocks.asSlice((long) first * 18, (long) count * 18));
                  });
              return (System.nanoTime() - t0) / 1e9;
            });
    bandwidthRow("GGUF Q4_0 encode", q40, reference, "q4_0_4096", 4.0 * m * m, copy);
    System.out.println(
        "speed = torch s / llmc s (above 1: llmc faster); of peak = GFLOPS / the FMA peak above");
    if (secondsFile != null) { // {row: seconds}, for bench/run.sh's speed-up from 1 thread
      Files.writeString(secondsFile, new ObjectMapper().writeValueAsString(SECONDS));
    }
  }

  /** Each row's median seconds, in table order. */
  private static final java.util.Map<String, Double> SECONDS = new java.util.LinkedHashMap<>();

  private static void row(
      String name, double seconds, JsonNode reference, String key, double flops, double peak) {
    double gflops = flops / seconds / 1e9;
    row(name, seconds, reference, key, String.format(Locale.ROOT, "%8.0f", gflops), gflops / peak);
  }

  private static void bandwidthRow(
      String name, double seconds, JsonNode reference, String key, double bytes, double copy) {
    double gbs = bytes / seconds / 1e9;
    row(name, seconds, reference, key, String.format(Locale.ROOT, "%8.1f", gbs), gbs / copy);
  }

  /** name, seconds, PyTorch's seconds and the ratio, a rate and its fraction of the bound. */
  private static void row(
      String name, double seconds, JsonNode reference, String key, String rate, double ofBound) {
    SECONDS.put(name.strip(), seconds);
    double torch =
        reference == null || !reference.path("kernels").has(key)
            ? Double.NaN
            : reference.path("kernels").path(key).asDouble();
    System.out.printf(
        Locale.ROOT,
        "%-34s %10.4f %10s %8s %s %7.0f%%%n",
        name,
        seconds,
        Double.isNaN(torch) ? "-" : String.format(Locale.ROOT, "%.4f", torch),
        Double.isNaN(torch) ? "-" : String.format(Locale.ROOT, "%.2fx", torch / seconds),
        rate,
        100 * ofBound);
  }

  private static double median(int runs, int warmup, IntToDoubleFunction run) {
    for (int i = 0; i < warmup; i++) {
      run.applyAsDouble(-1);
    }
    double[] seconds = new double[runs];
    for (int i = 0; i < runs; i++) {
      seconds[i] = run.applyAsDouble(i);
    }
    Arrays.sort(seconds);
    return seconds[runs / 2];
  }

  private static float[] gaussian(Random random, int count) {
    float[] x = new float[count];
    for (int i = 0; i < x.length; i++) {
      x[i] = (float) random.nextGaussian();
    }
    return x;
  }

  /**
   * The FMA peak: every thread runs 12 independent vector accumulators through fused multiply-adds
   * (enough to cover the FMA latency of two units), nothing read from memory. Best of 5 rounds.
   */
  static double fmaPeakGflops(int threads) throws InterruptedException {
    long iterations = 20_000_000;
    double best = 0;
    for (int round = 0; round < 5; round++) {
      float[] sink = new float[threads];
      CountDownLatch start = new CountDownLatch(1);
      Thread[] workers = new Thread[threads];
      for (int t = 0; t < threads; t++) {
        int id = t;
        workers[t] =
            new Thread(
                () -> {
                  try {
                    start.await();
                  } catch (InterruptedException e) {
                    return;
                  }
                  sink[id] = fmaLoop(iterations, id);
                });
        workers[t].start();
      }
      long t0 = System.nanoTime();
      start.countDown();
      for (Thread w : workers) {
        w.join();
      }
      double seconds = (System.nanoTime() - t0) / 1e9;
      double flops = 2.0 * 12 * S.length() * iterations * threads;
      best = Math.max(best, flops / seconds / 1e9);
    }
    return best;
  }

  private static float fmaLoop(long iterations, int seed) {
    FloatVector x = FloatVector.broadcast(S, 0.999999f);
    FloatVector y = FloatVector.broadcast(S, 1e-7f * (seed + 1));
    FloatVector a0 = FloatVector.broadcast(S, 1f);
    FloatVector a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0;
    FloatVector a6 = a0, a7 = a0, a8 = a0, a9 = a0, a10 = a0, a11 = a0;
    for (long i = 0; i < iterations; i++) {
      a0 = a0.fma(x, y);
      a1 = a1.fma(x, y);
      a2 = a2.fma(x, y);
      a3 = a3.fma(x, y);
      a4 = a4.fma(x, y);
      a5 = a5.fma(x, y);
      a6 = a6.fma(x, y);
      a7 = a7.fma(x, y);
      a8 = a8.fma(x, y);
      a9 = a9.fma(x, y);
      a10 = a10.fma(x, y);
      a11 = a11.fma(x, y);
    }
    return a0.add(a1)
        .add(a2)
        .add(a3)
        .add(a4)
        .add(a5)
        .add(a6)
        .add(a7)
        .add(a8)
        .add(a9)
        .add(a10)
        .add(a11)
        .reduceLanes(jdk.incubator.vector.VectorOperators.ADD);
  }

  /**
   * STREAM's Copy: {@code b[i] = a[i]} over two 256 MB arrays, split across the threads; bytes read
   * plus bytes written per second. Best of 5 rounds.
   */
  static double copyGigabytesPerSecond(int threads) {
    int count = 64 << 20;
    float[] a = new float[count];
    float[] b = new float[count];
    Arrays.fill(a, 1f);
    Arrays.fill(b, 0f);
    double best = 0;
    int chunk = count / threads;
    for (int round = 0; round < 5; round++) {
      long t0 = System.nanoTime();
      Parallel.forEach(
          threads,
          t -> {
            int from = t * chunk;
            int to = t == threads - 1 ? count : from + chunk;
            System.arraycopy(a, from, b, from, to - from);
          });
      double seconds = (System.nanoTime() - t0) / 1e9;
      best = Math.max(best, 2.0 * 4 * count / seconds / 1e9);
    }
    return best;
  }
}
