package llmc.quantize;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;

import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * The Hessian's work done in its own memory ({@link InverseHessian#factor}, {@link
 * Gptq#quantizeConsuming}) gives the bits of the same work on copies, failed attempts included.
 */
class InPlaceHessianTest {

  private static float[] gaussian(int count, long seed) {
    Random r = new Random(seed);
    float[] x = new float[count];
    for (int i = 0; i < x.length; i++) {
      x[i] = (float) r.nextGaussian();
    }
    return x;
  }

  /**
   * A 300-wide (three blocks of 128, the last partial) Hessian of rank 200, shifted down by 5% of
   * its mean diagonal: 1% dampening leaves it indefinite, so the factorization fails in its second
   * block, after trailing updates have run over the later diagonal blocks; 10% succeeds.
   */
  @Test
  void aFailedAttemptGivesTheMatrixBackAndTheRetryHasTheBitsOfAFreshCopy() {
    int n = 300;
    float[] h = Gptq.hessian(gaussian(200 * n, 5), 200, n);
    double meanDiag = 0;
    for (int i = 0; i < n; i++) {
      meanDiag += h[i * n + i];
    }
    meanDiag /= n;
    for (int i = 0; i < n; i++) {
      h[i * n + i] -= (float) (0.05 * meanDiag);
    }
    double mean = 0;
    for (int i = 0; i < n; i++) {
      mean += h[i * n + i];
    }
    mean /= n;
    // What the copying code computed: each attempt on a dampened copy.
    float[] first = h.clone();
    for (int i = 0; i < n; i++) {
      first[i * n + i] += (float) (0.01 * mean);
    }
    assertNull(Cholesky.upperFactorOfInverse(first, n), "1% must fail for this test to mean much");
    double damp = 0.01 * 10;
    float[] second = h.clone();
    for (int i = 0; i < n; i++) {
      second[i * n + i] += (float) (damp * mean);
    }
    float[] expected = Cholesky.upperFactorOfInverse(second, n);
    assertNotNull(expected);

    float[] work = h.clone();
    InverseHessian.Factor f = InverseHessian.factor(work, n, 0.01);
    assertEquals(damp, f.damp());
    assertArrayEquals(expected, f.upper());
  }

  @Test
  void theDiagonalBlocksAreAllThatFactorizationWritesAboveTheDiagonal() {
    int n = 300;
    float[] h = Gptq.hessian(gaussian(400 * n, 9), 400, n);
    float[] a = h.clone();
    Cholesky.DiagonalBlocks blocks = Cholesky.DiagonalBlocks.save(a, n);
    // Spoil it as a failure would: a run that fails at its last pivot.
    a[(n - 1) * n + n - 1] = -1e9f;
    assertEquals(false, Cholesky.factorInPlace(a, n));
    blocks.restore(a, n);
    for (int i = 0; i < n; i++) {
      for (int j = 0; j < n; j++) {
        if (i != j) {
          assertEquals(h[i * n + j], a[i * n + j], "(" + i + ", " + j + ")");
        }
      }
    }
  }

  @Test
  void symmetricPermutationInPlaceEqualsTheCopy() {
    int n = 77;
    float[] h = gaussian(n * n, 3);
    int[] perm = new int[n];
    for (int i = 0; i < n; i++) {
      perm[i] = i;
    }
    Random r = new Random(4);
    for (int i = n - 1; i > 0; i--) {
      int j = r.nextInt(i + 1);
      int t = perm[i];
      perm[i] = perm[j];
      perm[j] = t;
    }
    for (int k = 0; k < n; k++) { // a fixed point among the cycles
      if (perm[k] == 10) {
        perm[k] = perm[10];
        perm[10] = 10;
        break;
      }
    }
    float[] expected = Gptq.permuteSymmetric(h, n, perm);
    float[] inPlace = h.clone();
    Gptq.permuteSymmetricInPlace(inPlace, n, perm);
    assertArrayEquals(expected, inPlace);
  }

  @Test
  void quantizingInTheHessiansMemoryGivesTheBitsOfTheCopyingCall() {
    int rows = 64;
    int cols = 300;
    float[] w = gaussian(rows * cols, 1);
    float[] h = Gptq.hessian(gaussian(500 * cols, 2), 500, cols);
    for (boolean actOrder : new boolean[] {false, true}) {
      Gptq.Options o =
          new Gptq.Options(
              new QuantScheme(4, 32, false, llmc.formats.DType.F16), 0.01, 128, actOrder, false);
      Gptq.Result copying = Gptq.quantize(w, rows, cols, h, o);
      Gptq.Result consuming = Gptq.quantizeConsuming(w, rows, cols, h.clone(), o);
      assertArrayEquals(copying.quantized().codes(), consuming.quantized().codes());
      assertArrayEquals(copying.quantized().scales(), consuming.quantized().scales());
      assertEquals(copying.loss(), consuming.loss());
    }
  }

  /**
   * GPTQ in the matrix's memory too: the bits of the copying call, with act-order or not, with
   * inputs that are always 0 (their columns zeroed), and when the Hessian cannot be factored (the
   * RTN fallback then sees the matrix as given).
   */
  @Test
  void quantizingInTheMatrixsMemoryGivesTheBitsOfTheCopyingCall() {
    int rows = 48;
    int cols = 300;
    float[] w = gaussian(rows * cols, 3);
    float[] x = gaussian(500 * cols, 4);
    for (int t = 0; t < 500; t++) {
      x[t * cols + 7] = 0f; // two dead inputs
      x[t * cols + 150] = 0f;
    }
    float[] h = Gptq.hessian(x, 500, cols);
    float[] negative = h.clone();
    for (int i = 0; i < negative.length; i++) {
      negative[i] = -negative[i]; // no dampening makes it positive definite
    }
    for (float[] hessian : new float[][] {h, negative}) {
      for (boolean actOrder : new boolean[] {false, true}) {
        Gptq.Options o =
            new Gptq.Options(
                new QuantScheme(4, 32, false, llmc.formats.DType.F16), 0.01, 128, actOrder, false);
        Gptq.Result copying = Gptq.quantize(w, rows, cols, hessian, o);
        Gptq.Result inPlace = Gptq.quantizeInPlace(w.clone(), rows, cols, hessian.clone(), o);
        assertEquals(hessian == negative, copying.fellBackToRtn());
        assertEquals(copying.fellBackToRtn(), inPlace.fellBackToRtn());
        assertArrayEquals(copying.quantized().codes(), inPlace.quantized().codes());
        assertArrayEquals(copying.quantized().scales(), inPlace.quantized().scales());
        assertArrayEquals(copying.quantized().zeros(), inPlace.quantized().zeros());
        assertArrayEquals(copying.quantized().gIdx(), inPlace.quantized().gIdx());
        assertEquals(copying.loss(), inPlace.loss());
      }
    }
  }
}
