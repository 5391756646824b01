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
 * {@code B} stays in L1 while packed 4-row strips of {@code A} and rows of {@code C} stream past
 * it; the 4 x 64 tile of {@code C} lives in 16 vector registers (64 = 4 vectors of 16 floats with
 * AVX-512). Each element of {@code C} sums over {@code p} in increasing order, so the result does
 * not depend on how callers split {@code C} into tiles.
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
  }

  private static final ThreadLocal<Packed> PACKED = ThreadLocal.withInitial(Packed::new);

  /**
   * {@code C += sign * A B} on one thread. Per k-chunk, {@code sign * A} is packed as 4-row strips
   * {@code [m/4][kc][4]} (then single rows {@code [kc]}), and each {@code kc x 64} panel of {@code
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
    Packed packed = PACKED.get();
    if (packed.a.length < m * KC) {
      packed.a = new float[m * KC];
    }
    float[] pa = packed.a;
    float[] pb = packed.b;
    int fullRows = m & ~3;
    int panel = 4 * L;
    for (int p0 = 0; p0 < k; p0 += KC) {
      int kc = Math.min(KC, k - p0);
      for (int r = 0; r < fullRows; r += 4) {
        int base = r * kc;
        for (int p = 0; p < kc; p++) {
          int src = aOff + r * aRow + (p0 + p) * aCol;
          pa[base + 4 * p] = sign * a[src];
          pa[base + 4 * p + 1] = sign * a[src + aRow];
          pa[base + 4 * p + 2] = sign * a[src + 2 * aRow];
          pa[base + 4 * p + 3] = sign * a[src + 3 * aRow];
        }
      }
      for (int r = fullRows; r < m; r++) {
        for (int p = 0; p < kc; p++) {
          pa[r * kc + p] = sign * a[aOff + r * aRow + (p0 + p) * aCol];
        }
      }
      int bp = bOff + p0 * ldb;
      int j = 0;
      for (; j + panel <= n; j += panel) {
        for (int p = 0; p < kc; p++) {
          System.arraycopy(b, bp + p * ldb + j, pb, p * panel, panel);
        }
        int r = 0;
        for (; r < fullRows; r += 4) {
          tile4x4(pa, r * kc, pb, 0, panel, c, cOff + r * ldc + j, ldc, kc);
        }
        for (; r < m; r++) {
          tile1x4(pa, r * kc, 1, pb, 0, panel, c, cOff + r * ldc + j, kc);
        }
      }
      for (; j + L <= n; j += L) {
        for (int r = 0; r < m; r++) {
          if (r < fullRows) {
            tile1x1(pa, (r & ~3) * kc + (r & 3), 4, b, bp + j, ldb, c, cOff + r * ldc + j, kc);
          } else {
            tile1x1(pa, r * kc, 1, b, bp + j, ldb, c, cOff + r * ldc + j, kc);
          }
        }
      }
      for (; j < n; j++) {
        for (int r = 0; r < m; r++) {
          int ai = r < fullRows ? (r & ~3) * kc + (r & 3) : r * kc;
          int aStep = r < fullRows ? 4 : 1;
          float acc = c[cOff + r * ldc + j];
          for (int p = 0; p < kc; p++) {
            acc = Math.fma(pa[ai + p * aStep], b[bp + p * ldb + j], acc);
          }
          c[cOff + r * ldc + j] = acc;
        }
      }
    }
  }

  private static void tile4x4(
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
    for (int p = 0; p < kc; p++) {
      int bj = bi + p * ldb;
      FloatVector b0 = FloatVector.fromArray(S, b, bj);
      FloatVector b1 = FloatVector.fromArray(S, b, bj + L);
      FloatVector b2 = FloatVector.fromArray(S, b, bj + 2 * L);
      FloatVector b3 = FloatVector.fromArray(S, b, bj + 3 * L);
      int aj = ai + 4 * p;
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

  private static void tile1x1(
      float[] a, int ai, int aCol, float[] b, int bi, int ldb, float[] c, int ci, int kc) {
    FloatVector c0 = FloatVector.fromArray(S, c, ci);
    for (int p = 0; p < kc; p++) {
      c0 =
          FloatVector.fromArray(S, b, bi + p * ldb)
              .fma(FloatVector.broadcast(S, a[ai + p * aCol]), c0);
    }
    c0.intoArray(c, ci);
  }

  /**
   * {@code C += sign * A B} split into tiles of {@code rowTile x colTile} run in parallel (each
   * tile is one task, so the result is the same as {@link #multiplyAdd} on one thread).
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
    int rowTile = 256;
    int colTile = 512;
    int rowTiles = (m + rowTile - 1) / rowTile;
    int colTiles = (n + colTile - 1) / colTile;
    Parallel.forEach(
        rowTiles * colTiles,
        t -> {
          int r0 = (t / colTiles) * rowTile;
          int j0 = (t % colTiles) * colTile;
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
              Math.min(rowTile, m - r0),
              Math.min(colTile, n - j0),
              k);
        });
  }
}
