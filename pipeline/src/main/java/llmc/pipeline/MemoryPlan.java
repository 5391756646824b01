package llmc.pipeline;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.function.BiPredicate;
import llmc.calibration.LayerwisePipeline;
import llmc.calibration.StatisticsSource;
import llmc.formats.InvalidSettingException;
import llmc.model.Linear;
import llmc.model.LlamaFamily;

/**
 * What a layer-by-layer compression holds in memory at its peak, computed from the model's shapes
 * and the settings before any work: the plan {@code --dry-run} prints, {@code --max-memory} is
 * checked against, and the report keeps. It follows what the walk holds ({@code
 * LayerwisePipeline}): the layer's matrices as stored (BF16 or float32) until each is compressed,
 * then as codes (quantized) or float32 values (pruned); the statistics of one input ({@code [w][w]}
 * float32, the Hessian made in their memory); the matrix being compressed with the method's work
 * arrays; the calibration activations. Weights are never held beyond the current layer: the
 * checkpoint is mapped and its pages let go after each read. docs/scaling.md compares the plan with
 * measured peaks.
 *
 * @param limit the budget in bytes ({@code --max-memory})
 * @param peak the largest total in bytes, at {@link #peakAt}
 * @param peakAt the moment of the peak, e.g. "compressing layer 0 down_proj"
 * @param parts what is held at that moment (their sum is {@link #peak})
 * @param keepsMlpActivations whether the MLP activations stay from the statistics to the layer's
 *     output (faster), or are computed again (less memory): chosen to fit the budget
 * @param spillsFinishedMatrices whether a layer's finished pruned matrices wait on disk (the work
 *     folder) while its widest input, {@code down_proj}'s, is accumulated and compressed: the
 *     float32 values of six matrices make way for that input's Hessian; chosen when nothing else
 *     fits the budget
 * @param activationsOnDisk whether the calibration activations of all windows wait on disk between
 *     a layer's stages, one window in memory at a time: chosen when they do not fit in memory
 */
