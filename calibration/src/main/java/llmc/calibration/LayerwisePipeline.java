package llmc.calibration;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import llmc.model.DecoderLayer;
import llmc.model.Linear;
import llmc.model.LlamaFamily;
import llmc.model.LlamaRuntime;
import llmc.model.OverlayWeights;

/**
 * The layer-sequential walk every calibration-based method shares (GPTQ, SparseGPT, Wanda, ...).
 * One decoder layer at a time: the calibration activations go through the layer in its four stages;
 * after each stage the statistics of the activation that stage produced go to the compressor, which
 * replaces the weights of the linear layers reading it; the next stage then runs on the compressed
 * weights ("true sequential": (q, k, v) -> o -> (gate, up) -> down). The layer's output becomes the
 * next layer's input. Memory: one layer's weights plus the activations.
 */
public final class LayerwisePipeline {

  /** Compresses the linear layers that read one activation, given its statistics. */
  public interface Compressor {
    /**
     * @param layer the layer, whose weights the compressor replaces ({@link DecoderLayer#replace})
     * @param input which activation
     * @param linears the linear layers reading it, in order
     * @param stats the activation's statistics over all calibration tokens
     */
    void compress(
        DecoderLayer layer, Linear.Input input, List<Linear> linears, InputStatistics stats);

    /**
     * Called, when the walk spills, once {@code down_proj}'s input is computed and before its
     * statistics are accumulated: the compressor may set the layer's finished matrices aside until
     * {@link #layerDone}, since the layer runs none of them again.
     */
    default void spill(DecoderLayer layer) {}

    /**
     * Called when layer {@code index} is complete (all its groups compressed).
     *
     * @param activations the layer's output per calibration window (the next layer's input), or
     *     null when the walk runs no windows
     */
    default void layerDone(DecoderLayer layer, List<float[]> activations) {}
  }

  /** Seconds spent running layers, accumulating statistics and compressing. */
  public record Timings(double forwardSeconds, double statisticsSeconds, double compressSeconds) {}

  /** Told the index of each layer as it starts. */
  public interface Progress {
    void layer(int index, int layers);
  }

  /**
   * Compresses a model layer by layer: every matrix {@code compressor} takes, with the statistics
   * of its input from {@code source}, each layer handed to {@code sink} when complete. Compressors
   * read the matrices from {@code weights} (the current weights: what an earlier method wrote is
   * what the next sees) and their results go back into it, and into the layer the next stage runs
   * on. A written layer's results are forgotten: memory stays one layer's weights plus the
   * activations.
   */
  public static Timings compress(
      LlamaFamily family,
      OverlayWeights weights,
      StatisticsSource source,
      MatrixCompressor compressor,
      LayerSink sink,
      Progress progress) {
    return compress(family, weights, source, compressor, sink, progress, null);
  }

