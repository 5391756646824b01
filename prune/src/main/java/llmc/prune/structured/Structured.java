package llmc.prune.structured;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.stream.IntStream;
import llmc.formats.BadInputException;
import llmc.formats.Checkpoint;
import llmc.formats.InvalidSettingException;
import llmc.formats.ModelConfig;
import llmc.formats.SafetensorsWriter;
import llmc.formats.TensorInfo;
import llmc.model.Linear;
import llmc.model.LlamaFamily;
import llmc.model.TensorNames;
import llmc.model.Weights;

/**
 * Structured pruning (PROTOCOLS.md, "Sparsity patterns"): whole MLP channels, whole attention heads
 * or whole decoder layers are removed and the model written is physically smaller, with a {@code
 * config.json} that says so.
 *
 * <p>A group's score is the sum of its members' scores (LLM-Pruner's "param_first"), or the
 * absolute value of the sum of signed member scores ("vectorize", for Taylor's {@code |sum g w|}).
 * The members:
 *
 * <ul>
 *   <li>MLP channel {@code j} of a layer: row {@code j} of gate and up, column {@code j} of down;
 *   <li>key/value group {@code g} (GQA: a key/value head goes only with all its query heads): rows
 *       of k and v of head {@code g}, rows of q of its {@code heads / kvHeads} query heads, and
 *       those heads' columns of o;
 *   <li>layer: all seven matrices.
 * </ul>
 *
 * Every layer loses the same number of channels (or heads), since {@code config.json} has one
 * {@code intermediate_size} (one head count); which ones differs per layer. Equal scores: the later
 * group goes.
 */
public final class Structured {

  /** What is removed. */
  public enum Structure {
    CHANNELS,
    HEADS,
    LAYERS
  }

  /** How a group's score follows from its members' scores. */
  public enum GroupReduce {
    /** Sum of the members' (non-negative) scores. */
    SUM,
    /** {@code |sum|} of signed member scores (Taylor "vectorize"). */
    ABS_OF_SUM
  }

  /** Per-weight scores of a linear weight, {@code [out][in]} like the weight. */
  public interface ElementScores {
    float[] of(int layer, Linear linear);
  }

  /**
   * What survives, in the original numbering.
   *
   * @param layers kept layers, ascending
   * @param channels per original layer, the kept MLP channels ascending (null for dropped layers)
   * @param kvHeads per original layer, the kept key/value heads ascending (null for dropped layers)
   */
  public record Survivors(int[] layers, int[][] channels, int[][] kvHeads) {

    public int keptChannels() {
      return channels[layers[0]].length;
    }

    public int keptKvHeads() {
      return kvHeads[layers[0]].length;
    }
  }

  private Structured() {}

  /** Scores of the MLP channels of one layer: {@code [intermediate]}. */
  public static double[] channelScores(
      LlamaFamily f, ElementScores s, int layer, GroupReduce reduce) {
    int inter = f.intermediate();
    int hidden = f.hidden();
    float[] gate = s.of(layer, Linear.GATE);
    float[] up = s.of(layer, Linear.UP);
    float[] down = s.of(layer, Linear.DOWN); // [hidden][inter]
    double[] sums = new double[inter];
    for (int j = 0; j < inter; j++) {
      double sum = 0;
      for (int k = 0; k < hidden; k++) {
        sum += gate[j * hidden + k] + (double) up[j * hidden + k];
      }
      sums[j] = sum;
    }
    for (int n = 0; n < hidden; n++) {
      for (int j = 0; j < inter; j++) {
        sums[j] += down[n * inter + j];
      }
    }
    return reduce(sums, reduce);
  }

  /** Scores of the key/value groups of one layer: {@code [kvHeads]}. */
  public static double[] kvGroupScores(
      LlamaFamily f, ElementScores s, int layer, GroupReduce reduce) {
    int d = f.headDim();
    int hidden = f.hidden();
    int perGroup = f.groupSize();
    int qWidth = f.qWidth();
    float[] q = s.of(layer, Linear.Q); // [heads*d][hidden]
    float[] k = s.of(layer, Linear.K); // [kvHeads*d][hidden]
    float[] v = s.of(layer, Linear.V);
    float[] o = s.of(layer, Linear.O); // [hidden][heads*d]
    double[] sums = new double[f.kvHeads()];
    for (int g = 0; g < f.kvHeads(); g++) {
      double sum = 0;
      for (int r = g * d * hidden; r < (g + 1) * d * hidden; r++) {
        sum += k[r] + (double) v[r];
      }
      int qFrom = g * perGroup * d;
      int qTo = qFrom + perGroup * d;
      for (int r = qFrom * hidden; r < qTo * hidden; r++) {
        sum += q[r];
      }
      for (int n = 0; n < hidden; n++) {
        for (int c = qFrom; c < qTo; c++) {
          sum += o[n * qWidth + c];
        }
      }
      sums[g] = sum;
    }
    return reduce(sums, reduce);
  }

