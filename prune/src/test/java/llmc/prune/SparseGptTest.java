package llmc.prune;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Random;
import llmc.calibration.InputStatistics;
import llmc.quantize.UnitAnchors;
import org.junit.jupiter.api.Test;

/** SparseGPT's properties on the anchor data and on a larger random layer. */
class SparseGptTest {
  static final SparsityPattern U50 = new SparsityPattern.Unstructured(0.5, Compare.MATRIX);
  static final SparsityPattern TWO_OF_FOUR = new SparsityPattern.NofM(2, 4);

  static SparseGpt.Result prune(UnitAnchors a, SparsityPattern p) {
    return SparseGpt.prune(a.w, a.rows, a.cols, a.hessian, p, 0.01, 128);
  }

  @Test
  void outputErrorBelowWandaAndMagnitude() {
    UnitAnchors a = UnitAnchors.load();
    for (SparsityPattern p : new SparsityPattern[] {U50, TWO_OF_FOUR}) {
      double sparseGpt = a.outputError(prune(a, p).weights());
      SparsityPattern wandaPattern =
          p == U50 ? new SparsityPattern.Unstructured(0.5, Compare.ROW) : p;
      double wanda =
          a.outputError(
              Masks.apply(
                  a.w,
                  Masks.select(
                      Scores.wanda(a.w, a.rows, a.cols, a.columnSquaredNorms),
                      a.rows,
                      a.cols,
                      wandaPattern)));
      double magnitude =
          a.outputError(Masks.apply(a.w, Masks.select(Scores.magnitude(a.w), a.rows, a.cols, p)));
      assertTrue(
          sparseGpt < wanda && wanda < magnitude,
          p + ": " + sparseGpt + " " + wanda + " " + magnitude);
    }
  }

  @Test
  void keepsExactlyTheAskedFractionAndPrunedWeightsStayZero() {
    UnitAnchors a = UnitAnchors.load();
    float[] pruned = prune(a, U50).weights();
    assertEquals(0.5, Masks.sparsity(pruned));
    int compensated = 0;
    for (int i = 0; i < pruned.length; i++) {
      if (pruned[i] != 0f && pruned[i] != a.w[i]) {
        compensated++;
      }
    }
    assertTrue(compensated > 700, "kept weights are updated: " + compensated);
    // per row within each block slice
    float[] perRow = prune(a, new SparsityPattern.Unstructured(0.5, Compare.ROW)).weights();
    for (int r = 0; r < a.rows; r++) {
      int[] zeros = new int[2];
      for (int c = 0; c < a.cols; c++) {
        zeros[c / 128] += perRow[r * a.cols + c] == 0f ? 1 : 0;
      }
      assertArrayEquals(new int[] {64, 32}, zeros, "row " + r);
    }
    // 30%: floor(8 * 128 * 0.3) + floor(8 * 64 * 0.3) = 307 + 153
    float[] p30 = prune(a, new SparsityPattern.Unstructured(0.3, Compare.MATRIX)).weights();
    assertEquals(307 + 153, Math.round(Masks.sparsity(p30) * p30.length));
  }

  @Test
  void nOfMHoldsInEveryRun() {
    UnitAnchors a = UnitAnchors.load();
    for (int[] nm : new int[][] {{2, 4}, {4, 8}, {1, 4}, {3, 7}}) {
      SparsityPattern p = new SparsityPattern.NofM(nm[0], nm[1]);
      for (int blockSize : new int[] {128, 126, 5}) {
        SparseGpt.Result r = SparseGpt.prune(a.w, a.rows, a.cols, a.hessian, p, 0.01, blockSize);
        assertTrue(
            Masks.satisfies(r.weights(), a.rows, a.cols, nm[0], nm[1]), p + " block " + blockSize);
        int runs = a.cols / nm[1];
        int tail = a.cols % nm[1];
        long expectedZeros = (long) a.rows * (runs * (nm[1] - nm[0]) + Math.max(0, tail - nm[0]));
        assertEquals(
            expectedZeros,
            Math.round(Masks.sparsity(r.weights()) * a.w.length),
            p + " block " + blockSize);
      }
    }
  }

  @Test
  void sparsityZeroReturnsWUnchanged() {
    UnitAnchors a = UnitAnchors.load();
    for (Compare c : Compare.values()) {
      SparseGpt.Result r = prune(a, new SparsityPattern.Unstructured(0, c));
      assertArrayEquals(a.w, r.weights(), 0f); // nothing pruned: no error to spread, bit-identical
      assertNull(r.warning());
      assertEquals(0.01, r.damp());
    }
    assertArrayEquals(a.w, prune(a, new SparsityPattern.NofM(4, 4)).weights(), 0f);
  }

  /** Zeros already in the pattern score lowest, are pruned again, and nothing else moves. */
  @Test
  void alreadySparseWeightsAreAFixedPoint() {
    UnitAnchors a = UnitAnchors.load();
    float[] sparse =
        Masks.apply(a.w, Masks.select(Scores.magnitude(a.w), a.rows, a.cols, TWO_OF_FOUR));
    float[] again =
        SparseGpt.prune(sparse, a.rows, a.cols, a.hessian, TWO_OF_FOUR, 0.01, 128).weights();
    assertArrayEquals(sparse, again, 0f);
  }

  @Test
  void inputsAreNotModified() {
    UnitAnchors a = UnitAnchors.load();
    float[] w = a.w.clone();
    float[] h = a.hessian.clone();
    SparseGpt.prune(w, a.rows, a.cols, h, U50, 0.01, 128);
    assertArrayEquals(a.w, w, 0f);
    assertArrayEquals(a.hessian, h, 0f);
  }

