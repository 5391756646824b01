package llmc.calibration;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.Random;
import llmc.model.Linear;
import org.junit.jupiter.api.Test;

/** The Hessian handed to its last reader in the statistics' own memory. */
class InputStatisticsTest {

  private static InputStatistics stats(long seed) {
    Random r = new Random(seed);
    float[] x = new float[40 * 9];
    for (int i = 0; i < x.length; i++) {
      x[i] = (float) r.nextGaussian();
    }
    InputStatistics s = new InputStatistics(9);
    s.add(x, 40);
    return s;
  }

  @Test
  void beforeTheLastReadEachReaderGetsACopyAndTheLastTheStatisticsMemory() {
    InputStatistics s = stats(1);
    float[] expected = stats(1).hessian();
    float[] a = s.hessianToChange();
    float[] b = s.hessianToChange();
    assertNotSame(a, b);
    assertArrayEquals(expected, a);
    a[0] = 42f; // a reader's changes stay its own
    s.lastRead();
    assertArrayEquals(expected, s.hessianToChange());
    assertThrows(IllegalStateException.class, s::hessian);
    assertThrows(IllegalStateException.class, s::hessianToChange);
    assertThrows(IllegalStateException.class, s::columnSquaredNorms);
  }

  /** A compressor that works in the Hessian's memory, as GPTQ and SparseGPT do. */
  private static MatrixCompressor consuming(float[][] seen) {
    return new MatrixCompressor() {
      @Override
      public boolean compresses(int layer, Linear linear) {
        return true;
      }

      @Override
      public boolean needsStatistics() {
        return true;
      }

      @Override
      public CompressedMatrix compress(
          int layer, Linear linear, float[] weight, int rows, int cols, InputStatistics st) {
        float[] h = st.hessianToChange();
        seen[seen[0] == null ? 0 : 1] = h.clone();
        java.util.Arrays.fill(h, Float.NaN); // spoils it, as the factorization does
        return CompressedMatrix.values(weight, 0, null);
      }
    };
  }

  @Test
  void stackedMethodsBothReadTheHessianWhenTheMatrixIsTheInputsLast() {
    float[][] seen = new float[2][];
    InputStatistics s = stats(2);
    s.lastRead();
    consuming(seen).then(consuming(seen)).compress(0, Linear.DOWN, new float[9], 1, 9, s);
    float[] expected = stats(2).hessian();
    assertArrayEquals(expected, seen[0]);
    assertArrayEquals(expected, seen[1]);
    assertThrows(IllegalStateException.class, s::hessian, "the second read took the memory");
  }
}
