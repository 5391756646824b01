package llmc.calibration;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import java.util.ArrayList;
import java.util.List;
import llmc.model.DecoderLayer;
import llmc.model.LlamaFamily;
import llmc.model.LlamaRuntime;
import llmc.model.Linear;

/**
 * The layer-sequential walk every calibration-based method shares (GPTQ, SparseGPT, Wanda, ...).
 * One decoder layer at a time: the calibration activations go through the layer in its four
 * stages; after each stage the statistics of the activation that stage produced go to the
 * compressor, which replaces the weights of the linear layers reading it; the next stage then runs
 * on the compressed weights ("true sequential": (q, k, v) -> o -> (gate, up) -> down). The layer's
 * output becomes the next layer's input. Memory: one layer's weights plus the activations.
 */
public final class LayerwisePipeline {

  /** Compresses the linear layers that read one activation, given its statistics. */
  public interface Compressor {
    /**
     * @param layer   the layer, whose weights the compressor replaces ({@link DecoderLayer#replace})
     * @param input   which activation
     * @param linears the linear layers reading it, in order
     * @param stats   the activation's statistics over all calibration tokens
     */
    void compress(DecoderLayer layer, Linear.Input input, List<Linear> linears, InputStatistics stats);

    /** Called when layer {@code index} is complete (all its groups compressed). */
    default void layerDone(DecoderLayer layer) { }
  }

  /** Seconds spent running layers, accumulating statistics and compressing. */
  public record Timings(double forwardSeconds, double statisticsSeconds, double compressSeconds) {}

  /** Told the index of each layer as it starts. */
  public interface Progress {
    void layer(int index, int layers);
  }

  /** Up to this many bytes of MLP activations are kept between the statistics and the layer's output. */
  static final long KEPT_ACTIVATION_BYTES = 1L << 30;

  private LayerwisePipeline() {}

  /**
   * @param runtime a runtime that does not keep its layers (each layer is loaded, compressed, closed)
   * @param windows calibration windows, C1
   */
  public static Timings run(LlamaRuntime runtime, List<int[]> windows, Compressor compressor, Progress progress) {
    return run(runtime, windows, compressor, progress, null);
  }

  /**
   * As {@link #run(LlamaRuntime, List, Compressor, Progress)}; with {@code save}, also the statistics
   * of the uncompressed model (a second activation stream through the original layers) are saved.
   */
  public static Timings run(LlamaRuntime runtime, List<int[]> windows, Compressor compressor, Progress progress,
      StatisticsStore.Writer save) {
    LlamaFamily family = runtime.family();
    Clock clock = new Clock();
    try (NDManager activations = runtime.manager().newSubManager()) {
      List<NDArray> xs = new ArrayList<>(windows.size());       // per window [1, L, H]: the layer's input
      List<NDArray> original = new ArrayList<>();                // the same through the uncompressed layers
      clock.start();
      for (int[] window : windows) {
        xs.add(runtime.embed(activations, new int[][] {window}));
        if (save != null) {
          original.add(runtime.embed(activations, new int[][] {window}));
        }
      }
      clock.stopForward();
      for (int i = 0; i < family.layers(); i++) {
        progress.layer(i, family.layers());
        try (DecoderLayer layer = runtime.layer(i)) {
          if (save != null) {
            clock.start();
            saveUncompressed(runtime, layer, original, save);
            clock.stopStatistics();
          }
          // (q, k, v) read RMSNorm(x).
          statistics(runtime, clock, compressor, layer, Linear.Input.ATTN_IN, xs, x -> runtime.attentionInput(layer, x));
          // o reads the merged heads; keep them to build the residual once o is compressed.
          List<NDArray> merged = new ArrayList<>(xs.size());
          statistics(runtime, clock, compressor, layer, Linear.Input.ATTN_OUT, xs, x -> {
            NDArray m = runtime.attentionOutput(layer, x);
            merged.add(m);
            return m;
          }, false);
          List<NDArray> residuals = new ArrayList<>(xs.size());
          clock.start();
          for (int w = 0; w < xs.size(); w++) {
            residuals.add(runtime.afterAttention(layer, xs.get(w), merged.get(w)));
            xs.get(w).close();
            merged.get(w).close();
          }
          clock.stopForward();
          // gate and up read RMSNorm(residual); down reads silu(gate) * up, kept when it fits the
          // activation budget (else computed again once down is compressed).
          statistics(runtime, clock, compressor, layer, Linear.Input.MLP_IN, residuals, r -> runtime.mlpInput(layer, r));
          long actBytes = 4L * family.intermediate() * windows.size() * windows.get(0).length;
          List<NDArray> acts = actBytes <= KEPT_ACTIVATION_BYTES ? new ArrayList<>(residuals.size()) : null;
          statistics(runtime, clock, compressor, layer, Linear.Input.MLP_OUT, residuals, r -> {
            NDArray act = runtime.mlpActivation(layer, r);
            if (acts != null) {
              acts.add(act);
            }
            return act;
          }, acts == null);
          clock.start();
          xs.clear();
          for (int w = 0; w < residuals.size(); w++) {
            NDArray r = residuals.get(w);
            NDArray act = acts != null ? acts.get(w) : runtime.mlpActivation(layer, r);
            xs.add(runtime.afterMlp(layer, r, act));
            act.close();
            r.close();
          }
          clock.stopForward();
          compressor.layerDone(layer);
        }
      }
    }
    return new Timings(clock.forward, clock.statistics, clock.compress);
  }

