package llmc.calibration;

import llmc.formats.QuantizedTensor;

/**
 * What a {@link MatrixCompressor} made of one matrix: the values the model computes with from now
 * on ({@code [out][in]}), the stored codes when quantized, and what the method measured.
 *
 * @param weight the new values, {@code [out][in]} row-major (dequantized when quantized)
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

  /** A pruned (or otherwise changed, unquantized) matrix. */
  public static CompressedMatrix values(float[] weight, double seconds, String warning) {
    return new CompressedMatrix(weight, null, seconds, null, null, null, false, warning);
  }
}
