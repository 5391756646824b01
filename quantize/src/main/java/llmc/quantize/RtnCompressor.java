package llmc.quantize;

import java.util.function.BiFunction;
import llmc.calibration.CompressedMatrix;
import llmc.calibration.InputStatistics;
import llmc.calibration.MatrixCompressor;
import llmc.model.Linear;

/**
 * Round to nearest as a {@link MatrixCompressor}: no statistics, each matrix on the grid {@code
 * schemeOf} gives it (null: left as it is), optionally with the MSE clipping search.
 */
public final class RtnCompressor implements MatrixCompressor {
  private final BiFunction<Integer, Linear, QuantScheme> schemeOf;
  private final Rtn.Clip clip;

  public RtnCompressor(BiFunction<Integer, Linear, QuantScheme> schemeOf, Rtn.Clip clip) {
    this.schemeOf = schemeOf;
    this.clip = clip;
  }

  @Override
  public boolean compresses(int layer, Linear linear) {
    return schemeOf.apply(layer, linear) != null;
  }

  @Override
  public boolean needsStatistics() {
    return false;
  }

  @Override
  public CompressedMatrix compress(
      int layer, Linear linear, float[] weight, int rows, int cols, InputStatistics stats) {
    long start = System.nanoTime();
    var q = Rtn.quantize(weight, rows, cols, schemeOf.apply(layer, linear), clip);
    double seconds = (System.nanoTime() - start) / 1e9;
    return CompressedMatrix.quantized(q, seconds, null, mse(weight, q), null, false, null);
  }

  /** Mean squared difference of {@code w} and {@code q}'s values, without making them. */
  static double mse(float[] w, llmc.formats.QuantizedTensor q) {
    double sum = 0;
    int cols = q.cols();
    for (int n = 0; n < q.rows(); n++) {
      for (int k = 0; k < cols; k++) {
        double d = w[n * cols + k] - q.value(n, k);
        sum += d * d;
      }
    }
    return sum / w.length;
  }
}