  @Test
  void deadInputsGetZeroWeights() {
    UnitAnchors a = UnitAnchors.load();
    float[] h = a.hessian.clone();
    int dead = 17;
    for (int j = 0; j < a.cols; j++) {
      h[dead * a.cols + j] = 0f;
      h[j * a.cols + dead] = 0f;
    }
    SparseGpt.Result r = SparseGpt.prune(a.w, a.rows, a.cols, h, TWO_OF_FOUR, 0.01, 128);
    assertNull(r.warning());
    for (int n = 0; n < a.rows; n++) {
      assertEquals(0f, r.weights()[n * a.cols + dead]);
    }
    assertTrue(Masks.satisfies(r.weights(), a.rows, a.cols, 2, 4));
  }

  @Test
  void dampeningIsRaisedAndFinallyMagnitudeIsUsed() {
    UnitAnchors a = UnitAnchors.load();
    // rank-one H = 2 v v^T: singular; 0 dampening fails, the first retry (0 * 10) too: all fail
    int cols = a.cols;
    float[] singular = new float[cols * cols];
    for (int i = 0; i < cols; i++) {
      for (int j = 0; j < cols; j++) {
        singular[i * cols + j] = 2f * (1 + i % 3) * (1 + j % 3);
      }
    }
    SparseGpt.Result fallback = SparseGpt.prune(a.w, a.rows, cols, singular, TWO_OF_FOUR, 0, 128);
    assertNotNull(fallback.warning());
    assertTrue(fallback.warning().contains("magnitude"), fallback.warning());
    assertArrayEquals(
        Masks.apply(a.w, Masks.select(Scores.magnitude(a.w), a.rows, cols, TWO_OF_FOUR)),
        fallback.weights(),
        0f);
    // a negative diagonal shift that 1% cannot repair but 10% can
    float[] shifted = a.hessian.clone();
    double mean = 0;
    for (int i = 0; i < cols; i++) {
      mean += shifted[i * cols + i];
    }
    mean /= cols;
    for (int i = 0; i < cols; i++) {
      shifted[i * cols + i] -= (float) (0.05 * mean);
    }
    SparseGpt.Result raised = SparseGpt.prune(a.w, a.rows, cols, shifted, TWO_OF_FOUR, 0.01, 128);
    assertEquals(0.1, raised.damp(), 1e-12, raised.warning());
    assertNotNull(raised.warning());
    assertTrue(Masks.satisfies(raised.weights(), a.rows, cols, 2, 4));
  }

  /**
   * Several row tasks and blocks with a lazy update: the rows are pruned independently of each
   * other.
   */
  @Test
  void largerLayerRowsAreIndependent() {
    Random random = new Random(3);
    int rows = 70;
    int cols = 300;
    int samples = 400;
    float[] x = new float[samples * cols];
    for (int i = 0; i < x.length; i++) {
      x[i] = (float) (random.nextGaussian() * (1 + (i % cols) % 7));
    }
    InputStatistics stats = new InputStatistics(cols);
    stats.add(x, samples);
    float[] h = stats.hessian();
    float[] w = new float[rows * cols];
    for (int i = 0; i < w.length; i++) {
      w[i] = (float) (0.02 * random.nextGaussian());
    }
    for (SparsityPattern p :
        new SparsityPattern[] {TWO_OF_FOUR, new SparsityPattern.Unstructured(0.5, Compare.ROW)}) {
      float[] all = SparseGpt.prune(w, rows, cols, h, p, 0.01, 128).weights();
      int row = 37;
      float[] one =
          SparseGpt.prune(
                  java.util.Arrays.copyOfRange(w, row * cols, (row + 1) * cols),
                  1,
                  cols,
                  h,
                  p,
                  0.01,
                  128)
              .weights();
      float[] same = java.util.Arrays.copyOfRange(all, row * cols, (row + 1) * cols);
      // the lazy update (GEMM over all rows) may round differently than for one row; the mask is
      // the same
      assertEquals(0, ReferenceAnchorsTest.differingMaskPositions(one, same), p.toString());
      assertArrayEquals(one, same, 1e-6f, p.toString());
      assertNotEquals(0.0, Masks.sparsity(all));
    }
  }

  /**
   * In the matrix's memory: the bits of the copying call, with a dead input, and when the Hessian
   * cannot be factored (the magnitude fallback then sees the matrix as given, dead column
   * included).
   */
  @Test
  void pruningInTheMatrixsMemoryGivesTheBitsOfTheCopyingCall() {
    UnitAnchors a = UnitAnchors.load();
    int cols = a.cols;
    float[] dead = a.hessian.clone();
    for (int j = 0; j < cols; j++) {
      dead[17 * cols + j] = 0f;
      dead[j * cols + 17] = 0f;
    }
    float[] singular = new float[cols * cols];
    for (int i = 0; i < cols; i++) {
      for (int j = 0; j < cols; j++) {
        singular[i * cols + j] = 2f * (1 + i % 3) * (1 + j % 3);
      }
    }
    for (float[] h : new float[][] {a.hessian, dead, singular}) {
      for (SparsityPattern p : new SparsityPattern[] {U50, TWO_OF_FOUR}) {
        double damp = h == singular ? 0 : 0.01;
        SparseGpt.Result copying = SparseGpt.prune(a.w, a.rows, cols, h, p, damp, 128);
        float[] w = a.w.clone();
        SparseGpt.Result inPlace = SparseGpt.pruneInPlace(w, a.rows, cols, h.clone(), p, damp, 128);
        assertArrayEquals(copying.weights(), inPlace.weights(), 0f);
        assertEquals(copying.warning(), inPlace.warning());
        assertEquals(h == singular, copying.warning() != null);
      }
    }
  }
}