  /** The score of a whole layer. */
  public static double layerScore(ElementScores s, int layer, GroupReduce reduce) {
    double sum = 0;
    for (Linear linear : Linear.values()) {
      for (float x : s.of(layer, linear)) {
        sum += x;
      }
    }
    return reduce == GroupReduce.ABS_OF_SUM ? Math.abs(sum) : sum;
  }

  private static double[] reduce(double[] sums, GroupReduce reduce) {
    if (reduce == GroupReduce.ABS_OF_SUM) {
      for (int i = 0; i < sums.length; i++) {
        sums[i] = Math.abs(sums[i]);
      }
    }
    return sums;
  }

  /** The {@code keep} highest-scored indices, ascending; equal scores keep the earlier index. */
  static int[] keepHighest(double[] scores, int keep) {
    Integer[] order = IntStream.range(0, scores.length).boxed().toArray(Integer[]::new);
    Arrays.sort(
        order, Comparator.<Integer>comparingDouble(i -> -scores[i]).thenComparingInt(i -> i));
    int[] kept = new int[keep];
    for (int i = 0; i < keep; i++) {
      kept[i] = order[i];
    }
    Arrays.sort(kept);
    return kept;
  }

  /**
   * Chooses what survives: {@code round(sparsity * count)} groups of the lowest scores go (per
   * layer for channels and heads); for layers, {@code dropLayers} (when not null) names them
   * instead of the scores.
   */
  public static Survivors choose(
      LlamaFamily f,
      ElementScores s,
      Structure structure,
      double sparsity,
      GroupReduce reduce,
      int[] dropLayers) {
    int layers = f.layers();
    int[][] channels = new int[layers][];
    int[][] kvHeads = new int[layers][];
    int[] all = IntStream.range(0, f.intermediate()).toArray();
    int[] allKv = IntStream.range(0, f.kvHeads()).toArray();
    int[] keptLayers = IntStream.range(0, layers).toArray();
    switch (structure) {
      case CHANNELS -> {
        int keep = f.intermediate() - (int) Math.round(sparsity * f.intermediate());
        if (keep < 1) {
          throw new InvalidSettingException(
              "{sparsity} %s would remove every MLP channel", sparsity);
        }
        for (int i = 0; i < layers; i++) {
          channels[i] = keepHighest(channelScores(f, s, i, reduce), keep);
          kvHeads[i] = allKv;
        }
      }
      case HEADS -> {
        int keep = f.kvHeads() - (int) Math.round(sparsity * f.kvHeads());
        if (keep < 1 || keep == f.kvHeads()) {
          throw new InvalidSettingException(
              "{sparsity} %s of %s key/value head groups (%s query heads each) removes %s; give a"
                  + " sparsity that removes at least one group and keeps one",
              sparsity, f.kvHeads(), f.groupSize(), f.kvHeads() - keep);
        }
        for (int i = 0; i < layers; i++) {
          kvHeads[i] = keepHighest(kvGroupScores(f, s, i, reduce), keep);
          channels[i] = all;
        }
      }
      case LAYERS -> {
        if (dropLayers != null) {
          List<Integer> kept = new ArrayList<>();
          for (int i = 0; i < layers; i++) {
            final int layer = i;
            if (Arrays.stream(dropLayers).noneMatch(x -> x == layer)) {
              kept.add(i);
            }
          }
          for (int x : dropLayers) {
            if (x < 0 || x >= layers) {
              throw new InvalidSettingException(
                  "{dropLayers} %s: the model has layers 0..%s", x, layers - 1);
            }
          }
          keptLayers = kept.stream().mapToInt(Integer::intValue).toArray();
        } else {
          double[] scores = new double[layers];
          for (int i = 0; i < layers; i++) {
            scores[i] = layerScore(s, i, reduce);
          }
          keptLayers = keepHighest(scores, layers - (int) Math.round(sparsity * layers));
        }
        if (keptLayers.length == 0 || keptLayers.length == layers) {
          throw new BadInputException(
              "layer pruning must remove at least one layer and keep one (kept "
                  + keptLayers.length
                  + " of "
                  + layers
                  + ")");
        }
        for (int i : keptLayers) {
          channels[i] = all;
          kvHeads[i] = allKv;
        }
      }
    }
    return new Survivors(keptLayers, channels, kvHeads);
  }

