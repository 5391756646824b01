package llmc.quantize;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.function.BiFunction;
import java.util.function.BiPredicate;
import java.util.function.Function;
import llmc.calibration.CompressedMatrix;
import llmc.calibration.InputStatistics;
import llmc.calibration.MatrixCompressor;
import llmc.model.Linear;
import llmc.model.LlamaFamily;

/**
 * AWQ on the shared walk: for each input of a layer, the scales of {@link Awq#searchScales} over
 * the matrices reading it, then (with clipping) {@link Awq#clip} per matrix but q and k, then
 * {@code inner} (round-to-nearest, or GPTQ: AWQ's scales then GPTQ) on {@code W diag(s)} with the
 * statistics of {@code x / s}. The walk folds {@code 1/s} into the norms and into {@code v_proj}'s
 * and {@code up_proj}'s rows, so the output is a plain quantized checkpoint.
 */
public final class AwqCompressor implements MatrixCompressor {
  /** One input's search, for the report. */
  public record Search(int layer, Linear.Input input, double alpha, double loss, double rtnLoss) {}

  private final MatrixCompressor inner;
  private final BiFunction<Integer, Linear, QuantScheme> schemeOf;
  private final LlamaFamily family;
  private final BiPredicate<Integer, Linear> hasBias;
  private final boolean clip;
  private final List<Search> searches = Collections.synchronizedList(new ArrayList<>());

  /**
   * @param inner what quantizes the scaled matrices (RTN or GPTQ), with the same grids
   * @param hasBias whether a matrix of a layer has a bias ({@code v_proj}'s would need dividing
   *     too: o's input is then left unscaled)
   * @param clip AWQ's clipping search before rounding (round-to-nearest only)
   */
  public AwqCompressor(
      MatrixCompressor inner,
      BiFunction<Integer, Linear, QuantScheme> schemeOf,
      LlamaFamily family,
      BiPredicate<Integer, Linear> hasBias,
      boolean clip) {
    this.inner = inner;
    this.schemeOf = schemeOf;
    this.family = family;
    this.hasBias = hasBias;
    this.clip = clip;
  }

  /** Every input's search so far, in the order they ran. */
  public List<Search> searches() {
    synchronized (searches) {
      return List.copyOf(searches);
    }
  }

  /** The layer's searches, one line per input (INPUT ALPHA ERROR RTN_ERROR), for the journal. */
  @Override
  public String layerNote(int layer) {
    StringBuilder note = new StringBuilder();
    for (Search s : searches()) {
      if (s.layer() == layer) {
        note.append(s.input())
            .append(' ')
            .append(s.alpha())
            .append(' ')
            .append(s.loss())
            .append(' ')
            .append(s.rtnLoss())
            .append('\n');
      }
    }
    return note.isEmpty() ? null : note.toString();
  }

  @Override
  public void replayedLayer(int layer, String note) {
    if (note == null) {
      return;
    }
    for (String line : note.split("\n")) {
      String[] f = line.split(" ");
      searches.add(
          new Search(
              layer,
              Linear.Input.valueOf(f[0]),
              Double.parseDouble(f[1]),
              Double.parseDouble(f[2]),
              Double.parseDouble(f[3])));
    }
  }

  @Override
  public boolean compresses(int layer, Linear linear) {
    return inner.compresses(layer, linear);
  }

  @Override
  public boolean needsStatistics() {
    return true;
  }

  @Override
  public float[] inputScales(
      int layer,
      Linear.Input input,
      List<Linear> linears,
      Function<Linear, float[]> weights,
      InputStatistics stats) {
    if (!llmc.calibration.ScaleFold.canFold(layer, input, this::compresses, hasBias)) {
      return null;
    }
    double[] meanAbs = stats.meanAbs();
    if (input == Linear.Input.ATTN_OUT) {
      meanAbs = tiedOverQueryHeads(meanAbs);
    }
    List<float[]> w = new ArrayList<>();
    List<QuantScheme> schemes = new ArrayList<>();
    int[] rows = new int[linears.size()];
    for (int i = 0; i < linears.size(); i++) {
      Linear linear = linears.get(i);
      w.add(weights.apply(linear));
      schemes.add(schemeOf.apply(layer, linear));
      rows[i] = linear.outFeatures(family);
    }
    Awq.Scales s = Awq.searchScales(meanAbs, w, rows, schemes, stats.hessian());
    searches.add(new Search(layer, input, s.alpha(), s.loss(), s.rtnLoss()));
    return s.scales();
  }

  /**
   * o's input features of the query heads that share a key/value head get one scale (their mean
   * |x|), since one {@code v_proj} row makes all of them.
   */
  private double[] tiedOverQueryHeads(double[] meanAbs) {
    double[] tied = meanAbs.clone();
    llmc.calibration.ScaleFold.forEachTiedGroup(
        family,
        group -> {
          double sum = 0;
          for (int i : group) {
            sum += meanAbs[i];
          }
          for (int i : group) {
            tied[i] = sum / group.length;
          }
        });
    return tied;
  }

  @Override
  public CompressedMatrix compress(
      int layer, Linear linear, float[] weight, int rows, int cols, InputStatistics stats) {
    long start = System.nanoTime();
    if (clip && linear != Linear.Q && linear != Linear.K) { // q and k feed a softmax: not clipped
      Awq.clip(weight, rows, cols, schemeOf.apply(layer, linear), stats.hessian());
    }
    double clipSeconds = (System.nanoTime() - start) / 1e9;
    CompressedMatrix c =
        inner.compress(layer, linear, weight, rows, cols, inner.needsStatistics() ? stats : null);
    if (!clip) {
      return c;
    }
    return new CompressedMatrix(
        c.valuesAreCodes() ? null : c.weight(),
        c.quantized(),
        c.seconds() + clipSeconds,
        c.gptqLoss(),
        c.weightMse(),
        c.damp(),
        c.fellBackToRtn(),
        c.warning());
  }
}