  /** Runs the (still uncompressed) layer on the original stream, saving the statistics of all four activations. */
  private static void saveUncompressed(LlamaRuntime runtime, DecoderLayer layer, List<NDArray> original,
      StatisticsStore.Writer save) {
    java.util.Map<Linear.Input, InputStatistics> all = new java.util.EnumMap<>(Linear.Input.class);
    try {
      for (Linear.Input input : Linear.Input.values()) {
        all.put(input, new InputStatistics(runtime.manager(), input.width(runtime.family())));
      }
      for (int w = 0; w < original.size(); w++) {
        NDArray next = runtime.runLayer(layer, original.get(w), 0, null, (l, input, x) -> all.get(input).add(x));
        original.get(w).close();
        original.set(w, next);
      }
      for (Linear.Input input : Linear.Input.values()) {
        save.add(layer.index, input, all.get(input));
      }
    } finally {
      all.values().forEach(InputStatistics::close);
    }
  }

  /**
   * Compresses from saved statistics (of the uncompressed model), without running the model: quick,
   * but not sequential, since no layer sees the compression of the layers before it.
   */
  public static Timings runFromStatistics(LlamaRuntime runtime, StatisticsStore store, Compressor compressor,
      Progress progress) {
    LlamaFamily family = runtime.family();
    Clock clock = new Clock();
    for (int i = 0; i < family.layers(); i++) {
      progress.layer(i, family.layers());
      try (DecoderLayer layer = runtime.layer(i)) {
        for (Linear.Input input : Linear.Input.values()) {
          clock.start();
          try (InputStatistics stats = store.load(runtime.manager(), i, input, input.width(family))) {
            clock.stopStatistics();
            compressor.compress(layer, input, input.readers(), stats);
            clock.stopCompress();
          }
        }
        compressor.layerDone(layer);
      }
    }
    return new Timings(clock.forward, clock.statistics, clock.compress);
  }

  private static void statistics(LlamaRuntime runtime, Clock clock, Compressor compressor, DecoderLayer layer,
      Linear.Input input, List<NDArray> sources, java.util.function.Function<NDArray, NDArray> stage) {
    statistics(runtime, clock, compressor, layer, input, sources, stage, true);
  }

  /** Runs {@code stage} on every source, accumulates the statistics of its output, then compresses. */
  private static void statistics(LlamaRuntime runtime, Clock clock, Compressor compressor, DecoderLayer layer,
      Linear.Input input, List<NDArray> sources, java.util.function.Function<NDArray, NDArray> stage, boolean close) {
    try (InputStatistics stats = new InputStatistics(runtime.manager(), input.width(runtime.family()))) {
      for (NDArray source : sources) {
        clock.start();
        NDArray activation = stage.apply(source);
        clock.stopForward();
        stats.add(activation);
        clock.stopStatistics();
        if (close) {
          activation.close();
        }
      }
      clock.start();
      compressor.compress(layer, input, input.readers(), stats);
      clock.stopCompress();
    }
  }

  /** Splits wall time between the three kinds of work. */
  private static final class Clock {
    double forward;
    double statistics;
    double compress;
    private long mark;

    void start() {
      mark = System.nanoTime();
    }

    private double lap() {
      long now = System.nanoTime();
      double seconds = (now - mark) / 1e9;
      mark = now;
      return seconds;
    }

    void stopForward() {
      forward += lap();
    }

    void stopStatistics() {
      statistics += lap();
    }

    void stopCompress() {
      compress += lap();
    }
  }
}