public record MemoryPlan(
    long limit,
    long peak,
    String peakAt,
    List<Part> parts,
    boolean keepsMlpActivations,
    boolean spillsFinishedMatrices,
    boolean activationsOnDisk) {

  /** What waits in {@code workFolder} for this plan, or null when everything stays in memory. */
  public StatisticsSource.Spill spill(java.nio.file.Path workFolder) {
    return spillsFinishedMatrices || activationsOnDisk
        ? new StatisticsSource.Spill(workFolder, spillsFinishedMatrices, activationsOnDisk)
        : null;
  }

  /** One thing held, in bytes. */
  public record Part(String what, long bytes) {}

  /**
   * Memory outside the JVM heap besides the collector's own structures: code, metaspace, thread
   * stacks, the mapped pages being read, I/O buffers. Native memory tracking of a SparseGPT run on
   * a 70B-shape layer with a 5.55 GB heap put the JVM's own at 65 MB and file-backed pages at 64
   * MB; the 7-layer run's peak RSS was 348 MB above its fully used heap, of which G1 took 154 MB
   * (docs/scaling.md). Taken as 256 MiB.
   */
  public static final long OUTSIDE_HEAP = 256L << 20;

  /**
   * G1's own structures (the marking bitmap, card table, remembered sets) per hundred bytes of
   * heap: 2.7 measured (150 MB at a 5.55 GB heap), taken as 3.
   */
  static final long GC_PERCENT = 3;

  /** The whole process for a heap of {@code heap} bytes: the heap, G1's structures, the rest. */
  static long process(long heap) {
    return heap + heap * GC_PERCENT / 100 + OUTSIDE_HEAP;
  }

  /** The largest heap whose {@link #process} fits {@code limit} (what ./llmc gives -Xmx). */
  public static long heapFor(long limit) {
    return (limit - OUTSIDE_HEAP) * 100 / (100 + GC_PERCENT);
  }

  /**
   * What the heap needs beyond the arrays themselves: ./llmc gives a limited run a 64 MB young
   * generation and 8 MB regions, and a large array takes whole regions.
   */
  static final long HEADROOM_PERCENT = 3;

  /** What the method does to a matrix, for its work arrays and what it leaves. */
  public enum Work {
    /** RTN: a float32 copy and the codes; leaves codes. */
    RTN(5, true),
    /** GPTQ: works in the float32 copy, adds the codes; leaves codes. */
    GPTQ(5, true),
    /**
     * AWQ then round-to-nearest: first the scale search over the matrices reading an input (their
     * float32 values, a Hessian beside the statistics, and three float32 arrays of the matrix being
     * tried); then RTN, the Hessian kept for the clipping search; leaves codes.
     */
    AWQ(5, true),
    /** AWQ's search, then GPTQ on the scaled matrices; leaves codes. */
    AWQ_GPTQ(5, true),
    /** SparseGPT: works in the float32 copy (block arrays aside); leaves float32 values. */
    SPARSEGPT(5, false),
    /** Scores and a mask (magnitude, Wanda, ...): copy, scores, mask, result; leaves values. */
    SCORES(13, false);

    final int bytesPerWeight;
    final boolean quantized;

    boolean searchesScales() {
      return this == AWQ || this == AWQ_GPTQ;
    }

    Work(int bytesPerWeight, boolean quantized) {
      this.bytesPerWeight = bytesPerWeight;
      this.quantized = quantized;
    }
  }

  /**
   * The plan of a run.
   *
   * @param storedBytes bytes per weight of the checkpoint's matrices in memory (2 for BF16, else 4)
   * @param compresses which matrices the method changes (others stay as stored)
   * @param calibrated whether the walk runs calibration windows (GPTQ, SparseGPT, Wanda)
   * @param windows calibration windows, each of {@code seqLen} tokens (0 without calibration)
   * @param groupSize the quantization group ({@code -1}: one per row), for the scales kept
   * @param limit the budget in bytes
   */
  public static MemoryPlan of(
      LlamaFamily f,
      Work work,
      int storedBytes,
      BiPredicate<Integer, Linear> compresses,
      boolean calibrated,
      int windows,
      int seqLen,
      int groupSize,
      long limit) {
    // In order of speed: MLP activations kept; kept, with finished matrices spilled to disk around
    // down_proj (pruning: their float32 values); activations computed again; then the same with
    // every window's activations on disk. The first that fits, else the least, whose peak the
    // refusal names.
    Way way =
        (keep, spill, onDisk) ->
            plan(
                f,
                work,
                storedBytes,
                compresses,
                calibrated,
                windows,
                seqLen,
                groupSize,
                limit,
                keep,
                spill,
                onDisk);
    List<MemoryPlan> candidates = new ArrayList<>();
    long keptBytes = 4L * windows * seqLen * f.intermediate();
    for (boolean onDisk : calibrated ? List.of(false, true) : List.of(false)) {
      if (calibrated && (onDisk || keptBytes <= LayerwisePipeline.KEPT_ACTIVATION_BYTES)) {
        if (!onDisk) {
          candidates.add(way.plan(true, false, false));
        }
        if (!work.quantized) {
          candidates.add(way.plan(true, true, onDisk));
        }
      }
      candidates.add(way.plan(false, false, onDisk));
    }
    for (MemoryPlan p : candidates) {
      if (p.fits()) {
        return p;
      }
    }
    return candidates.stream().min(java.util.Comparator.comparingLong(MemoryPlan::peak)).get();
  }

  /**
   * One way of holding the walk: MLP activations kept, finished matrices and activations on disk.
   */
  private interface Way {
    MemoryPlan plan(boolean keep, boolean spill, boolean onDisk);
  }

  private static MemoryPlan plan(
      LlamaFamily f,
      Work work,
      int storedBytes,
      BiPredicate<Integer, Linear> compresses,
      boolean calibrated,
      int windows,
      int seqLen,
      int groupSize,
      long limit,
      boolean keep,
      boolean spill,
      boolean onDisk) {
    long tokens = (long) windows * seqLen;
    List<Part> activations = new ArrayList<>();
    if (calibrated && onDisk) {
      int width = keep ? Math.max(f.qWidth(), f.intermediate()) : f.qWidth();
      activations.add(
          part(
              "calibration activations on disk (the work folder), %d x %d tokens x (%d + %d);"
                  + " in memory one window's input, its copy and its heads or MLP activations",
              4L * seqLen * (2L * f.hidden() + width), windows, seqLen, f.hidden(), width));
      if (!keep) {
        activations.add(part("one window's MLP activations", 4L * seqLen * f.intermediate()));
      }
    } else if (calibrated) {
      activations.add(
          part(
              "calibration activations: the layer's input, %d x %d tokens x %d",
              4 * tokens * f.hidden(), windows, seqLen, f.hidden()));
      if (keep) {
        int width = Math.max(f.qWidth(), f.intermediate());
        activations.add(
            part(
                "attention heads, then the MLP activations kept for the layer's output (x %d)",
                4 * tokens * width, width));
      } else {
        activations.add(
            part(
                "one window's MLP activations (computed again for the layer's output)",
                4L * seqLen * f.intermediate()));
      }
    }
    // Without kept MLP activations the attention heads of every window are held only from o's
    // statistics until o's output is added.
    List<Part> withHeads = new ArrayList<>(activations);
    if (calibrated && !keep && !onDisk) {
      withHeads.add(
          part(
              "attention heads, %d x %d tokens x %d",
              4 * tokens * f.qWidth(), windows, seqLen, f.qWidth()));
    }
    // while the layer runs: one window's products in flight (q, k, v, gate and up outputs)
    Part inFlight =
        part(
            "one window's projections in flight",
            4L * seqLen * (f.qWidth() + 2L * f.kvWidth() + 2L * f.intermediate()));
    List<Part> best = null;
    long peak = -1;
    String peakAt = null;
    for (int layer = 0; layer < f.layers(); layer++) {
      List<Linear> order = List.of(Linear.values()); // (q, k, v), o, (gate, up), down
      for (Linear.Input input : Linear.Input.values()) {
        int w = input.width(f);
        List<Linear> readers = input.readers();
        List<Part> live = input == Linear.Input.ATTN_OUT ? withHeads : activations;
        // with a spill, the layer's finished matrices go to disk once down_proj's input is computed
        boolean spilled = spill && input == Linear.Input.MLP_OUT;
        if (calibrated) { // the statistics of the input, accumulated while the layer runs
          List<Part> parts = new ArrayList<>();
          parts.add(
              held(
                  f,
                  layer,
                  order,
                  readers.get(0),
                  false,
                  spilled,
                  work,
                  storedBytes,
                  compresses,
                  groupSize,
                  true));
          parts.add(
              part(
                  "statistics of the %d-wide %s input (float32)",
                  4L * w * w, w, input.name().toLowerCase(Locale.ROOT)));
          parts.addAll(live);
          if (!spilled) { // (spilled: accumulated from the kept activations, no layer running)
            parts.add(inFlight);
          }
          long total = sum(parts);
          if (total > peak) {
            peak = total;
            best = parts;
            peakAt = "layer " + layer + ", statistics of " + readers.get(0).path + "'s input";
          }
          long values = 0; // AWQ's search reads the matrices it compresses
          long largest = 0;
          for (Linear l : readers) {
            if (compresses.test(layer, l)) {
              long n = (long) l.outFeatures(f) * l.inFeatures(f);
              values += 4 * n;
              largest = Math.max(largest, n);
            }
          }
          if (work.searchesScales() && values > 0) {
            List<Part> search = new ArrayList<>();
            search.add(
                held(
                    f,
                    layer,
                    order,
                    readers.get(0),
                    false,
                    spilled,
                    work,
                    storedBytes,
                    compresses,
                    groupSize,
                    true));
            search.add(
                part(
                    "AWQ's search: the statistics of the %d-wide input and a Hessian (float32)",
                    8L * w * w, w));
            search.add(
                part(
                    "AWQ's search: the float32 values of the matrices reading it, and three"
                        + " arrays of the largest",
                    values + 12 * largest));
            search.addAll(live);
            long searching = sum(search);
            if (searching > peak) {
              peak = searching;
              best = search;
              peakAt = "layer " + layer + ", AWQ's search for " + readers.get(0).path + "'s input";
            }
          }
          if (spilled) { // before: the activations computed, every finished matrix still held
            List<Part> before = new ArrayList<>();
            before.add(
                held(
                    f,
                    layer,
                    order,
                    readers.get(0),
                    false,
                    false,
                    work,
                    storedBytes,
                    compresses,
                    groupSize,
                    true));
            before.addAll(live);
            before.add(inFlight);
            total = sum(before);
            if (total > peak) {
              peak = total;
              best = before;
              peakAt = "layer " + layer + ", computing " + readers.get(0).path + "'s input";
            }
          }
        }
        Linear last = null;
        for (Linear l : readers) {
          if (compresses.test(layer, l)) {
            last = l;
          }
        }
        for (Linear l : readers) {
          if (!compresses.test(layer, l)) {
            continue;
          }
          long weights = (long) l.outFeatures(f) * l.inFeatures(f);
          List<Part> parts = new ArrayList<>();
          parts.add(
              held(
                  f,
                  layer,
                  order,
                  l,
                  true,
                  spilled,
                  work,
                  storedBytes,
                  compresses,
                  groupSize,
                  calibrated));
          if (calibrated) {
            boolean inPlace = l == last && work != Work.AWQ; // AWQ's RTN keeps the statistics
            parts.add(
                part(
                    "the Hessian of the %d-wide input (float32%s)",
                    4L * w * w * (inPlace ? 1 : 2),
                    w,
                    inPlace ? ", made in the statistics' memory" : ", and the statistics"));
          }
          parts.add(
              part(
                  "%s being compressed: float32 and the method's work arrays (%d bytes"
                      + " per weight)",
                  work.bytesPerWeight * weights, l.path, work.bytesPerWeight));
          parts.addAll(live);
          long total = sum(parts);
          if (total > peak) {
            peak = total;
            best = parts;
            peakAt = "layer " + layer + ", compressing " + l.path;
          }
        }
      }
      // the layer written: every matrix compressed, the largest one converted for the output
      List<Part> parts = new ArrayList<>();
      parts.add(
          held(
              f,
              layer,
              order,
              null,
              false,
              false,
              work,
              storedBytes,
              compresses,
              groupSize,
              calibrated));
      long largest = 0;
      for (Linear l : order) {
        largest = Math.max(largest, 4L * l.outFeatures(f) * l.inFeatures(f));
      }
      parts.add(part("the largest matrix as written (float32 at most)", largest));
      parts.addAll(activations);
      long total = sum(parts);
      if (total > peak) {
        peak = total;
        best = parts;
        peakAt = "layer " + layer + ", writing it";
      }
    }
    List<Part> parts = new ArrayList<>(best);
    long headroom = peak * HEADROOM_PERCENT / 100;
    parts.add(
        part(
            "the heap's headroom: a young generation, large arrays rounded up to whole regions"
                + " (%d%%)",
            headroom, HEADROOM_PERCENT));
    long heap = peak + headroom;
    parts.add(
        part(
            "the collector's own structures (%d%% of the heap)",
            heap * GC_PERCENT / 100, GC_PERCENT));
    parts.add(
        new Part("outside the heap: JVM, code, thread stacks, pages being read", OUTSIDE_HEAP));
    return new MemoryPlan(limit, process(heap), peakAt, List.copyOf(parts), keep, spill, onDisk);
  }

  /**
   * The layer's matrices other than {@code now}: compressed before it, or still as stored ({@code
   * now} null: the layer done, every matrix compressed). With {@code spilled}, those compressed for
   * an earlier input wait on disk.
   */
  private static Part held(
      LlamaFamily f,
      int layer,
      List<Linear> order,
      Linear now,
      boolean compressing,
      boolean spilled,
      Work work,
      int storedBytes,
      BiPredicate<Integer, Linear> compresses,
      int groupSize,
      boolean loaded) {
    long stored = 0;
    long compressed = 0;
    long onDisk = 0;
    for (Linear l : order) {
      long weights = (long) l.outFeatures(f) * l.inFeatures(f);
      boolean before = now == null || l.ordinal() < now.ordinal();
      if (compressing && l == now) {
        continue; // released from the layer while it is compressed
      }
      if (before && compresses.test(layer, l)) {
        if (spilled && l.input != now.input) {
          onDisk += 4 * weights;
          continue;
        }
        compressed +=
            work.quantized
                ? weights
                    + 8 * weights / (groupSize > 0 ? groupSize : l.inFeatures(f))
                    + 4L * l.inFeatures(f)
                : 4 * weights;
      } else if (loaded) {
        stored += (long) storedBytes * weights;
      }
    }
    return new Part(
        String.format(
            Locale.ROOT,
            "layer %d's other matrices: %s compressed (%s), %s as stored%s",
            layer,
            human(compressed),
            work.quantized ? "codes" : "float32",
            human(stored),
            onDisk > 0 ? "; " + human(onDisk) + " compressed on disk (the work folder)" : ""),
        stored + compressed);
  }

  private static Part part(String what, long bytes, Object... args) {
    return new Part(String.format(Locale.ROOT, what, args), bytes);
  }

  private static long sum(List<Part> parts) {
    return parts.stream().mapToLong(Part::bytes).sum();
  }

  /**
   * Bytes per weight of a checkpoint's matrix as the walk holds it (BF16 as it is, else float32).
   */
  public static int storedBytes(llmc.formats.DType dtype) {
    return dtype == llmc.formats.DType.BF16 ? 2 : 4;
  }

  /** Whether the run fits its budget. */
  public boolean fits() {
    return peak <= limit;
  }

  /** The JVM heap the plan needs. */
  public long heapBytes() {
    return (peak - OUTSIDE_HEAP) * 100 / (100 + GC_PERCENT);
  }

  /**
   * Refuses, before any work, a run whose peak is above the budget, or above what the JVM's heap
   * allows; names the least budget that would do.
   */
  public void check(long heapLimit) {
    if (!fits()) {
      throw new InvalidSettingException(
          "{maxMemoryBytes} %s is less than this run needs at its peak (%s: %s); the least it can run"
              + " in is %s: give {maxMemoryBytes} %s or more, fewer calibration windows, or a smaller"
              + " model",
          human(limit), peakAt, human(peak), human(peak), gigabytes(peak));
    }
    if (heapBytes() > heapLimit) {
      throw new InvalidSettingException(
          "the JVM's heap of %s is less than this run needs at its peak (%s: %s of heap); run"
              + " through ./llmc, which sizes the heap from {maxMemoryBytes}, or give the JVM"
              + " JAVA_OPTS=-Xmx%dm",
          human(heapLimit), peakAt, human(heapBytes()), (heapBytes() >> 20) + 256);
    }
  }

  /** {@code 6.2 GB} (decimal, as --max-memory takes it). */
  static String human(long bytes) {
    return bytes >= 1_000_000_000L
        ? String.format(Locale.ROOT, "%.2f GB", bytes / 1e9)
        : String.format(Locale.ROOT, "%.0f MB", bytes / 1e6);
  }

  /** The least whole tenth of a GB at or above {@code bytes}, as a --max-memory value. */
  static String gigabytes(long bytes) {
    return String.format(Locale.ROOT, "%.1fGB", Math.ceil(bytes / 1e8) / 10);
  }

  /**
   * The default budget: three quarters of the machine's memory (or of the container's limit, which
   * the JVM reports instead), and no more than this JVM's heap allows (./llmc sizes the heap from
   * {@code --max-memory}; without it the JVM's default applies).
   */
  public static long defaultLimit() {
    var os =
        (com.sun.management.OperatingSystemMXBean)
            java.lang.management.ManagementFactory.getOperatingSystemMXBean();
    return Math.min(os.getTotalMemorySize() / 4 * 3, process(Runtime.getRuntime().maxMemory()));
  }
}
