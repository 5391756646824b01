package llmc.model;

/**
 * A deliberately plain Llama-family forward in Java (no DJL, no tricks), for cross-checking the DJL
 * runtime in tests. One sequence, no cache; everything in float64 accumulators.
 */
final class ReferenceLlama {
  private final LlamaFamily f;
  private final Weights weights;

  ReferenceLlama(LlamaFamily f, Weights weights) {
    this.f = f;
    this.weights = weights;
  }

  /** tokens {@code [T]} to logits {@code [T][V]}. */
  float[][] logits(int[] tokens) {
    int count = tokens.length;
    int hidden = f.hidden();
    float[] embed = weights.floats(TensorNames.EMBED);
    float[][] x = new float[count][hidden];
    for (int t = 0; t < count; t++) {
      System.arraycopy(embed, tokens[t] * hidden, x[t], 0, hidden);
    }
    for (int i = 0; i < f.layers(); i++) {
      x = layer(LayerWeights.load(weights, f, i), x);
    }
    float[] norm = weights.floats(TensorNames.FINAL_NORM);
    float[] head =
        weights.contains(TensorNames.LM_HEAD) && !f.tiedEmbeddings()
            ? weights.floats(TensorNames.LM_HEAD)
            : embed;
    float[][] logits = new float[count][];
    for (int t = 0; t < count; t++) {
      logits[t] = matVec(head, f.vocab(), hidden, rmsNorm(x[t], norm), null);
    }
    return logits;
  }

  private float[][] layer(LayerWeights w, float[][] x) {
    int count = x.length;
    int d = f.headDim();
    int half = d / 2;
    double[] invFreq = Rope.inverseFrequencies(f.rope(), d);
    float[][] q = new float[count][];
    float[][] k = new float[count][];
    float[][] v = new float[count][];
    for (int t = 0; t < count; t++) {
      float[] h = rmsNorm(x[t], w.inputNorm());
      q[t] = linear(w, Linear.Q, h);
      k[t] = linear(w, Linear.K, h);
      v[t] = linear(w, Linear.V, h);
      for (int head = 0; head < f.heads(); head++) {
        rotate(q[t], head * d, t, invFreq, w.qNorm());
      }
      for (int head = 0; head < f.kvHeads(); head++) {
        rotate(k[t], head * d, t, invFreq, w.kNorm());
      }
    }
    float[][] out = new float[count][];
    for (int t = 0; t < count; t++) {
      float[] attended = new float[f.qWidth()];
      for (int head = 0; head < f.heads(); head++) {
        int kvHead = head / f.groupSize();
        double[] scores = new double[t + 1];
        double max = Double.NEGATIVE_INFINITY;
        for (int j = 0; j <= t; j++) {
          boolean visible = f.slidingWindow() <= 0 || t - j < f.slidingWindow();
          double s = 0;
          for (int e = 0; e < d; e++) {
            s += (double) q[t][head * d + e] * k[j][kvHead * d + e];
          }
          scores[j] = visible ? s / Math.sqrt(d) : Double.NEGATIVE_INFINITY;
          max = Math.max(max, scores[j]);
        }
        double sum = 0;
        for (int j = 0; j <= t; j++) {
          scores[j] = Math.exp(scores[j] - max);
          sum += scores[j];
        }
        for (int e = 0; e < d; e++) {
          double acc = 0;
          for (int j = 0; j <= t; j++) {
            acc += scores[j] / sum * v[j][kvHead * d + e];
          }
          attended[head * d + e] = (float) acc;
        }
      }
      float[] residual = add(x[t], linear(w, Linear.O, attended));
      float[] h = rmsNorm(residual, w.postAttentionNorm());
      float[] gate = linear(w, Linear.GATE, h);
      float[] up = linear(w, Linear.UP, h);
      float[] act = new float[gate.length];
      for (int j = 0; j < act.length; j++) {
        act[j] = (float) (gate[j] / (1 + Math.exp(-gate[j])) * up[j]);
      }
      out[t] = add(residual, linear(w, Linear.DOWN, act));
    }
    return out;
  }

  /**
   * Optional per-head RMSNorm (Qwen3), then RoPE of one head starting at {@code offset}, in place.
   */
  private void rotate(float[] vec, int offset, int position, double[] invFreq, float[] headNorm) {
    int d = f.headDim();
    int half = d / 2;
    if (headNorm != null) {
      float[] head = new float[d];
      System.arraycopy(vec, offset, head, 0, d);
      System.arraycopy(rmsNorm(head, headNorm), 0, vec, offset, d);
    }
    for (int i = 0; i < half; i++) {
      double angle = position * invFreq[i];
      double c = Math.cos(angle);
      double s = Math.sin(angle);
      double x1 = vec[offset + i];
      double x2 = vec[offset + i + half];
      vec[offset + i] = (float) (x1 * c - x2 * s);
      vec[offset + i + half] = (float) (x2 * c + x1 * s);
    }
  }

  private float[] linear(LayerWeights w, Linear linear, float[] x) {
    return matVec(
        w.weight().get(linear),
        linear.outFeatures(f),
        linear.inFeatures(f),
        x,
        w.bias().get(linear));
  }

  private static float[] matVec(float[] m, int rows, int cols, float[] x, float[] bias) {
    float[] y = new float[rows];
    for (int r = 0; r < rows; r++) {
      double acc = bias == null ? 0 : bias[r];
      for (int c = 0; c < cols; c++) {
        acc += (double) m[r * cols + c] * x[c];
      }
      y[r] = (float) acc;
    }
    return y;
  }

  private float[] rmsNorm(float[] x, float[] w) {
    double sumSquares = 0;
    for (float value : x) {
      sumSquares += (double) value * value;
    }
    double inverse = 1 / Math.sqrt(sumSquares / x.length + f.rmsNormEps());
    float[] y = new float[x.length];
    for (int i = 0; i < x.length; i++) {
      y[i] = (float) (x[i] * inverse * w[i]);
    }
    return y;
  }

  private static float[] add(float[] a, float[] b) {
    float[] c = new float[a.length];
    for (int i = 0; i < a.length; i++) {
      c[i] = a[i] + b[i];
    }
    return c;
  }
}
