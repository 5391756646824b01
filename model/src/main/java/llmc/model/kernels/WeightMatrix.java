package llmc.model.kernels;

import java.lang.foreign.MemorySegment;
import llmc.formats.QuantizedTensor;
import llmc.formats.gguf.GgmlBlocks;
import llmc.formats.gguf.GgmlType;

/**
 * A linear layer's weight {@code W [out][in]} in the form it is kept in memory, read by {@link
 * Gemm} as the operand {@code B = Wᵀ} of {@code y = x Wᵀ}: one {@code kc x width} panel at a time,
 * converted to float32 while it is packed. So a layer needs no transposed float32 copy: float32
 * rows (what a compression method wrote), BF16 rows (a checkpoint's stored values, half the
 * memory), a quantizer's codes (a quarter or less) or a GGUF file's blocks (a seventh for Q4_0) are
 * multiplied as they are.
 */
public sealed interface WeightMatrix {
  /** {@code out}: rows of {@code W}, columns of the product. */
  int rows();

  /** {@code in}: columns of {@code W}, the product's inner dimension. */
  int cols();

  /** Bytes this form holds in memory. */
  long bytes();

  /** The values {@code [out][in]} as a new float32 array. */
  float[] toFloats();

  /**
   * {@code dst[p * width + j] = W[j0 + j][p0 + p]} for {@code p < kc, j < width}: a panel of {@code
   * Wᵀ}, row-major.
   */
  void packTransposed(int p0, int kc, int j0, int width, float[] dst);

  /**
   * {@code W diag(1/s)}: a matrix kept as {@code inner = W diag(s)} (AWQ's and SmoothQuant's scaled
   * weight, usually its codes) while the model still feeds it the unscaled input {@code x}, so that
   * {@code x (W diag(1/s))ᵀ = (x / s) innerᵀ}. Once the scales are folded into the operation before
   * (a norm's weight, the rows of the matrix that makes {@code x}), {@code inner} is used as it is.
   *
   * @param divisor {@code s [in]}
   */
  record ColumnScaled(WeightMatrix inner, float[] divisor) implements WeightMatrix {
    public ColumnScaled {
      if (divisor.length != inner.cols()) {
        throw new IllegalArgumentException("one divisor per column: " + inner.cols());
      }
    }

    @Override
    public int rows() {
      return inner.rows();
    }

    @Override
    public int cols() {
      return inner.cols();
    }

    @Override
    public long bytes() {
      return inner.bytes() + 4L * divisor.length;
    }

    @Override
    public float[] toFloats() {
      float[] w = inner.toFloats();
      int cols = cols();
      for (int i = 0; i < w.length; i++) {
        w[i] /= divisor[i % cols];
      }
      return w;
    }

    @Override
    public void packTransposed(int p0, int kc, int j0, int width, float[] dst) {
      inner.packTransposed(p0, kc, j0, width, dst);
      for (int p = 0; p < kc; p++) {
        float d = divisor[p0 + p];
        for (int j = 0; j < width; j++) {
          dst[p * width + j] /= d;
        }
      }
    }
  }

  /** Float32 rows {@code [out][in]}, held (not copied). */
  record F32(float[] w, int rows, int cols) implements WeightMatrix {
    public F32 {
      check(w.length, rows, cols);
    }

    @Override
    public long bytes() {
      return 4L * w.length;
    }

    @Override
    public float[] toFloats() {
      return w.clone();
    }

    @Override
    public void packTransposed(int p0, int kc, int j0, int width, float[] dst) {
      for (int j = 0; j < width; j++) {
        int src = (j0 + j) * cols + p0;
        for (int p = 0; p < kc; p++) {
          dst[p * width + j] = w[src + p];
        }
      }
    }
  }

  /**
   * BF16 rows {@code [out][in]} (the upper 16 bits of each float32), as a checkpoint stores them:
   * exact, and half of {@link F32}.
   */
  record Bf16(short[] w, int rows, int cols) implements WeightMatrix {
    public Bf16 {
      check(w.length, rows, cols);
    }

    @Override
    public long bytes() {
      return 2L * w.length;
    }

    @Override
    public float[] toFloats() {
      float[] values = new float[w.length];
      for (int i = 0; i < w.length; i++) {
        values[i] = Float.intBitsToFloat(w[i] << 16);
      }
      return values;
    }

