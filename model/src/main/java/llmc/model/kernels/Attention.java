package llmc.model.kernels;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * Causal scaled dot-product attention with grouped keys and values (GQA: query head h reads
 * key/value head {@code h / (heads / kvHeads)}), optionally within a sliding window, on Java
 * arrays. Queries go in blocks of {@link #QUERY_BLOCK}; a block reads only the keys its last query
 * can see, which skips almost half the work of a full window. Per (batch, head, block): {@code P =
 * softmax(Q K^T / sqrt(d) + mask)}, {@code O = P V}, both products on {@link Gemm}.
 */
public final class Attention {
  private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
  private static final int L = S.length();
  static final int QUERY_BLOCK = 64;
  private static final ThreadLocal<float[][]> SCORES =
      ThreadLocal.withInitial(() -> new float[1][0]);

  private Attention() {}

  /**
   * Where the keys and values of each batch row are: key s of row b, head g at {@code b *
   * batchStride + s * kvHeads * d + g * d}.
   */
  public record KeyValues(float[] keys, float[] values, int batchStride, int length) {}

  /**
   * @param q {@code [B][T][heads * d]}, the queries of positions {@code start .. start + T - 1}
   * @param kv keys and values of positions {@code 0 .. kv.length - 1} ({@code kv.length = start +
   *     T})
   * @param window sliding window (a query at p sees keys p - window + 1 .. p), or 0 for none
   * @param out {@code [B][T][heads * d]}, overwritten, or null for a new array
   * @return {@code out}
   */
  public static float[] causal(
      float[] q,
      KeyValues kv,
      int batch,
      int count,
      int start,
      int heads,
      int kvHeads,
      int d,
      int window,
      float[] out) {
    int keys = kv.length();
    int kvWidth = kvHeads * d;
    int qWidth = heads * d;
    int group = heads / kvHeads;
    // K^T per (batch, kv head): [d][keys], so that Q K^T streams contiguous rows.
    float[] kT = new float[batch * kvHeads * d * keys];
    for (int b = 0; b < batch; b++) {
      for (int s = 0; s < keys; s++) {
        int src = b * kv.batchStride() + s * kvWidth;
        for (int g = 0; g < kvHeads; g++) {
          int dst = (b * kvHeads + g) * d * keys + s;
          for (int i = 0; i < d; i++) {
            kT[dst + i * keys] = kv.keys()[src + g * d + i];
          }
        }
      }
    }
    float[] o = out == null ? new float[batch * count * qWidth] : out;
    java.util.Arrays.fill(o, 0, batch * count * qWidth, 0f);
    float scale = (float) (1.0 / Math.sqrt(d));
    int blocks = (count + QUERY_BLOCK - 1) / QUERY_BLOCK;
    // Larger (later) blocks first, so that the last tasks to start are the short ones.
    Parallel.forEach(
        batch * heads * blocks,
        t -> {
          int blk = blocks - 1 - t % blocks;
          int h = (t / blocks) % heads;
          int b = t / (blocks * heads);
          int g = h / group;
          int from = blk * QUERY_BLOCK;
          int rows = Math.min(count, from + QUERY_BLOCK) - from;
          int visible = Math.min(keys, start + from + rows); // keys [0, visible) can be seen
          int first =
              window > 0 ? Math.max(0, start + from - window + 1) : 0; // and none before first
          int n = visible - first;
          float[][] scratch = SCORES.get();
          if (scratch[0].length < rows * n) {
            scratch[0] = new float[QUERY_BLOCK * Math.max(n, keys)];
          }
          float[] p = scratch[0];
          java.util.Arrays.fill(p, 0, rows * n, 0f);
          int qOff = (b * count + from) * qWidth + h * d;
          Gemm.multiplyAdd(
              scale,
              q,
              qOff,
              qWidth,
              1,
              kT,
              (b * kvHeads + g) * d * keys + first,
              keys,
              p,
              0,
              n,
              rows,
              n,
              d);
          for (int r = 0; r < rows; r++) {
            int position = start + from + r;
            int lo = window > 0 ? Math.max(0, position - window + 1) - first : 0;
            int hi = Math.min(position, visible - 1) - first + 1; // visible: [lo, hi)
            softmax(p, r * n, lo, hi, n);
          }
          int oOff = (b * count + from) * qWidth + h * d;
          Gemm.multiplyAdd(
              1f,
              p,
              0,
              n,
              1,
              kv.values(),
              b * kv.batchStride() + first * kvWidth + g * d,
              kvWidth,
              o,
              oOff,
              qWidth,
              rows,
              d,
              n);
        });
    return o;
  }

  /** Row {@code p[off .. off + n)}: softmax over {@code [lo, hi)}, zero elsewhere. */
  private static void softmax(float[] p, int off, int lo, int hi, int n) {
    java.util.Arrays.fill(p, off, off + lo, 0f);
    java.util.Arrays.fill(p, off + hi, off + n, 0f);
    // the largest score, a vector at a time (max is exact, so the order does not matter)
    FloatVector lanes = FloatVector.broadcast(S, Float.NEGATIVE_INFINITY);
    int k = lo;
    for (; k + L <= hi; k += L) {
      lanes = lanes.max(FloatVector.fromArray(S, p, off + k));
    }
    float max = lanes.reduceLanes(VectorOperators.MAX);
    for (; k < hi; k++) {
      max = Math.max(max, p[off + k]);
    }
    FloatVector vmax = FloatVector.broadcast(S, max);
    FloatVector acc = FloatVector.zero(S);
    int j = lo;
    for (; j + L <= hi; j += L) {
      FloatVector e = Ops.exp(FloatVector.fromArray(S, p, off + j).sub(vmax));
      e.intoArray(p, off + j);
      acc = acc.add(e);
    }
    float sum = Ops.sum(acc);
    for (; j < hi; j++) {
      float e = Ops.exp(p[off + j] - max);
      p[off + j] = e;
      sum += e;
    }
    float inv = 1f / sum;
    j = lo;
    for (; j + L <= hi; j += L) {
      FloatVector.fromArray(S, p, off + j).mul(inv).intoArray(p, off + j);
    }
    for (; j < hi; j++) {
      p[off + j] *= inv;
    }
  }
}