  /**
   * As above, each finished layer kept in {@code journal} (null: none); the layers a journal holds
   * from an earlier run are replayed into {@code sink} (and told to {@code compressor} through
   * {@link MatrixCompressor#replayed}) without being computed again, and the walk goes on from the
   * activations it saved, so the sink receives what an uninterrupted run gives it.
   */
  public static Timings compress(
      LlamaFamily family,
      OverlayWeights weights,
      StatisticsSource source,
      MatrixCompressor compressor,
      LayerSink sink,
      Progress progress,
      LayerJournal journal) {
    if (journal != null && source instanceof StatisticsSource.Windows w && w.save() != null) {
      throw new IllegalArgumentException("a journal cannot resume a walk that saves statistics");
    }
    int resumed = journal == null ? 0 : journal.layersDone();
    for (int i = 0; i < resumed; i++) {
      progress.layer(i, family.layers());
      Map<Linear, CompressedMatrix> saved = journal.layer(i);
      for (Map.Entry<Linear, CompressedMatrix> e : saved.entrySet()) {
        String name = e.getKey().weightName(i);
        compressor.replayed(i, e.getKey(), weights.floats(name), e.getValue());
        weights.put(name, matrix(family, e.getKey(), e.getValue()));
      }
      compressor.replayedLayer(i, journal.note(i));
      sink.writeLayer(i, saved, journal.vectors(i));
      weights.forgetLayer(i);
    }
    Map<Linear, CompressedMatrix> done = new LinkedHashMap<>();
    StatisticsSource.Spill aside = source instanceof StatisticsSource.Windows w ? w.spill() : null;
    SpillFile spill =
        aside != null && aside.finishedMatrices() ? SpillFile.open(aside.folder()) : null;
    Map<Linear, Spilled> spilled = new java.util.EnumMap<>(Linear.class);
    // the layer's inputs the method scaled (AWQ), folded into the operations before at its end
    Map<Linear.Input, float[]> inputScales = new java.util.EnumMap<>(Linear.Input.class);
    Compressor perGroup =
        new Compressor() {
          @Override
          public void compress(
              DecoderLayer layer, Linear.Input input, List<Linear> linears, InputStatistics stats) {
            List<Linear> mine =
                linears.stream().filter(l -> compressor.compresses(layer.index, l)).toList();
            float[] scales =
                mine.isEmpty() || stats == null
                    ? null
                    : compressor.inputScales(
                        layer.index,
                        input,
                        mine,
                        l -> weights.floats(l.weightName(layer.index)),
                        stats);
            if (scales != null) {
              stats.scaleInputs(scales); // the matrices read x / s from now on
              inputScales.put(input, scales);
            }
            for (Linear linear : mine) {
              if (linear == mine.getLast() && stats != null) {
                stats.lastRead(); // its memory may become the last matrix's Hessian
              }
              layer.release(linear); // the layer does not run until the new values are in
              CompressedMatrix c =
                  compressMatrix(family, weights, compressor, layer.index, linear, stats, scales);
              layer.replace(linear, weights.matrix(linear.weightName(layer.index)));
              done.put(linear, c);
            }
          }

          @Override
          public void spill(DecoderLayer layer) {
            for (var it = done.entrySet().iterator(); it.hasNext(); ) {
              var e = it.next();
              CompressedMatrix c = e.getValue();
              if (c.quantized() != null) {
                continue; // codes: a quarter of the values or less, kept
              }
              spilled.put(e.getKey(), new Spilled(c, spill.write(c.weight())));
              it.remove();
              layer.release(e.getKey());
              weights.setAside(e.getKey().weightName(layer.index));
            }
          }

          @Override
          public void layerDone(DecoderLayer layer, List<float[]> activations) {
            if (!spilled.isEmpty()) { // back from disk, in the order they were compressed
              Map<Linear, CompressedMatrix> all = new java.util.EnumMap<>(Linear.class);
              all.putAll(done);
              for (var e : spilled.entrySet()) {
                Spilled aside = e.getValue();
                CompressedMatrix c = aside.withValues(spill.read(aside.slot()));
                all.put(e.getKey(), c);
                weights.put(e.getKey().weightName(layer.index), matrix(family, e.getKey(), c));
              }
              spilled.clear();
              spill.clear();
              done.clear();
              done.putAll(all);
            }
            Map<String, float[]> vectors =
                ScaleFold.fold(family, weights, layer.index, inputScales, done);
            inputScales.clear();
            finishLayer(
                layer.index,
                done,
                vectors,
                compressor.layerNote(layer.index),
                activations,
                sink,
                journal,
                weights);
          }
        };
    try (spill) {
      return walk(
          family, weights, source, compressor, sink, progress, journal, resumed, done, perGroup);
    }
  }

  /**
   * A finished matrix set aside on disk: what the method measured (not its values, which are what
   * the spill lets go of), and where its values lie.
   */
  private record Spilled(
      double seconds,
      Double gptqLoss,
      Double weightMse,
      Double damp,
      boolean fellBackToRtn,
      String warning,
      SpillFile.Slot slot) {
    Spilled(CompressedMatrix c, SpillFile.Slot slot) {
      this(
          c.seconds(), c.gptqLoss(), c.weightMse(), c.damp(), c.fellBackToRtn(), c.warning(), slot);
    }

    CompressedMatrix withValues(float[] values) {
      return new CompressedMatrix(
          values, null, seconds, gptqLoss, weightMse, damp, fellBackToRtn, warning);
    }
  }