  /**
   * The smaller model's {@code config.json}: layers, intermediate size, head counts and an explicit
   * head_dim.
   */
  public static ModelConfig config(ModelConfig in, LlamaFamily f, Survivors s) {
    int kv = s.keptKvHeads();
    return in.with(
        json -> {
          json.put("num_hidden_layers", s.layers().length);
          json.put("intermediate_size", s.keptChannels());
          json.put("num_key_value_heads", kv);
          json.put("num_attention_heads", kv * f.groupSize());
          json.put("head_dim", f.headDim());
        });
  }

  /**
   * Writes every tensor of the smaller model: kept layers renumbered from 0, their q/k/v rows (and
   * biases), o columns, gate/up rows and down columns sliced to the survivors, everything else as
   * it is.
   */
  public static void write(
      LlamaFamily f, Weights weights, Checkpoint checkpoint, Survivors s, SafetensorsWriter out) {
    int[] newIndex = new int[f.layers()];
    Arrays.fill(newIndex, -1);
    for (int i = 0; i < s.layers().length; i++) {
      newIndex[s.layers()[i]] = i;
    }
    for (String name : checkpoint.names()) {
      TensorInfo info = checkpoint.info(name);
      if (!name.startsWith("model.layers.")) {
        out.write(name, info.dtype(), info.shape(), checkpoint.bytes(name));
        continue;
      }
      int dot = name.indexOf('.', "model.layers.".length());
      int layer = Integer.parseInt(name.substring("model.layers.".length(), dot));
      if (newIndex[layer] < 0) {
        continue;
      }
      String rest = name.substring(dot + 1);
      String renamed = TensorNames.layer(newIndex[layer]) + rest;
      int[] rows = null;
      int[] cols = null;
      int[] qRows = headRows(s.kvHeads()[layer], f.groupSize(), f.headDim());
      int[] kvRows = headRows(s.kvHeads()[layer], 1, f.headDim());
      if (rest.startsWith("self_attn.q_proj.")) {
        rows = qRows;
      } else if (rest.startsWith("self_attn.k_proj.") || rest.startsWith("self_attn.v_proj.")) {
        rows = kvRows;
      } else if (rest.equals("self_attn.o_proj.weight")) {
        cols = qRows;
      } else if (rest.startsWith("mlp.gate_proj.") || rest.startsWith("mlp.up_proj.")) {
        rows = s.channels()[layer];
      } else if (rest.equals("mlp.down_proj.weight")) {
        cols = s.channels()[layer];
      }
      if (rows == null && cols == null) {
        out.write(renamed, info.dtype(), info.shape(), checkpoint.bytes(name));
        continue;
      }
      long[] shape = info.shape();
      float[] values = weights.floats(name);
      int width = shape.length == 1 ? 1 : (int) shape[1];
      int height = (int) shape[0];
      int[] keepRows = rows != null ? rows : IntStream.range(0, height).toArray();
      int[] keepCols = cols != null ? cols : IntStream.range(0, width).toArray();
      float[] sliced = new float[keepRows.length * keepCols.length];
      for (int r = 0; r < keepRows.length; r++) {
        for (int c = 0; c < keepCols.length; c++) {
          sliced[r * keepCols.length + c] = values[keepRows[r] * width + keepCols[c]];
        }
      }
      long[] newShape =
          shape.length == 1
              ? new long[] {keepRows.length}
              : new long[] {keepRows.length, keepCols.length};
      out.writeFloats(renamed, info.dtype(), newShape, sliced);
    }
  }

  /**
   * The rows of the heads of the kept groups: group g holds heads {@code g*perGroup ..}, each
   * {@code d} rows.
   */
  static int[] headRows(int[] groups, int perGroup, int d) {
    int[] rows = new int[groups.length * perGroup * d];
    int at = 0;
    for (int g : groups) {
      for (int r = g * perGroup * d; r < (g + 1) * perGroup * d; r++) {
        rows[at++] = r;
      }
    }
    return rows;
  }

  /** Parameters of the linear layers that survive (for the report). */
  public static long linearParameters(LlamaFamily f, Survivors s) {
    long hidden = f.hidden();
    long q = (long) s.keptKvHeads() * f.groupSize() * f.headDim();
    long kv = (long) s.keptKvHeads() * f.headDim();
    long inter = s.keptChannels();
    return s.layers().length * (hidden * q * 2 + hidden * kv * 2 + hidden * inter * 3);
  }
}
