package llmc.formats;

/**
 * A weight matrix {@code [rows = out_features N, cols = in_features K]} on the integer grid of
 * PROTOCOLS.md: {@code w[n][k] = scales[g][n] * (codes[n][k] - zeros[g][n])} with {@code g = gIdx[k]}.
 * This is what every quantizer produces and every quantized writer (GPTQ, compressed-tensors, GGUF)
 * stores, so a round trip through any of them gives back exactly {@link #dequantize()}.
 *
 * @param bits       2 to 8
 * @param groupSize  input columns per (scale, zero) pair; -1 = one pair per row
 * @param symmetric  zeros all {@code 2^(bits-1)}
 * @param codes      {@code [N][K]} row-major, unsigned values in {@code [0, 2^bits)}
 * @param scales     {@code [G][N]} group-major (GPTQ's layout), each exactly representable in {@code scaleDtype}
 * @param zeros      {@code [G][N]} group-major, in {@code [0, 2^bits)}
 * @param gIdx       {@code [K]}: the group of each input column ({@code k / groupSize} without act-order)
 * @param scaleDtype the dtype the scales were rounded to inside the quantizer (F16 for GPTQ and GGUF)
 */
public record QuantizedTensor(
    int rows,
    int cols,
    int bits,
    int groupSize,
    boolean symmetric,
    byte[] codes,
    float[] scales,
    int[] zeros,
    int[] gIdx,
    DType scaleDtype) {

  public QuantizedTensor {
    if (bits < 2 || bits > 8) {
      throw new IllegalArgumentException("bits must be 2..8, got " + bits);
    }
    if (codes.length != (long) rows * cols || gIdx.length != cols) {
      throw new IllegalArgumentException("codes must be rows*cols and gIdx cols long");
    }
    if (scales.length % rows != 0 || zeros.length != scales.length) {
      throw new IllegalArgumentException("scales and zeros must be [groups][rows]");
    }
  }

  /** Number of (scale, zero) groups per row: {@code G}. */
  public int groups() {
    return scales.length / rows;
  }

  public int code(int row, int col) {
    return Byte.toUnsignedInt(codes[row * cols + col]);
  }

  public float scale(int group, int row) {
    return scales[group * rows + row];
  }

  public int zero(int group, int row) {
    return zeros[group * rows + row];
  }

  /** True when {@code gIdx[k] == k / groupSize} for every column (no act-order permutation). */
  public boolean hasTrivialGroupIndex() {
    int size = groupSize < 0 ? cols : groupSize;
    for (int k = 0; k < cols; k++) {
      if (gIdx[k] != k / size) {
        return false;
      }
    }
    return true;
  }

  /** The float32 weights {@code [N][K]} this tensor stands for. */
  public float[] dequantize() {
    float[] w = new float[rows * cols];
    for (int n = 0; n < rows; n++) {
      for (int k = 0; k < cols; k++) {
        int g = gIdx[k];
        w[n * cols + k] = scale(g, n) * (code(n, k) - zero(g, n));
      }
    }
    return w;
  }
}
