package llmc.distill;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import llmc.model.kernels.Tensors;

/**
 * How far the student's temperature-softened distribution is from the teacher's, per scored
 * position (PROTOCOLS.md, "Distillation loss"). Inputs are log-probabilities {@code [N, V]}; the
 * result is {@code [N]}.
 */
public enum Divergence {
  /** {@code KL(p_t || p_s)}: the student covers everything the teacher predicts. */
  FORWARD_KL,
  /** {@code KL(p_s || p_t)}: the student concentrates on the teacher's modes. */
  REVERSE_KL,
  /**
   * Generalized Jensen-Shannon with weight b: {@code b KL(p_t || m) + (1 - b) KL(p_s || m)}, {@code
   * m = b p_t + (1 - b) p_s}.
   */
  JSD;

  /**
   * @param logPt the teacher's log-probabilities {@code [N, V]} (a constant)
   * @param logPs the student's log-probabilities {@code [N, V]}
   * @param jsdBeta b of {@link #JSD}
   * @return the divergence at each position, {@code [N]}
   */
  public NDArray of(NDArray logPt, NDArray logPs, double jsdBeta) {
    return switch (this) {
      case FORWARD_KL -> kl(logPt, logPs);
      case REVERSE_KL -> kl(logPs, logPt);
      case JSD -> {
        float b = (float) jsdBeta;
        NDManager m = logPs.getManager();
        // log m = log(b p_t + (1 - b) p_s), from the log-probabilities
        NDArray logM = logPt.exp().mul(b).add(logPs.exp().mul(Tensors.scalar(m, 1 - b))).log();
        yield kl(logPt, logM)
            .mul(Tensors.scalar(m, b))
            .add(kl(logPs, logM).mul(Tensors.scalar(m, 1 - b)));
      }
    };
  }

  /** {@code KL(p || q) = sum_v p (log p - log q)} per row. */
  private static NDArray kl(NDArray logP, NDArray logQ) {
    return logP.exp().mul(logP.sub(logQ)).sum(new int[] {-1});
  }

  /** {@code forward-kl}, {@code reverse-kl} or {@code jsd}. */
  public String label() {
    return name().toLowerCase().replace('_', '-');
  }
}
