package llmc.quantize;

import java.util.function.BiFunction;
import llmc.calibration.CompressedMatrix;
import llmc.calibration.InputStatistics;
import llmc.calibration.MatrixCompressor;
import llmc.model.Linear;

/**
 * GPTQ as a {@link MatrixCompressor}: each matrix quantized with the Hessian {@code H = 2/n X^T X}
 * of its input, on the grid {@code schemeOf} gives it (null: left as it is).
 */
public final class GptqCompressor implements MatrixCompressor {
  private final BiFunction<Integer, Linear, QuantScheme> schemeOf;
  private final double dampPercent;
  private final int blockSize;
  private final boolean actOrder;
  private final boolean staticGroups;

  public GptqCompressor(
      BiFunction<Integer, Linear, QuantScheme> schemeOf,
      double dampPercent,
      int blockSize,
      boolean actOrder,
      boolean staticGroups) {
    this.schemeOf = schemeOf;
    this.dampPercent = dampPercent;
    this.blockSize = blockSize;
    this.actOrder = actOrder;
    this.staticGroups = staticGroups;
  }

  @Override
  public boolean compresses(int layer, Linear linear) {
    return schemeOf.apply(layer, linear) != null;
  }

  @Override
  public boolean needsStatistics() {
    return true;
  }

  @Override
  public CompressedMatrix compress(
      int layer, Linear linear, float[] weight, int rows, int cols, InputStatistics stats) {
    Gptq.Result r =
        Gptq.quantizeInPlace(
            weight,
            rows,
            cols,
            stats.hessianToChange(),
            new Gptq.Options(
                schemeOf.apply(layer, linear), dampPercent, blockSize, actOrder, staticGroups));
    return CompressedMatrix.quantized(
        r.quantized(), r.seconds(), r.loss(), null, r.damp(), r.fellBackToRtn(), r.warning());
  }
}
