package llmc.pipeline;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.BitSet;
import llmc.calibration.ActivationOutliers;
import llmc.calibration.CompressedMatrix;
import llmc.calibration.InputStatistics;
import llmc.calibration.MatrixCompressor;
import llmc.formats.Json;
import llmc.model.Linear;

/**
 * A compressor that also tells a listener where each matrix held zeros before, and what it became,
 * for the report (the matrix itself may be gone: GPTQ works in its memory).
 */
final class MatrixRecorder implements MatrixCompressor {
  /** Told of each compressed matrix. */
  interface Listener {
    void compressed(int layer, Linear linear, Zeros before, CompressedMatrix after);
  }

  /**
   * The zeros of a matrix of {@code length} weights, by index (an empty set when it had none, the
   * common case, and then nothing is allocated).
   */
  record Zeros(int length, BitSet at) {
    static Zeros of(float[] w) {
      BitSet at = new BitSet(0);
      for (int i = 0; i < w.length; i++) {
        if (w[i] == 0f) {
          at.set(i);
        }
      }
      return new Zeros(w.length, at);
    }

    long count() {
      return at.cardinality();
    }
  }

  private final MatrixCompressor method;
  private final Listener listener;
  private final Double outlierThreshold;
  private final java.util.List<ActivationOutliers> outliers =
      java.util.Collections.synchronizedList(new java.util.ArrayList<>());

  MatrixRecorder(MatrixCompressor method, Listener listener) {
    this(method, listener, null);
  }

  /**
   * @param outlierThreshold also record every input's {@link ActivationOutliers} at this |x| (the
   *     statistics before any scaling), kept in the journal's layer notes; null for none
   */
  MatrixRecorder(MatrixCompressor method, Listener listener, Double outlierThreshold) {
    this.method = method;
    this.listener = listener;
    this.outlierThreshold = outlierThreshold;
  }

  /** The inputs' outliers recorded so far, by layer and input. */
  java.util.List<ActivationOutliers> outliers() {
    synchronized (outliers) {
      return outliers.stream()
          .sorted(
              java.util.Comparator.comparingInt(ActivationOutliers::layer)
                  .thenComparing(
                      a -> Linear.Input.valueOf(a.input().toUpperCase(java.util.Locale.ROOT))))
          .toList();
    }
  }

  @Override
  public boolean compresses(int layer, Linear linear) {
    return method.compresses(layer, linear);
  }

  @Override
  public boolean needsStatistics() {
    return method.needsStatistics();
  }

  @Override
  public String layerNote(int layer) {
    String inner = method.layerNote(layer);
    if (outlierThreshold == null) {
      return inner;
    }
    ObjectNode note = Json.mapper().createObjectNode();
    note.put("method", inner);
    ArrayNode list = note.putArray("outliers");
    for (ActivationOutliers a : outliers()) {
      if (a.layer() == layer) {
        list.addObject()
            .put("input", a.input())
            .put("features", a.features())
            .put("max_abs", a.maxAbs())
            .put("features_above", a.featuresAbove());
      }
    }
    return note.toString();
  }

  @Override
  public void replayedLayer(int layer, String note) {
    if (outlierThreshold == null || note == null) {
      method.replayedLayer(layer, note);
      return;
    }
    try {
      JsonNode n = Json.mapper().readTree(note);
      method.replayedLayer(layer, n.get("method").isNull() ? null : n.get("method").asText());
      for (JsonNode a : n.get("outliers")) {
        outliers.add(
            new ActivationOutliers(
                layer,
                a.get("input").asText(),
                a.get("features").asInt(),
                a.get("max_abs").asDouble(),
                a.get("features_above").asInt()));
      }
    } catch (java.io.IOException e) {
      throw new java.io.UncheckedIOException(e);
    }
  }

  @Override
  public float[] inputScales(
      int layer,
      Linear.Input input,
      java.util.List<Linear> linears,
      java.util.function.Function<Linear, float[]> weights,
      InputStatistics stats) {
    if (outlierThreshold != null) {
      outliers.add(ActivationOutliers.of(layer, input, stats.absMax(), outlierThreshold));
    }
    return method.inputScales(layer, input, linears, weights, stats);
  }

  @Override
  public CompressedMatrix compress(
      int layer, Linear linear, float[] weight, int rows, int cols, InputStatistics stats) {
    Zeros before = Zeros.of(weight);
    CompressedMatrix c = method.compress(layer, linear, weight, rows, cols, stats);
    listener.compressed(layer, linear, before, c);
    return c;
  }

  @Override
  public void replayed(int layer, Linear linear, float[] weight, CompressedMatrix c) {
    listener.compressed(layer, linear, Zeros.of(weight), c);
  }
}
