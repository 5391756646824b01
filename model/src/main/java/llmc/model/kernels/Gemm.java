package llmc.model.kernels;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * The one matrix product every step of GPTQ reduces to (Hessian, Cholesky, triangular inverse, lazy
 * batch update): {@code C[m][n] += sign * A[m][k] B[k][n]} in float32, on row-major slices of flat
 * arrays. {@code A(r, p) = a[aOff + r*aRow + p*aCol]} (so {@code A} may be a transposed view),
 * {@code B(p, j) = b[bOff + p*ldb + j]}, {@code C(r, j) = c[cOff + r*ldc + j]}.
 *
 * <p>Blocking: {@code k} in chunks of {@link #KC}; per chunk, a packed {@code KC x 64} panel of
 * {@code B} (16 wide with 256-bit vectors, see {@link #NR}) stays in L1 while packed 6-row strips
 * of {@code A} and rows of {@code C} stream past it; the 6 x 64 tile of {@code C} lives in 24
 * vector registers (64 = 4 vectors of 16 floats with AVX-512), so that each step of {@code p} loads
 * 4 vectors of {@code B} and 6 scalars of {@code A} for 24 FMAs (a 4 x 64 tile: 8 loads for 16
 * FMAs, 0.78x the speed on the 2048³ product). Each element of {@code C} sums over {@code p} in
 * increasing order, so the result does not depend on how callers split {@code C} into tiles.
 */
public final class Gemm {
  private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
  private static final int L = S.length();
  public static final int KC = 128;

  private Gemm() {}

  /**
   * Per-thread packing buffers: {@code a} holds {@code sign * A} for one k-chunk, {@code b} one B
   * panel.
   */
  private static final class Packed {
    float[] a = new float[256 * KC];
    final float[] b = new float[KC * 64];
    final float[] part = new float[MR * L]; // a partial vector of C's columns, MR rows
  }

  private static final ThreadLocal<Packed> PACKED = ThreadLocal.withInitial(Packed::new);

  /** Rows of {@code C} per register tile. */
  private static final int MR = 6;

  /**
   * Vectors of {@code C} per register tile row: 4 with 32 vector registers (AVX-512: 24
   * accumulators, 4 of {@code B}, 1 broadcast), 2 with 16 (AVX2: 12, 2 and 1), so that the tile
   * never spills.
   */
  private static final int NR = L >= 16 ? 4 : 2;

  /** Columns of a packed panel of {@code B}: one register tile wide. */
  private static final int PANEL = NR * L;

  /**
   * {@code C += sign * A B} on one thread. Per k-chunk, {@code sign * A} is packed as 6-row strips
   * {@code [m/6][kc][6]} (then single rows {@code [kc]}), and each {@code kc x 64} panel of {@code
   * B} is packed contiguously, so that neither walks a power-of-two stride through the cache.
   */
  public static void multiplyAdd(
      float sign,
      float[] a,
      int aOff,
      int aRow,
      int aCol,
      float[] b,
      int bOff,
      int ldb,
      float[] c,
      int cOff,
      int ldc,
      int m,
      int n,
      int k) {
    multiplyAdd(
        sign,
        a,
        aOff,
        aRow,
        aCol,
        (p0, kc, j0, width, dst) -> {
          for (int p = 0; p < kc; p++) {
            System.arraycopy(b, bOff + (p0 + p) * ldb + j0, dst, p * width, width);
          }
        },
        c,
        cOff,
        ldc,
        m,
        n,
        k);
  }

  /**
   * {@code C += sign * A Wᵀ} on one thread, for the rows {@code [w0, w0 + n)} of {@code W}: a
   * linear layer {@code y = x Wᵀ} on the weight as it is kept ({@link WeightMatrix}), each panel
   * converted while packed. The sums are those of the float32 product on the same values.
   */
  public static void multiplyAdd(
      float sign,
      float[] a,
      int aOff,
      int aRow,
      int aCol,
      WeightMatrix w,
      int w0,
      float[] c,
      int cOff,
      int ldc,
      int m,
      int n,
      int k) {
    if (k != w.cols() || w0 + n > w.rows()) {
      throw new IllegalArgumentException("the weight is " + w.rows() + "x" + w.cols());
    }
    multiplyAdd(
        sign,
        a,
        aOff,
        aRow,
        aCol,
        (p0, kc, j0, width, dst) -> w.packTransposed(p0, kc, w0 + j0, width, dst),
        c,
        cOff,
        ldc,
        m,
        n,
        k);
  }

  /** Packs panels of {@code B}: {@code dst[p * width + j] = B(p0 + p, j0 + j)}. */
  private interface Panels {
    void pack(int p0, int kc, int j0, int width, float[] dst);
  }

  private static void multiplyAdd(
      float sign,
      float[] a,
      int aOff,
      int aRow,
      int aCol,
      Panels b,
      float[] c,
      int cOff,
      int ldc,
      int m,
      int n,
      int k) {
    Packed packed = PACKED.get();
    if (packed.a.length < m * KC) {
      packed.a = new float[m * KC];
    }
    float[] pa = packed.a;
    float[] pb = packed.b;
    int fullRows = m - m % MR;
    int panel = PANEL;
    for (int p0 = 0; p0 < k; p0 += KC) {
      int kc = Math.min(KC, k - p0);
      for (int r = 0; r < fullRows; r += MR) {
        int base = r * kc;
        for (int p = 0; p < kc; p++) {
          int src = aOff + r * aRow + (p0 + p) * aCol;
          int dst = base + MR * p;
          for (int i = 0; i < MR; i++) {
            pa[dst + i] = sign * a[src + i * aRow];
          }
        }
      }
      for (int r = fullRows; r < m; r++) {
        for (int p = 0; p < kc; p++) {
          pa[r * kc + p] = sign * a[aOff + r * aRow + (p0 + p) * aCol];
        }
      }
      int j = 0;
      for (; j + panel <= n; j += panel) {
        b.pack(p0, kc, j, panel, pb);
        int r = 0;
        for (; r < fullRows; r += MR) {
          if (NR == 4) {
            tile6x4(pa, r * kc, pb, 0, panel, c, cOff + r * ldc + j, ldc, kc);
          } else {
            tile6x2(pa, r * kc, pb, 0, panel, c, cOff + r * ldc + j, ldc, kc);
          }
        }
        for (; r < m; r++) {
          if (NR == 4) {
            tile1x4(pa, r * kc, 1, pb, 0, panel, c, cOff + r * ldc + j, kc);
          } else {
            tile1x1(pa, r * kc, pb, 0, panel, c, cOff + r * ldc + j, kc);
            tile1x1(pa, r * kc, pb, L, panel, c, cOff + r * ldc + j + L, kc);
          }
        }
      }
      if (j == n) {
        continue;
      }
      int width = n - j; // the last columns, narrower than a panel
      b.pack(p0, kc, j, width, pb);
      // one vector of columns at a time: 6-row tiles, then single rows. The last vector may be
      // partial (an attention head of 8 columns is only that): its tile runs on a copy of C's
      // columns in a full vector and only those are copied back; the lanes beyond read the next
      // row of the panel, within the array (width < PANEL), and are dropped.
      float[] part = packed.part;
      for (int jj = 0; jj < width; jj += L) {
        int lanes = Math.min(L, width - jj);
        int r = 0;
        for (; r < fullRows; r += MR) {
          int ci = cOff + r * ldc + j + jj;
          if (lanes == L) {
            tile6x1(pa, r * kc, pb, jj, width, c, ci, ldc, kc);
          } else {
            for (int i = 0; i < MR; i++) {
              System.arraycopy(c, ci + i * ldc, part, i * L, lanes);
            }
            tile6x1(pa, r * kc, pb, jj, width, part, 0, L, kc);
            for (int i = 0; i < MR; i++) {
              System.arraycopy(part, i * L, c, ci + i * ldc, lanes);
            }
          }
        }
        for (; r < m; r++) {
          int ci = cOff + r * ldc + j + jj;
          if (lanes == L) {
            tile1x1(pa, r * kc, pb, jj, width, c, ci, kc);
          } else {
            System.arraycopy(c, ci, part, 0, lanes);
            tile1x1(pa, r * kc, pb, jj, width, part, 0, kc);
            System.arraycopy(part, 0, c, ci, lanes);
          }
        }
      }
    }
  }

  private static void tile6x4(
      float[] a, int ai, float[] b, int bi, int ldb, float[] c, int ci, int ldc, int kc) {
    FloatVector c00 = FloatVector.fromArray(S, c, ci);
    FloatVector c01 = FloatVector.fromArray(S, c, ci + L);
    FloatVector c02 = FloatVector.fromArray(S, c, ci + 2 * L);
    FloatVector c03 = FloatVector.fromArray(S, c, ci + 3 * L);
    FloatVector c10 = FloatVector.fromArray(S, c, ci + ldc);
    FloatVector c11 = FloatVector.fromArray(S, c, ci + ldc + L);
    FloatVector c12 = FloatVector.fromArray(S, c, ci + ldc + 2 * L);
    FloatVector c13 = FloatVector.fromArray(S, c, ci + ldc + 3 * L);
    FloatVector c20 = FloatVector.fromArray(S, c, ci + 2 * ldc);
    FloatVector c21 = FloatVector.fromArray(S, c, ci + 2 * ldc + L);
    FloatVector c22 = FloatVector.fromArray(S, c, ci + 2 * ldc + 2 * L);
    FloatVector c23 = FloatVector.fromArray(S, c, ci + 2 * ldc + 3 * L);
    FloatVector c30 = FloatVector.fromArray(S, c, ci + 3 * ldc);
    FloatVector c31 = FloatVector.fromArray(S, c, ci + 3 * ldc + L);
    FloatVector c32 = FloatVector.fromArray(S, c, ci + 3 * ldc + 2 * L);
    FloatVector c33 = FloatVector.fromArray(S, c, ci + 3 * ldc + 3 * L);
    FloatVector c40 = FloatVector.fromArray(S, c, ci + 4 * ldc);
    FloatVector c41 = FloatVector.fromArray(S, c, ci + 4 * ldc + L);
    FloatVector c42 = FloatVector.fromArray(S, c, ci + 4 * ldc + 2 * L);
    FloatVector c43 = FloatVector.fromArray(S, c, ci + 4 * ldc + 3 * L);
    FloatVector c50 = FloatVector.fromArray(S, c, ci + 5 * ldc);
    FloatVector c51 = FloatVector.fromArray(S, c, ci + 5 * ldc + L);
    FloatVector c52 = FloatVector.fromArray(S, c, ci + 5 * ldc + 2 * L);
    FloatVector c53 = FloatVector.fromArray(S, c, ci + 5 * ldc + 3 * L);
    for (int p = 0; p < kc; p++) {
      int bj = bi + p * ldb;
      FloatVector b0 = FloatVector.fromArray(S, b, bj);
      FloatVector b1 = FloatVector.fromArray(S, b, bj + L);
      FloatVector b2 = FloatVector.fromArray(S, b, bj + 2 * L);
      FloatVector b3 = FloatVector.fromArray(S, b, bj + 3 * L);
      int aj = ai + MR * p;
      FloatVector a0 = FloatVector.broadcast(S, a[aj]);
      c00 = b0.fma(a0, c00);
      c01 = b1.fma(a0, c01);
      c02 = b2.fma(a0, c02);
      c03 = b3.fma(a0, c03);
      FloatVector a1 = FloatVector.broadcast(S, a[aj + 1]);
      c10 = b0.fma(a1, c10);
      c11 = b1.fma(a1, c11);
      c12 = b2.fma(a1, c12);
      c13 = b3.fma(a1, c13);
      FloatVector a2 = FloatVector.broadcast(S, a[aj + 2]);
      c20 = b0.fma(a2, c20);
      c21 = b1.fma(a2, c21);
      c22 = b2.fma(a2, c22);
      c23 = b3.fma(a2, c23);
      FloatVector a3 = FloatVector.broadcast(S, a[aj + 3]);
      c30 = b0.fma(a3, c30);
      c31 = b1.fma(a3, c31);
      c32 = b2.fma(a3, c32);
      c33 = b3.fma(a3, c33);
      FloatVector a4 = FloatVector.broadcast(S, a[aj + 4]);
      c40 = b0.fma(a4, c40);
      c41 = b1.fma(a4, c41);
      c42 = b2.fma(a4, c42);
      c43 = b3.fma(a4, c43);
      FloatVector a5 = FloatVector.broadcast(S, a[aj + 5]);
      c50 = b0.fma(a5, c50);
      c51 = b1.fma(a5, c51);
      c52 = b2.fma(a5, c52);
      c53 = b3.fma(a5, c53);
    }
    c00.intoArray(c, ci);
    c01.intoArray(c, ci + L);
    c02.intoArray(c, ci + 2 * L);
    c03.intoArray(c, ci + 3 * L);
    c10.intoArray(c, ci + ldc);
    c11.intoArray(c, ci + ldc + L);
    c12.intoArray(c, ci + ldc + 2 * L);
    c13.intoArray(c, ci + ldc + 3 * L);
    c20.intoArray(c, ci + 2 * ldc);
    c21.intoArray(c, ci + 2 * ldc + L);
    c22.intoArray(c, ci + 2 * ldc + 2 * L);
    c23.intoArray(c, ci + 2 * ldc + 3 * L);
    c30.intoArray(c, ci + 3 * ldc);
    c31.intoArray(c, ci + 3 * ldc + L);
    c32.intoArray(c, ci + 3 * ldc + 2 * L);
    c33.intoArray(c, ci + 3 * ldc + 3 * L);
    c40.intoArray(c, ci + 4 * ldc);
    c41.intoArray(c, ci + 4 * ldc + L);
    c42.intoArray(c, ci + 4 * ldc + 2 * L);
    c43.intoArray(c, ci + 4 * ldc + 3 * L);
    c50.intoArray(c, ci + 5 * ldc);
    c51.intoArray(c, ci + 5 * ldc + L);
    c52.intoArray(c, ci + 5 * ldc + 2 * L);
    c53.intoArray(c, ci + 5 * ldc + 3 * L);
  }

  /** {@link #tile6x4} for 16 vector registers: 6 rows of 2 vectors. */
  private static void tile6x2(
      float[] a, int ai, float[] b, int bi, int ldb, float[] c, int ci, int ldc, int kc) {
    FloatVector c00 = FloatVector.fromArray(S, c, ci);
    FloatVector c01 = FloatVector.fromArray(S, c, ci + L);
    FloatVector c10 = FloatVector.fromArray(S, c, ci + ldc);
    FloatVector c11 = FloatVector.fromArray(S, c, ci + ldc + L);
    FloatVector c20 = FloatVector.fromArray(S, c, ci + 2 * ldc);
    FloatVector c21 = FloatVector.fromArray(S, c, ci + 2 * ldc + L);
    FloatVector c30 = FloatVector.fromArray(S, c, ci + 3 * ldc);
    FloatVector c31 = FloatVector.fromArray(S, c, ci + 3 * ldc + L);
    FloatVector c40 = FloatVector.fromArray(S, c, ci + 4 * ldc);
    FloatVector c41 = FloatVector.fromArray(S, c, ci + 4 * ldc + L);
    FloatVector c50 = FloatVector.fromArray(S, c, ci + 5 * ldc);
    FloatVector c51 = FloatVector.fromArray(S, c, ci + 5 * ldc + L);
    for (int p = 0; p < kc; p++) {
      int bj = bi + p * ldb;
      FloatVector b0 = FloatVector.fromArray(S, b, bj);
      FloatVector b1 = FloatVector.fromArray(S, b, bj + L);
      int aj = ai + MR * p;
      FloatVector a0 = FloatVector.broadcast(S, a[aj]);
      c00 = b0.fma(a0, c00);
      c01 = b1.fma(a0, c01);
      FloatVector a1 = FloatVector.broadcast(S, a[aj + 1]);
      c10 = b0.fma(a1, c10);
      c11 = b1.fma(a1, c11);
      FloatVector a2 = FloatVector.broadcast(S, a[aj + 2]);
      c20 = b0.fma(a2, c20);
      c21 = b1.fma(a2, c21);
      FloatVector a3 = FloatVector.broadcast(S, a[aj + 3]);
      c30 = b0.fma(a3, c30);
      c31 = b1.fma(a3, c31);
      FloatVector a4 = FloatVector.broadcast(S, a[aj + 4]);
      c40 = b0.fma(a4, c40);
      c41 = b1.fma(a4, c41);
      FloatVector a5 = FloatVector.broadcast(S, a[aj + 5]);
      c50 = b0.fma(a5, c50);
      c51 = b1.fma(a5, c51);
    }
    c00.intoArray(c, ci);
    c01.intoArray(c, ci + L);
    c10.intoArray(c, ci + ldc);
    c11.intoArray(c, ci + ldc + L);
    c20.intoArray(c, ci + 2 * ldc);
    c21.intoArray(c, ci + 2 * ldc + L);
    c30.intoArray(c, ci + 3 * ldc);
    c31.intoArray(c, ci + 3 * ldc + L);
    c40.intoArray(c, ci + 4 * ldc);
    c41.intoArray(c, ci + 4 * ldc + L);
    c50.intoArray(c, ci + 5 * ldc);
    c51.intoArray(c, ci + 5 * ldc + L);
  }

  private static void tile1x4(
      float[] a, int ai, int aCol, float[] b, int bi, int ldb, float[] c, int ci, int kc) {
    FloatVector c0 = FloatVector.fromArray(S, c, ci);
    FloatVector c1 = FloatVector.fromArray(S, c, ci + L);
    FloatVector c2 = FloatVector.fromArray(S, c, ci + 2 * L);
    FloatVector c3 = FloatVector.fromArray(S, c, ci + 3 * L);
    for (int p = 0; p < kc; p++) {
      int bj = bi + p * ldb;
      FloatVector a0 = FloatVector.broadcast(S, a[ai + p * aCol]);
      c0 = FloatVector.fromArray(S, b, bj).fma(a0, c0);
      c1 = FloatVector.fromArray(S, b, bj + L).fma(a0, c1);
      c2 = FloatVector.fromArray(S, b, bj + 2 * L).fma(a0, c2);
      c3 = FloatVector.fromArray(S, b, bj + 3 * L).fma(a0, c3);
    }
    c0.intoArray(c, ci);
    c1.intoArray(c, ci + L);
    c2.intoArray(c, ci + 2 * L);
    c3.intoArray(c, ci + 3 * L);
  }

  /** The 6 rows of a strip times one vector of a panel. */
  private static void tile6x1(
      float[] a, int ai, float[] b, int bi, int ldb, float[] c, int ci, int ldc, int kc) {
    FloatVector c0 = FloatVector.fromArray(S, c, ci);
    FloatVector c1 = FloatVector.fromArray(S, c, ci + ldc);
    FloatVector c2 = FloatVector.fromArray(S, c, ci + 2 * ldc);
    FloatVector c3 = FloatVector.fromArray(S, c, ci + 3 * ldc);
    FloatVector c4 = FloatVector.fromArray(S, c, ci + 4 * ldc);
    FloatVector c5 = FloatVector.fromArray(S, c, ci + 5 * ldc);
    for (int p = 0; p < kc; p++) {
      FloatVector b0 = FloatVector.fromArray(S, b, bi + p * ldb);
      int aj = ai + MR * p;
      c0 = b0.fma(FloatVector.broadcast(S, a[aj]), c0);
      c1 = b0.fma(FloatVector.broadcast(S, a[aj + 1]), c1);
      c2 = b0.fma(FloatVector.broadcast(S, a[aj + 2]), c2);
      c3 = b0.fma(FloatVector.broadcast(S, a[aj + 3]), c3);
      c4 = b0.fma(FloatVector.broadcast(S, a[aj + 4]), c4);
      c5 = b0.fma(FloatVector.broadcast(S, a[aj + 5]), c5);
    }
    c0.intoArray(c, ci);
    c1.intoArray(c, ci + ldc);
    c2.intoArray(c, ci + 2 * ldc);
    c3.intoArray(c, ci + 3 * ldc);
    c4.intoArray(c, ci + 4 * ldc);
    c5.intoArray(c, ci + 5 * ldc);
  }

  /** One packed single row times one vector of a panel. */
  private static void tile1x1(
      float[] a, int ai, float[] b, int bi, int ldb, float[] c, int ci, int kc) {
    FloatVector c0 = FloatVector.fromArray(S, c, ci);
    for (int p = 0; p < kc; p++) {
      c0 = FloatVector.fromArray(S, b, bi + p * ldb).fma(FloatVector.broadcast(S, a[ai + p]), c0);
    }
    c0.intoArray(c, ci);
  }

  /**
   * {@link #multiplyAdd(float, float[], int, int, int, WeightMatrix, int, float[], int, int, int,
   * int, int)} in parallel tiles, as below.
   */
  public static void parallelMultiplyAdd(
      float sign,
      float[] a,
      int aOff,
      int aRow,
      int aCol,
      WeightMatrix w,
      float[] c,
      int cOff,
      int ldc,
      int m) {
    int n = w.rows();
    // each panel is converted while packed: once for up to 516 rows (a 512-token window)
    inTiles(
        m,
        n,
        512,
        (r0, j0, rows, cols) ->
            multiplyAdd(
                sign,
                a,
                aOff + r0 * aRow,
                aRow,
                aCol,
                w,
                j0,
                c,
                cOff + r0 * ldc + j0,
                ldc,
                rows,
                cols,
                w.cols()));
  }

  /** A tile of C: rows {@code [r0, r0 + rows)}, columns {@code [j0, j0 + cols)}. */
  private interface Tile {
    void run(int r0, int j0, int rows, int cols);
  }

  /**
   * C {@code [m][n]} in tiles of about {@code rowTarget x 1024}, one parallel task each. The tiles
   * of a dimension are made equal (rows rounded up to the register tile, columns to the panel), so
   * that no thread waits on a small last tile: 2048 rows are 8 tiles of 258, not 8 of 256 and one
   * of 0, nor 8 of 252 and one of 32 (0.91x the speed of the 2048³ product on 2 threads).
   */
  private static void inTiles(int m, int n, int rowTarget, Tile tile) {
    if (m <= 0 || n <= 0) {
      return;
    }
    int rowTiles = ceilDiv(m, rowTarget);
    int colTiles = ceilDiv(n, 1024);
    // At least one task a thread: a window's 512 x 576 product would otherwise be one task. Rows
    // split first (in register tiles of 6, so the tiles stay equal; at least 8 of them a tile),
    // then columns (in panels).
    int threads = Parallel.threads();
    if (rowTiles * colTiles < threads) {
      rowTiles = Math.max(rowTiles, Math.min(m / (8 * MR), ceilDiv(threads, colTiles)));
    }
    if (rowTiles * colTiles < threads) {
      colTiles = Math.max(colTiles, Math.min(ceilDiv(n, PANEL), ceilDiv(threads, rowTiles)));
    }
    int rowTile = roundUp(ceilDiv(m, rowTiles), MR);
    int colTile = roundUp(ceilDiv(n, colTiles), PANEL);
    int rows = ceilDiv(m, rowTile);
    int cols = ceilDiv(n, colTile);
    Parallel.forEach(
        rows * cols,
        t -> {
          int r0 = (t / cols) * rowTile;
          int j0 = (t % cols) * colTile;
          tile.run(r0, j0, Math.min(rowTile, m - r0), Math.min(colTile, n - j0));
        });
  }

  private static int ceilDiv(int a, int b) {
    return Math.max(1, (a + b - 1) / b);
  }

  private static int roundUp(int a, int multiple) {
    return ceilDiv(a, multiple) * multiple;
  }

  /**
   * {@code C += sign * A B} split into tiles of about 256 x 1024 run in parallel (each tile is one
   * task, so the result is the same as {@link #multiplyAdd} on one thread).
   */
  public static void parallelMultiplyAdd(
      float sign,
      float[] a,
      int aOff,
      int aRow,
      int aCol,
      float[] b,
      int bOff,
      int ldb,
      float[] c,
      int cOff,
      int ldc,
      int m,
      int n,
      int k) {
    inTiles(
        m,
        n,
        256,
        (r0, j0, rows, cols) ->
            multiplyAdd(
                sign,
                a,
                aOff + r0 * aRow,
                aRow,
                aCol,
                b,
                bOff + j0,
                ldb,
                c,
                cOff + r0 * ldc + j0,
                ldc,
                rows,
                cols,
                k));
  }
}
