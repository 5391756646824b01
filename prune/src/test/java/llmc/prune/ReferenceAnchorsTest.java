package llmc.prune;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import llmc.calibration.InputStatistics;
import llmc.quantize.UnitAnchors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The {@code magnitude_*}, {@code wanda_*} and {@code sparsegpt_*} results of {@code
 * reference/unit_anchors.json}, reproduced: the same zeros at the same places, the kept values
 * within float noise, and {@code out_err} to a relative 1e-6 (measured: 2e-8 at most).
 *
 * <p>Comparison groups, as the anchors show: {@code magnitude_u50} prunes the lowest half of the
 * whole matrix (rows keep 89 to 107 of their 192 weights), {@code wanda_u50} the lowest half of
 * each row (96 per row); SparseGPT unstructured prunes half of each block's {@code [rows][128]}
 * slice.
 */
class ReferenceAnchorsTest {
  /** Magnitude and Wanda keep W's own values: they must be equal. */
  static final double SCORE_METHODS_TOLERANCE = 0;

  /** SparseGPT's updates run in another summation order than PyTorch's. */
  static final double SPARSEGPT_TOLERANCE = 1e-6;

  static final double OUT_ERR_RELATIVE_TOLERANCE = 1e-6;

  static final SparsityPattern U50_MATRIX = new SparsityPattern.Unstructured(0.5, Compare.MATRIX);
  static final SparsityPattern U50_ROW = new SparsityPattern.Unstructured(0.5, Compare.ROW);
  static final SparsityPattern TWO_OF_FOUR = new SparsityPattern.NofM(2, 4);

  @ParameterizedTest(name = "{0}")
  @ValueSource(
      strings = {
        "magnitude_u50",
        "magnitude_2of4",
        "wanda_u50",
        "wanda_2of4",
        "sparsegpt_u50",
        "sparsegpt_2of4"
      })
  void reproducesReferenceMaskValuesAndOutputError(String name) {
    UnitAnchors a = UnitAnchors.load();
    float[] pruned = prune(name, a);
    float[] reference = a.values(name);
    assertEquals(
        0, differingMaskPositions(pruned, reference), name + ": positions pruned differently");
    double tolerance = name.startsWith("sparsegpt") ? SPARSEGPT_TOLERANCE : SCORE_METHODS_TOLERANCE;
    double maxDifference = 0;
    for (int i = 0; i < pruned.length; i++) {
      maxDifference = Math.max(maxDifference, Math.abs(pruned[i] - reference[i]));
    }
    assertTrue(maxDifference <= tolerance, name + ": values differ by up to " + maxDifference);
    double outErr = a.outputError(pruned);
    assertEquals(
        a.outErr(name), outErr, OUT_ERR_RELATIVE_TOLERANCE * a.outErr(name), name + " out_err");
    assertEquals(0.5, Masks.sparsity(pruned), 0.0, name + " sparsity");
  }

  /**
   * The other comparison group would not reproduce the anchors: the groups are determined by them.
   */
  @Test
  void anchorsDetermineTheComparisonGroups() {
    UnitAnchors a = UnitAnchors.load();
    float[] magnitude = Scores.magnitude(a.w);
    float[] wanda = Scores.wanda(a.w, a.rows, a.cols, a.columnSquaredNorms);
    assertEquals(
        26,
        differingMaskPositions(
            Masks.apply(a.w, Masks.select(magnitude, a.rows, a.cols, U50_ROW)),
            a.values("magnitude_u50")));
    assertEquals(
        34,
        differingMaskPositions(
            Masks.apply(a.w, Masks.select(wanda, a.rows, a.cols, U50_MATRIX)),
            a.values("wanda_u50")));
  }

  /** The production statistics (float32 sums in {@link InputStatistics}) give the same masks. */
  @Test
  void inputStatisticsGiveTheSameResults() {
    UnitAnchors a = UnitAnchors.load();
    InputStatistics stats = new InputStatistics(a.cols);
    stats.add(a.x, a.samples);
    float[] wanda = Scores.wanda(a.w, a.rows, a.cols, stats.columnSquaredNorms());
    assertEquals(
        0,
        differingMaskPositions(
            Masks.apply(a.w, Masks.select(wanda, a.rows, a.cols, U50_ROW)), a.values("wanda_u50")));
    assertEquals(
        0,
        differingMaskPositions(
            Masks.apply(a.w, Masks.select(wanda, a.rows, a.cols, TWO_OF_FOUR)),
            a.values("wanda_2of4")));
    for (String name : new String[] {"sparsegpt_u50", "sparsegpt_2of4"}) {
      SparsityPattern p = name.endsWith("u50") ? U50_MATRIX : TWO_OF_FOUR;
      float[] pruned =
          SparseGpt.prune(a.w, a.rows, a.cols, stats.hessian(), p, 0.01, 128).weights();
      assertEquals(0, differingMaskPositions(pruned, a.values(name)), name);
      assertEquals(
          a.outErr(name),
          a.outputError(pruned),
          OUT_ERR_RELATIVE_TOLERANCE * a.outErr(name),
          name + " out_err");
    }
  }

  static float[] prune(String name, UnitAnchors a) {
    SparsityPattern p =
        switch (name) {
          case "magnitude_u50" -> U50_MATRIX;
          case "wanda_u50" -> U50_ROW;
          case "sparsegpt_u50" -> U50_MATRIX;
          default -> TWO_OF_FOUR;
        };
    if (name.startsWith("sparsegpt")) {
      SparseGpt.Result r = SparseGpt.prune(a.w, a.rows, a.cols, a.hessian, p, 0.01, 128);
      assertNull(r.warning(), name);
      return r.weights();
    }
    float[] scores =
        name.startsWith("wanda")
            ? Scores.wanda(a.w, a.rows, a.cols, a.columnSquaredNorms)
            : Scores.magnitude(a.w);
    return Masks.apply(a.w, Masks.select(scores, a.rows, a.cols, p));
  }

  /** Positions that are zero in one array and not the other. */
  static int differingMaskPositions(float[] x, float[] y) {
    int differing = 0;
    for (int i = 0; i < x.length; i++) {
      if ((x[i] == 0f) != (y[i] == 0f)) {
        differing++;
      }
    }
    return differing;
  }
}
