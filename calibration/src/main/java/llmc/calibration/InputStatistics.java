package llmc.calibration;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;

/**
 * The second moment of one activation over the calibration tokens: {@code S = sum_t x_t x_t^T}
 * ({@code [in, in]}), from which GPTQ's Hessian {@code H = 2/n S} and Wanda's input column norms
 * {@code ||X_j||^2 = S_jj} follow. Accumulated in float32 by the runtime's matrix product.
 */
public final class InputStatistics implements AutoCloseable {
  private final int width;
  private final NDManager manager;
  private NDArray sum;   // [in, in]
  private long tokens;

  public InputStatistics(NDManager parent, int width) {
    this.width = width;
    this.manager = parent.newSubManager();
  }

  /** Adds the rows of {@code x [.., in]}. */
  public void add(NDArray x) {
    try (NDManager scope = manager.newSubManager()) {
      x.tempAttach(scope);   // the views made here (which keep x's storage alive) die with the scope
      NDArray rows = x.reshape(-1, width);
      NDArray gram = rows.transpose().matMul(rows);
      if (sum == null) {
        sum = gram;
        sum.attach(manager);
      } else {
        sum.addi(gram);
      }
    }
    tokens += x.getShape().size() / width;
  }

  /** Restores statistics saved with {@link #sum()} and {@link #tokens()}. */
  public static InputStatistics of(NDManager parent, int width, float[] sum, long tokens) {
    InputStatistics s = new InputStatistics(parent, width);
    s.sum = s.manager.create(sum, new Shape(width, width));
    s.tokens = tokens;
    return s;
  }

  public int width() {
    return width;
  }

  public long tokens() {
    return tokens;
  }

  /** {@code S = sum_t x_t x_t^T}, {@code [in][in]} row-major. */
  public float[] sum() {
    return sum.toFloatArray();
  }

  /** GPTQ's Hessian of the layer-wise squared error: {@code H = 2/n sum_t x_t x_t^T}, {@code [in][in]}. */
  public float[] hessian() {
    float[] h = sum();
    float scale = (float) (2.0 / tokens);
    for (int i = 0; i < h.length; i++) {
      h[i] *= scale;
    }
    return h;
  }

  /** {@code ||X_j||_2^2 = sum_t x_tj^2}, {@code [in]}. */
  public double[] columnSquaredNorms() {
    float[] s = sum();
    double[] norms = new double[width];
    for (int j = 0; j < width; j++) {
      norms[j] = s[j * width + j];
    }
    return norms;
  }

  @Override
  public void close() {
    manager.close();
  }
}
