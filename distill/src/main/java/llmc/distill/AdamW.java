package llmc.distill;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * AdamW (Loshchilov and Hutter, decoupled weight decay), as PyTorch's {@code torch.optim.AdamW}:
 * {@code p -= lr wd p; m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2; p -= lr m_hat / (sqrt(v_hat)
 * + eps)} with {@code m_hat = m / (1 - b1^t)}, {@code v_hat = v / (1 - b2^t)}. Weight decay applies
 * to 2-D parameters only (matrices and embeddings, LoRA's adapters {@code A} and {@code B}; not
 * norms or biases).
 */
public final class AdamW {
  private final double beta1;
  private final double beta2;
  private final double eps;
  private final double weightDecay;

  /** First and second moments by parameter name, the shape of each parameter. */
  private final Map<String, NDArray> m = new LinkedHashMap<>();

  private final Map<String, NDArray> v = new LinkedHashMap<>();
  private long step;

  public AdamW(
      Map<String, NDArray> parameters,
      NDManager manager,
      double beta1,
      double beta2,
      double eps,
      double weightDecay) {
    this.beta1 = beta1;
    this.beta2 = beta2;
    this.eps = eps;
    this.weightDecay = weightDecay;
    parameters.forEach(
        (name, p) -> {
          m.put(name, manager.zeros(p.getShape()));
          v.put(name, manager.zeros(p.getShape()));
        });
  }

  /**
   * One update of every parameter from its gradient, at learning rate {@code lr}: in place, with
   * three temporaries of a parameter's size (PyTorch's {@code torch.optim.AdamW} order of
   * operations: {@code p -= lr m / c1 / (sqrt(v) / sqrt(c2) + eps)}).
   */
  public void step(Map<String, NDArray> parameters, double lr) {
    step++;
    double c1 = 1 - Math.pow(beta1, step);
    double c2 = 1 - Math.pow(beta2, step);
    for (Map.Entry<String, NDArray> e : parameters.entrySet()) {
      NDArray p = e.getValue();
      NDArray mi = m.get(e.getKey());
      NDArray vi = v.get(e.getKey());
      // Every temporary is closed here: arrays made from p live in p's manager for the whole run.
      try (NDArray g = p.getGradient()) {
        if (weightDecay > 0 && p.getShape().dimension() == 2) {
          p.muli((float) (1 - lr * weightDecay));
        }
        try (NDArray scaled = g.mul((float) (1 - beta1))) {
          mi.muli((float) beta1).addi(scaled);
        }
        try (NDArray squared = g.square()) {
          vi.muli((float) beta2).addi(squared.muli((float) (1 - beta2)));
        }
        try (NDArray denominator = vi.sqrt()) {
          denominator.divi((float) Math.sqrt(c2)).addi((float) eps);
          try (NDArray update = mi.div(denominator)) {
            p.subi(update.muli((float) (lr / c1)));
          }
        }
      }
    }
  }

  /** Sets every gradient to 0 (they accumulate over backward passes). */
  public static void zeroGradients(Map<String, NDArray> parameters) {
    for (NDArray p : parameters.values()) {
      try (NDArray g = p.getGradient()) {
        g.subi(g);
      }
    }
  }

  /**
   * Scales the gradients so that their global L2 norm is at most {@code maxNorm} (as PyTorch's
   * {@code clip_grad_norm_}: the norm of the parameters' norms); returns the norm before clipping.
   */
  public static double clipGradients(Map<String, NDArray> parameters, double maxNorm) {
    double norm;
    try (NDManager norms = parameters.values().iterator().next().getManager().newSubManager()) {
      NDList each = new NDList();
      for (NDArray p : parameters.values()) {
        try (NDArray g = p.getGradient()) {
          NDArray n = g.norm();
          n.attach(norms);
          each.add(n);
        }
      }
      norm = NDArrays.stack(each).norm().getFloat(); // one read-back
    }
    double coefficient = maxNorm / (norm + 1e-6);
    if (maxNorm > 0 && coefficient < 1) {
      for (NDArray p : parameters.values()) {
        try (NDArray g = p.getGradient()) {
          g.muli((float) coefficient);
        }
      }
    }
    return norm;
  }

  /** Steps taken. */
  public long steps() {
    return step;
  }

  /** The moments, for a checkpoint: {@code m.<name>} and {@code v.<name>}. */
  public Map<String, NDArray> state() {
    Map<String, NDArray> all = new LinkedHashMap<>();
    m.forEach((name, a) -> all.put("m." + name, a));
    v.forEach((name, a) -> all.put("v." + name, a));
    return all;
  }

  /** Restores moments and step count saved by a checkpoint. */
  public void restore(Map<String, float[]> state, long steps) {
    restore(m, "m.", state);
    restore(v, "v.", state);
    this.step = steps;
  }

  private static void restore(Map<String, NDArray> into, String prefix, Map<String, float[]> all) {
    into.forEach(
        (name, a) -> {
          float[] values = all.get(prefix + name);
          if (values == null || values.length != a.size()) {
            throw new IllegalStateException("checkpoint has no optimizer state for " + name);
          }
          a.set(values);
        });
  }
}
