package llmc.calibration;

import llmc.formats.QuantizedTensor;
import llmc.model.kernels.WeightMatrix;

/**
 * What a {@link MatrixCompressor} made of one matrix: the values the model computes with from now
 * on ({@code [out][in]}), the stored codes when quantized, and what the method measured.
 *
 * @param weight the new values, {@code [out][in]} row-major; null for a quantized matrix whose
 *     values are its codes dequantized ({@link #quantized(QuantizedTensor, double, Double, Double,
 *     Double, boolean, String)}: only the codes are held)
 * @param quantized the codes, scales and zeros to store, or null (pruned: stored as values)
 * @param gptqLoss GPTQ's loss {@code sum (w - q)^2 / d^2}, or null
 * @param weightMse RTN's mean squared weight error, or null
 * @param damp the dampening GPTQ finally used, or null
 * @param fellBackToRtn GPTQ could not factor the Hessian and rounded to nearest
 * @param warning a note for the report, or null
 */
public record CompressedMatrix(
    float[] weight,
    QuantizedTensor quantized,
    double seconds,
    Double gptqLoss,
    Double weightMse,
    Double damp,
    boolean fellBackToRtn,
    String warning) {

  public CompressedMatrix {
    if (weight == null && quantized == null) {
      throw new IllegalArgumentException("a compressed matrix needs its values or its codes");
    }
  }

  /**
   * A quantized matrix held as its codes alone (a quarter of its float32 values or less): its
   * values are {@code q.dequantize()}.
   */
  public static CompressedMatrix quantized(
      QuantizedTensor q,
      double seconds,
      Double gptqLoss,
      Double weightMse,
      Double damp,
      boolean fellBackToRtn,
      String warning) {
    return new CompressedMatrix(
        null, q, seconds, gptqLoss, weightMse, damp, fellBackToRtn, warning);
  }

  /**
   * The new values {@code [out][in]}: for a matrix held as its codes, dequantized anew on each call
   * (read them and let them go).
   */
  @Override
  public float[] weight() {
    return weight != null ? weight : quantized.dequantize();
  }

  /** Whether the values are the codes dequantized (always so when only the codes are held). */
  public boolean valuesAreCodes() {
    return quantized != null && (weight == null || quantized.dequantizesTo(weight));
  }

  /** The matrix as the kernels read it: its codes when only those are held, else its values. */
  public WeightMatrix matrix(int rows, int cols) {
    return weight == null
        ? new WeightMatrix.Codes(quantized)
        : new WeightMatrix.F32(weight, rows, cols);
  }

  /** A pruned (or otherwise changed, unquantized) matrix. */
  public static CompressedMatrix values(float[] weight, double seconds, String warning) {
    return new CompressedMatrix(weight, null, seconds, null, null, null, false, warning);
  }
}