  private static Timings walk(
      LlamaFamily family,
      OverlayWeights weights,
      StatisticsSource source,
      MatrixCompressor compressor,
      LayerSink sink,
      Progress progress,
      LayerJournal journal,
      int resumed,
      Map<Linear, CompressedMatrix> done,
      Compressor perGroup) {
    return switch (source) {
      case StatisticsSource.Windows w -> {
        try (LlamaRuntime runtime = new LlamaRuntime(family, weights, false)) {
          yield run(
              runtime,
              w.windows(),
              perGroup,
              progress,
              w.save(),
              resumed,
              resumed > 0 ? journal.activations() : null,
              w.keepMlpActivations(),
              w.spill());
        }
      }
      case StatisticsSource.Saved s -> {
        try (LlamaRuntime runtime = new LlamaRuntime(family, weights, false)) {
          yield runFromStatistics(runtime, s.store(), perGroup, progress, resumed);
        }
      }
      case StatisticsSource.None n -> {
        double seconds = 0;
        for (int i = resumed; i < family.layers(); i++) {
          progress.layer(i, family.layers());
          for (Linear linear : Linear.values()) {
            if (compressor.compresses(i, linear)) {
              CompressedMatrix c =
                  compressMatrix(family, weights, compressor, i, linear, null, null);
              seconds += c.seconds();
              done.put(linear, c);
            }
          }
          finishLayer(i, done, Map.of(), compressor.layerNote(i), null, sink, journal, weights);
        }
        yield new Timings(0, 0, seconds);
      }
    };
  }

  /**
   * A layer is complete: to the sink, into the journal (with the activations the next layer reads,
   * if any), then forgotten.
   */
  private static void finishLayer(
      int layer,
      Map<Linear, CompressedMatrix> done,
      Map<String, float[]> vectors,
      String note,
      List<float[]> activations,
      LayerSink sink,
      LayerJournal journal,
      OverlayWeights weights) {
    sink.writeLayer(layer, done, vectors);
    if (journal != null) {
      journal.layerDone(layer, done, vectors, note, activations);
    }
    done.clear();
    weights.forgetLayer(layer);
  }

  private static CompressedMatrix compressMatrix(
      LlamaFamily family,
      OverlayWeights weights,
      MatrixCompressor compressor,
      int layer,
      Linear linear,
      InputStatistics stats,
      float[] inputScales) {
    String name = linear.weightName(layer);
    float[] w = weights.floats(name);
    int cols = linear.inFeatures(family);
    if (inputScales != null) { // W diag(s)
      for (int i = 0; i < w.length; i++) {
        w[i] *= inputScales[i % cols];
      }
    }
    CompressedMatrix c =
        compressor.compress(
            layer,
            linear,
            w,
            linear.outFeatures(family),
            cols,
            compressor.needsStatistics() ? stats : null);
    llmc.model.kernels.WeightMatrix m = matrix(family, linear, c);
    // until the layer is done the model still feeds the matrix x, not x / s
    weights.put(
        name,
        inputScales == null ? m : new llmc.model.kernels.WeightMatrix.ColumnScaled(m, inputScales));
    return c;
  }

  /** What the kernels read of a compressed matrix: its codes alone when they give its values. */
  private static llmc.model.kernels.WeightMatrix matrix(
      LlamaFamily family, Linear linear, CompressedMatrix c) {
    return c.matrix(linear.outFeatures(family), linear.inFeatures(family));
  }

  /**
   * Up to this many bytes of MLP activations are kept between the statistics and the layer's
   * output.
   */
  public static final long KEPT_ACTIVATION_BYTES = 1L << 30;

  private LayerwisePipeline() {}

  /**
   * @param runtime a runtime that does not keep its layers (each layer is loaded, compressed,
   *     closed)
   * @param windows calibration windows, C1
   */
  public static Timings run(
      LlamaRuntime runtime, List<int[]> windows, Compressor compressor, Progress progress) {
    return run(runtime, windows, compressor, progress, null, 0, null, true, null);
  }