    @Override
    public void packTransposed(int p0, int kc, int j0, int width, float[] dst) {
      for (int j = 0; j < width; j++) {
        int src = (j0 + j) * cols + p0;
        for (int p = 0; p < kc; p++) {
          dst[p * width + j] = Float.intBitsToFloat(w[src + p] << 16);
        }
      }
    }
  }

  /**
   * A quantizer's codes, one byte each, dequantized while packed: exactly {@link
   * QuantizedTensor#dequantize()}, a quarter of {@link F32}.
   */
  record Codes(QuantizedTensor q) implements WeightMatrix {
    @Override
    public int rows() {
      return q.rows();
    }

    @Override
    public int cols() {
      return q.cols();
    }

    @Override
    public long bytes() {
      long groups = q.scales().length;
      return q.codes().length + 4L * q.gIdx().length + groups * (q.mins() == null ? 8 : 12);
    }

    @Override
    public float[] toFloats() {
      return q.dequantize();
    }

    @Override
    public void packTransposed(int p0, int kc, int j0, int width, float[] dst) {
      byte[] codes = q.codes();
      float[] levels = q.levels(); // FP8: the value of each code
      int[] gIdx = q.gIdx();
      int cols = q.cols();
      for (int j = 0; j < width; j++) {
        int n = j0 + j;
        int src = n * cols + p0;
        int group = -1;
        float scale = 0;
        int zero = 0;
        float min = 0;
        for (int p = 0; p < kc; p++) {
          int g = gIdx[p0 + p];
          if (g != group) { // the run of a group: its scale, zero and offset looked up once
            group = g;
            scale = q.scale(g, n);
            zero = q.zero(g, n);
            min = q.min(g, n);
          }
          int code = Byte.toUnsignedInt(codes[src + p]);
          dst[p * width + j] = levels != null ? scale * levels[code] : scale * (code - zero) + min;
        }
      }
    }
  }

  /**
   * A GGUF tensor's blocks as the file stores them (Q4_0 is 4.5 bits a weight; mapped, not on the
   * heap), decoded while packed: exactly {@link GgmlBlocks#decode}. {@code rowOf[r]} is the stored
   * row that holds row {@code r} (llama.cpp's q and k rows are interleaved), or null.
   */
  record Blocks(GgmlType type, MemorySegment blocks, int rows, int cols, int[] rowOf)
      implements WeightMatrix {
    public Blocks {
      if (cols % type.blockSize() != 0 || blocks.byteSize() != type.byteSize((long) rows * cols)) {
        throw new IllegalArgumentException(
            type.ggmlName()
                + " "
                + rows
                + "x"
                + cols
                + " needs "
                + type.byteSize((long) rows * cols)
                + " bytes in whole blocks, got "
                + blocks.byteSize());
      }
      if (rowOf != null && rowOf.length != rows) {
        throw new IllegalArgumentException(rowOf.length + " row indices for " + rows + " rows");
      }
    }

    @Override
    public long bytes() {
      return blocks.byteSize();
    }

    private long rowBytes() {
      return type.byteSize(cols);
    }

    @Override
    public float[] toFloats() {
      float[] values = new float[Math.multiplyExact(rows, cols)];
      for (int r = 0; r < rows; r++) {
        long stored = rowOf == null ? r : rowOf[r];
        GgmlBlocks.decode(
            type, blocks.asSlice(stored * rowBytes(), rowBytes()), values, r * cols, cols);
      }
      return values;
    }

    /** {@code p0} and {@code kc} are whole blocks: Gemm's chunks are 128 columns. */
    @Override
    public void packTransposed(int p0, int kc, int j0, int width, float[] dst) {
      int block = type.blockSize();
      if (p0 % block != 0 || kc % block != 0) {
        throw new IllegalArgumentException(
            "columns [" + p0 + ", " + (p0 + kc) + ") are not whole " + type.ggmlName() + " blocks");
      }
      float[] row = new float[kc];
      long from = type.byteSize(p0);
      long length = type.byteSize(kc);
      for (int j = 0; j < width; j++) {
        long stored = rowOf == null ? j0 + j : rowOf[j0 + j];
        GgmlBlocks.decode(type, blocks.asSlice(stored * rowBytes() + from, length), row, 0, kc);
        for (int p = 0; p < kc; p++) {
          dst[p * width + j] = row[p];
        }
      }
    }
  }

  private static void check(int length, int rows, int cols) {
    if (length != (long) rows * cols) {
      throw new IllegalArgumentException(
          "expected " + rows + "x" + cols + " values, got " + length);
    }
  }
}
