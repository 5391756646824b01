package llmc.formats;

/**
 * A weight matrix {@code [rows = out_features N, cols = in_features K]} on the integer grid of
 * PROTOCOLS.md: {@code w[n][k] = scales[g][n] * (codes[n][k] - zeros[g][n]) (+ mins[g][n])} with
 * {@code g = gIdx[k]}. This is what every quantizer produces and every quantized writer (GPTQ,
 * compressed-tensors, GGUF) stores, so a round trip through any of them gives back exactly {@link
 * #dequantize()}.
 *
 * @param bits 2 to 8
 * @param groupSize input columns per (scale, zero) pair; -1 = one pair per row
 * @param symmetric zeros all {@code 2^(bits-1)}
 * @param codes {@code [N][K]} row-major, unsigned values in {@code [0, 2^bits)}
 * @param scales {@code [G][N]} group-major (GPTQ's layout), each exactly representable in {@code
 *     scaleDtype}
 * @param zeros {@code [G][N]} group-major, in {@code [0, 2^bits)}
 * @param gIdx {@code [K]}: the group of each input column ({@code k / groupSize} without act-order)
 * @param scaleDtype the dtype the scales were rounded to inside the quantizer (F16 for GPTQ and
 *     GGUF)
 * @param mins {@code [G][N]} float offsets {@code m} (ggml's Q4_1 / Q5_1: {@code w = s q + m},
 *     zeros all 0), or null for the integer zero points of every other layout
 * @param levels the value of each 8-bit code, {@code [256]}, for a float grid ({@code w = s
 *     levels[q]}, zeros all 0: FP8 E4M3, whose codes are the float8 bytes), or null for the integer
 *     grids
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
    DType scaleDtype,
    float[] mins,
    float[] levels) {

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
    if (mins != null && mins.length != scales.length) {
      throw new IllegalArgumentException("mins must be [groups][rows] like the scales");
    }
    if (levels != null && (bits != 8 || levels.length != 256 || mins != null)) {
      throw new IllegalArgumentException("a float grid has 8-bit codes, 256 levels and no mins");
    }
  }

  /** An integer grid (no float levels). */
  public QuantizedTensor(
      int rows,
      int cols,
      int bits,
      int groupSize,
      boolean symmetric,
      byte[] codes,
      float[] scales,
      int[] zeros,
      int[] gIdx,
      DType scaleDtype,
      float[] mins) {
    this(
        rows, cols, bits, groupSize, symmetric, codes, scales, zeros, gIdx, scaleDtype, mins, null);
  }

  /**
   * FP8 E4M3 codes (the float8 bytes) with a float32 scale per row and group: {@code w = s
   * e4m3(q)}.
   */
  public static QuantizedTensor e4m3(
      int rows,
      int cols,
      int groupSize,
      byte[] codes,
      float[] scales,
      int[] gIdx,
      DType scaleDtype) {
    return new QuantizedTensor(
        rows,
        cols,
        8,
        groupSize,
        true,
        codes,
        scales,
        new int[scales.length],
        gIdx,
        scaleDtype,
        null,
        Floats.e4m3Values());
  }

  /** Whether the codes are FP8 E4M3 bytes ({@link #levels}) rather than integers. */
  public boolean isFloat8() {
    return levels != null;
  }

  /** Integer zero points, no float offsets. */
  public QuantizedTensor(
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
    this(rows, cols, bits, groupSize, symmetric, codes, scales, zeros, gIdx, scaleDtype, null);
  }

  /** The float offset of a group: {@code mins[g][n]}, 0 without mins. */
  public float min(int group, int row) {
    return mins == null ? 0f : mins[group * rows + row];
  }

  /**
   * The same tensor with its rows reordered: row {@code r} of the result is row {@code order[r]} of
   * this.
   */
  public QuantizedTensor withRows(int[] order) {
    if (order.length != rows) {
      throw new IllegalArgumentException("order must have one entry per row");
    }
    int groups = groups();
    byte[] c = new byte[codes.length];
    float[] s = new float[scales.length];
    int[] z = new int[zeros.length];
    float[] m = mins == null ? null : new float[mins.length];
    for (int r = 0; r < rows; r++) {
      int from = order[r];
      System.arraycopy(codes, from * cols, c, r * cols, cols);
      for (int g = 0; g < groups; g++) {
        s[g * rows + r] = scales[g * rows + from];
        z[g * rows + r] = zeros[g * rows + from];
        if (m != null) {
          m[g * rows + r] = mins[g * rows + from];
        }
      }
    }
    return new QuantizedTensor(
        rows, cols, bits, groupSize, symmetric, c, s, z, gIdx, scaleDtype, m, levels);
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
  /** One weight, {@code w[n][k]}: the element of {@link #dequantize()}, computed alone. */
  public float value(int n, int k) {
    int g = gIdx[k];
    if (levels != null) {
      return scale(g, n) * levels[code(n, k)];
    }
    return scale(g, n) * (code(n, k) - zero(g, n)) + min(g, n);
  }

  /** Whether {@code w [rows][cols]} holds exactly {@link #dequantize()}, without making it. */
  public boolean dequantizesTo(float[] w) {
    if (w.length != (long) rows * cols) {
      return false;
    }
    for (int n = 0; n < rows; n++) {
      for (int k = 0; k < cols; k++) {
        if (Float.floatToIntBits(w[n * cols + k]) != Float.floatToIntBits(value(n, k))) {
          return false;
        }
      }
    }
    return true;
  }

  public float[] dequantize() {
    float[] w = new float[rows * cols];
    for (int n = 0; n < rows; n++) {
      for (int k = 0; k < cols; k++) {
        w[n * cols + k] = value(n, k);
      }
    }
    return w;
  }
}