  /**
   * As {@link #run(LlamaRuntime, List, Compressor, Progress)}; with {@code save}, also the
   * statistics of the uncompressed model (a second activation stream through the original layers)
   * are saved; with {@code keepMlpActivations} the MLP activations are kept for the layer's output
   * when they take at most {@link #KEPT_ACTIVATION_BYTES}, else computed again; with {@code spill}
   * finished matrices (it needs kept activations: {@code down_proj}'s input is computed for every
   * window before its statistics are made, and {@link Compressor#spill} is called in between)
   * and/or the activations go to disk.
   */
  public static Timings run(
      LlamaRuntime runtime,
      List<int[]> windows,
      Compressor compressor,
      Progress progress,
      StatisticsStore.Writer save,
      int from,
      List<float[]> resumedActivations,
      boolean keepMlpActivations,
      StatisticsSource.Spill spill) {
    LlamaFamily family = runtime.family();
    int rows = windows.get(0).length; // one window at a time: [T][width]
    if (windows.stream().anyMatch(window -> window.length != rows)) {
      throw new IllegalArgumentException("calibration windows must all have the same length");
    }
    int n = windows.size();
    // Per window, arrays reused by every layer: the layer's input [T][H] (updated in place: it
    // becomes the layer's output), the same through the uncompressed layers when saving, and the
    // merged heads (until o's output is added), then the MLP activations (kept when they fit the
    // budget, else computed again for down). In memory, or on disk one window at a time.
    Path onDisk = spill != null && spill.activations() ? spill.folder() : null;
    long actBytes = 4L * family.intermediate() * n * rows;
    boolean keepActs = keepMlpActivations && (onDisk != null || actBytes <= KEPT_ACTIVATION_BYTES);
    boolean spillMatrices = spill != null && spill.finishedMatrices();
    if (spillMatrices && !keepActs) {
      throw new IllegalArgumentException(
          "spilling finished matrices needs the MLP activations kept, and they take "
              + actBytes
              + " bytes");
    }
    int width = keepActs ? Math.max(family.qWidth(), family.intermediate()) : family.qWidth();
    Clock clock = new Clock();
    try (Activations xs = Activations.of(n, rows * family.hidden(), onDisk);
        Activations original =
            Activations.of(save == null ? 0 : n, rows * family.hidden(), onDisk);
        Activations merged = Activations.of(n, rows * width, onDisk)) {
      clock.start();
      for (int j = 0; j < n; j++) {
        float[] x =
            from > 0 ? resumedActivations.get(j) : runtime.embedRows(new int[][] {windows.get(j)});
        xs.set(j, x);
        if (save != null) {
          original.set(j, x.clone());
        }
      }
      clock.stopForward();
      // Without kept MLP activations the heads' arrays are made for each layer's attention and let
      // go before its MLP (0.13 GB for 8 windows of 512 tokens of a 70B-class model).
      float[] actScratch = keepActs ? null : new float[rows * family.intermediate()];
      for (int i = from; i < family.layers(); i++) {
        progress.layer(i, family.layers());
        try (DecoderLayer layer = runtime.layer(i)) {
          if (save != null) {
            clock.start();
            saveUncompressed(runtime, layer, original, rows, save);
            clock.stopStatistics();
          }
          // (q, k, v) read RMSNorm(x).
          statistics(
              clock,
              compressor,
              layer,
              Linear.Input.ATTN_IN,
              family,
              xs,
              rows,
              (j, x) -> runtime.attentionInput(layer, x, rows));
          // o reads the merged heads; keep them to build the residual once o is compressed.
          statistics(
              clock,
              compressor,
              layer,
              Linear.Input.ATTN_OUT,
              family,
              xs,
              rows,
              (j, x) -> {
                float[] heads = merged.forWriting(j);
                float[] out = runtime.attentionOutput(layer, x, 1, rows, heads);
                merged.set(j, heads);
                return out;
              });
          clock.start();
          for (int j = 0; j < n; j++) {
            float[] x = xs.get(j);
            runtime.afterAttention(layer, x, merged.get(j), rows); // x becomes the residual
            xs.set(j, x);
          }
          if (!keepActs) {
            merged.release();
          }
          clock.stopForward();
          // gate and up read RMSNorm(residual); down reads silu(gate) * up, kept when it fits the
          // activation budget (else computed again once down is compressed).
          statistics(
              clock,
              compressor,
              layer,
              Linear.Input.MLP_IN,
              family,
              xs,
              rows,
              (j, r) -> runtime.mlpInput(layer, r, rows));
          if (spillMatrices) { // down's input first, then the finished matrices make way for its
            // Hessian
            clock.start();
            for (int j = 0; j < n; j++) {
              float[] act = merged.forWriting(j);
              runtime.mlpActivation(layer, xs.get(j), rows, act);
              merged.set(j, act);
            }
            clock.stopForward();
            compressor.spill(layer);
            clock.stopCompress();
            statistics(
                clock,
                compressor,
                layer,
                Linear.Input.MLP_OUT,
                family,
                merged,
                rows,
                (j, act) -> act);
          } else {
            statistics(
                clock,
                compressor,
                layer,
                Linear.Input.MLP_OUT,
                family,
                xs,
                rows,
                (j, r) -> {
                  if (!keepActs) {
                    return runtime.mlpActivation(layer, r, rows, actScratch);
                  }
                  float[] act = merged.forWriting(j);
                  runtime.mlpActivation(layer, r, rows, act);
                  merged.set(j, act);
                  return act;
                });
          }
          clock.start();
          for (int j = 0; j < n; j++) {
            float[] r = xs.get(j);
            float[] act =
                keepActs ? merged.get(j) : runtime.mlpActivation(layer, r, rows, actScratch);
            runtime.afterMlp(layer, r, act, rows); // the residual becomes the output
            xs.set(j, r);
          }
          clock.stopForward();
          compressor.layerDone(layer, xs.asList());
        }
      }
    }
    return new Timings(clock.forward, clock.statistics, clock.compress);
  }

