package llmc.calibration;

import java.util.EnumMap;
import java.util.LinkedHashMap;
import java.util.Map;
import llmc.formats.Floats;
import llmc.formats.QuantizedTensor;
import llmc.model.Linear;
import llmc.model.LlamaFamily;
import llmc.model.TensorNames;
import llmc.model.Weights;

/**
 * Folds per-input-feature scales into the operation that makes the input (AWQ, SmoothQuant). A
 * matrix that reads {@code x} is stored as {@code W diag(s)}; the input must then become {@code x /
 * s}, which the operation before gives when its output features are divided by {@code s}:
 *
 * <ul>
 *   <li>(q, k, v) read {@code RMSNorm(h) * g}: the input norm's weight becomes {@code g / s};
 *   <li>(gate, up) likewise with the post-attention norm's weight;
 *   <li>o reads the attention heads {@code P V}, linear in {@code v_proj}'s rows: row {@code r} of
 *       {@code v_proj} is divided by the scale of the o-input features it makes ({@code s} is equal
 *       over the query heads that share a key/value head, else no row division could give it);
 *   <li>down reads {@code silu(gate) * up}: row {@code r} of {@code up_proj} is divided by {@code
 *       s_r}.
 * </ul>
 *
 * A quantized row is divided through its scales (and float offsets): the codes stay, and each new
 * scale is rounded to the scales' dtype again.
 */
public final class ScaleFold {
  private ScaleFold() {}

  /**
   * Whether scales of {@code input} can be folded in a layer: always into a norm; into {@code
   * v_proj}'s rows only when it is compressed and has no bias (which would need dividing too), into
   * {@code up_proj}'s when it is compressed.
   */
  public static boolean canFold(
      int layer,
      Linear.Input input,
      java.util.function.BiPredicate<Integer, Linear> compressed,
      java.util.function.BiPredicate<Integer, Linear> hasBias) {
    return switch (input) {
      case ATTN_IN, MLP_IN -> true;
      case ATTN_OUT -> compressed.test(layer, Linear.V) && !hasBias.test(layer, Linear.V);
      case MLP_OUT -> compressed.test(layer, Linear.UP);
    };
  }

  /**
   * Calls {@code group} with the indices of o's input features made by one {@code v_proj} row: for
   * each key/value head and feature {@code d}, feature {@code d} of every query head of its group.
   * Scales of o's input must be equal within each such group.
   */
  public static void forEachTiedGroup(LlamaFamily f, java.util.function.Consumer<int[]> group) {
    int perKv = f.heads() / f.kvHeads();
    int d = f.headDim();
    for (int kv = 0; kv < f.kvHeads(); kv++) {
      for (int j = 0; j < d; j++) {
        int[] indices = new int[perKv];
        for (int h = 0; h < perKv; h++) {
          indices[h] = (kv * perKv + h) * d + j;
        }
        group.accept(indices);
      }
    }
  }

  /** The matrix whose rows make an input, or null when a norm's weight does. */
  static Linear rowTarget(Linear.Input input) {
    return switch (input) {
      case ATTN_IN, MLP_IN -> null;
      case ATTN_OUT -> Linear.V;
      case MLP_OUT -> Linear.UP;
    };
  }

  /** The norm weight whose features make an input, or null when a matrix's rows do. */
  static String normTarget(Linear.Input input, int layer) {
    return switch (input) {
      case ATTN_IN -> TensorNames.inputNorm(layer);
      case MLP_IN -> TensorNames.postAttentionNorm(layer);
      case ATTN_OUT, MLP_OUT -> null;
    };
  }

  /**
   * Applies every input's scales of a finished layer: {@code done}'s v and up matrices are replaced
   * by their divided rows (they must be in it), and the divided norm weights are returned by name.
   */
  static Map<String, float[]> fold(
      LlamaFamily family,
      Weights weights,
      int layer,
      Map<Linear.Input, float[]> scales,
      Map<Linear, CompressedMatrix> done) {
    Map<String, float[]> vectors = new LinkedHashMap<>();
    Map<Linear, CompressedMatrix> divided = new EnumMap<>(Linear.class);
    for (Map.Entry<Linear.Input, float[]> e : scales.entrySet()) {
      float[] s = e.getValue();
      String norm = normTarget(e.getKey(), layer);
      if (norm != null) {
        float[] g = weights.floats(norm);
        for (int j = 0; j < g.length; j++) {
          g[j] /= s[j];
        }
        vectors.put(norm, g);
        continue;
      }
      Linear target = rowTarget(e.getKey());
      CompressedMatrix c = done.get(target);
      if (c == null) {
        throw new IllegalStateException(
            target.moduleName(layer) + " was not compressed, so the scales cannot be folded in it");
      }
      float[] rowScales = e.getKey() == Linear.Input.ATTN_OUT ? valueRows(family, s) : s;
      divided.put(target, divideRows(c, rowScales));
    }
    done.replaceAll((linear, c) -> divided.getOrDefault(linear, c));
    return vectors;
  }

  /**
   * The scale of each {@code v_proj} row from o's input scales {@code [heads * headDim]}: row
   * {@code kv * headDim + d} makes feature {@code d} of every query head of group {@code kv}.
   */
  static float[] valueRows(LlamaFamily f, float[] s) {
    int group = f.heads() / f.kvHeads();
    float[] rows = new float[f.kvWidth()];
    for (int kv = 0; kv < f.kvHeads(); kv++) {
      for (int d = 0; d < f.headDim(); d++) {
        float first = s[kv * group * f.headDim() + d];
        for (int h = 1; h < group; h++) {
          if (s[(kv * group + h) * f.headDim() + d] != first) {
            throw new IllegalArgumentException(
                "o_proj's input scales differ between query heads that share key/value head " + kv);
          }
        }
        rows[kv * f.headDim() + d] = first;
      }
    }
    return rows;
  }

  /** {@code diag(1/s) W}: the matrix with row {@code r} divided by {@code s[r]}. */
  static CompressedMatrix divideRows(CompressedMatrix c, float[] s) {
    QuantizedTensor q = c.quantized();
    // values held beside the codes only when they differ from the codes' dequantization
    float[] w = q != null && c.valuesAreCodes() ? null : c.weight().clone();
    if (w != null) {
      int cols = w.length / s.length;
      for (int i = 0; i < w.length; i++) {
        w[i] /= s[i / cols];
      }
    }
    if (q != null) {
      int rows = q.rows();
      float[] scales = q.scales().clone();
      float[] mins = q.mins() == null ? null : q.mins().clone();
      for (int i = 0; i < scales.length; i++) {
        scales[i] = Floats.round(scales[i] / s[i % rows], q.scaleDtype());
        if (mins != null) {
          mins[i] = Floats.round(mins[i] / s[i % rows], q.scaleDtype());
        }
      }
      q =
          new QuantizedTensor(
              rows,
              q.cols(),
              q.bits(),
              q.groupSize(),
              q.symmetric(),
              q.codes(),
              scales,
              q.zeros(),
              q.gIdx(),
              q.scaleDtype(),
              mins,
              q.levels());
    }
    return new CompressedMatrix(
        w, q, c.seconds(), c.gptqLoss(), c.weightMse(), c.damp(), c.fellBackToRtn(), c.warning());
  }
}