  /**
   * Runs the (still uncompressed) layer on the original stream, saving the statistics of all four
   * activations.
   */
  private static void saveUncompressed(
      LlamaRuntime runtime,
      DecoderLayer layer,
      Activations original,
      int rows,
      StatisticsStore.Writer save) {
    java.util.Map<Linear.Input, InputStatistics> all = new java.util.EnumMap<>(Linear.Input.class);
    for (Linear.Input input : Linear.Input.values()) {
      all.put(input, new InputStatistics(input.width(runtime.family())));
    }
    for (int w = 0; w < original.size(); w++) {
      original.set(
          w,
          runtime.runLayer(
              layer,
              original.get(w),
              1,
              rows,
              0,
              null,
              (l, input, x, n) -> all.get(input).add(x, n)));
    }
    for (Linear.Input input : Linear.Input.values()) {
      save.add(layer.index, input, all.get(input));
    }
  }

  /**
   * Compresses from saved statistics (of the uncompressed model), without running the model: quick,
   * but not sequential, since no layer sees the compression of the layers before it.
   */
  public static Timings runFromStatistics(
      LlamaRuntime runtime,
      StatisticsStore store,
      Compressor compressor,
      Progress progress,
      int from) {
    LlamaFamily family = runtime.family();
    Clock clock = new Clock();
    for (int i = from; i < family.layers(); i++) {
      progress.layer(i, family.layers());
      try (DecoderLayer layer = runtime.layer(i)) {
        for (Linear.Input input : Linear.Input.values()) {
          clock.start();
          InputStatistics stats = store.load(i, input, input.width(family));
          clock.stopStatistics();
          compressor.compress(layer, input, input.readers(), stats);
          clock.stopCompress();
        }
        compressor.layerDone(layer, null);
      }
    }
    return new Timings(clock.forward, clock.statistics, clock.compress);
  }

  /** One stage of a layer applied to window {@code j}'s activation {@code [rows][width]}. */
  private interface Stage {
    float[] apply(int j, float[] source);
  }

  /**
   * Runs {@code stage} on every source ({@code [rows][width]} each), accumulates the statistics of
   * its output, then compresses.
   */
  private static void statistics(
      Clock clock,
      Compressor compressor,
      DecoderLayer layer,
      Linear.Input input,
      LlamaFamily family,
      Activations sources,
      int rows,
      Stage stage) {
    InputStatistics stats = new InputStatistics(input.width(family));
    for (int j = 0; j < sources.size(); j++) {
      clock.start();
      float[] activation = stage.apply(j, sources.get(j));
      clock.stopForward();
      stats.add(activation, rows);
      clock.stopStatistics();
    }
    clock.start();
    compressor.compress(layer, input, input.readers(), stats);
    clock.stopCompress();
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
