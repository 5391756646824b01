package llmc.pipeline;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.knowm.xchart.XYSeries;
import org.knowm.xchart.style.Styler;
import org.knowm.xchart.style.markers.SeriesMarkers;

/**
 * Per-layer charts stored next to a report, drawn with XChart: a quantized model's error per
 * decoder layer and linear layer ({@value #QUANTIZATION}: GPTQ's loss, or RTN's weight MSE, on a
 * log scale) and a pruned model's sparsity per layer ({@value #SPARSITY}). The same report gives
 * the same bytes (no dates, no anti-aliasing).
 */
final class LayerPlots {
  static final String QUANTIZATION = "quantization-error.png";
  static final String SPARSITY = "sparsity.png";

  /** {@code model.layers.12.mlp.down_proj}: layer 12, {@code down_proj}. */
  private static final Pattern NAME = Pattern.compile("layers\\.(\\d+)\\.(?:[a-z_]+\\.)?([a-z_]+)");

  private LayerPlots() {}

  /** Draws what the report has per matrix into {@code dir}; nothing for other reports. */
  static void write(Object report, Path dir) {
    if (report instanceof QuantizeReport q && q.matrices() != null && !q.matrices().isEmpty()) {
      Map<String, TreeMap<Integer, Double>> series = new TreeMap<>();
      boolean gptq = q.matrices().stream().anyMatch(m -> m.gptqLoss() != null);
      for (QuantizeReport.Matrix m : q.matrices()) {
        Double value = gptq ? m.gptqLoss() : m.weightMse();
        if (value != null && value > 0) {
          put(series, m.name(), value);
        }
      }
      draw(
          dir.resolve(QUANTIZATION),
          "quantization error per layer (" + q.method() + ")",
          gptq ? "GPTQ loss (sum over the matrix)" : "weight MSE",
          series,
          true);
    } else if (report instanceof PruneReport p && p.matrices() != null && !p.matrices().isEmpty()) {
      Map<String, TreeMap<Integer, Double>> series = new TreeMap<>();
      for (PruneReport.Matrix m : p.matrices()) {
        put(series, m.name(), m.sparsity());
      }
      draw(
          dir.resolve(SPARSITY),
          "sparsity per layer (" + p.method() + ")",
          "fraction of zeros",
          series,
          false);
    }
  }

  private static void put(Map<String, TreeMap<Integer, Double>> series, String name, double v) {
    Matcher m = NAME.matcher(name);
    if (m.find()) {
      series.computeIfAbsent(m.group(2), k -> new TreeMap<>()).put(Integer.parseInt(m.group(1)), v);
    }
  }

  private static void draw(
      Path png,
      String title,
      String yTitle,
      Map<String, TreeMap<Integer, Double>> series,
      boolean log) {
    if (series.isEmpty()) {
      return;
    }
    System.setProperty("java.awt.headless", "true");
    XYChart chart =
        new XYChartBuilder()
            .width(900)
            .height(500)
            .title(title)
            .xAxisTitle("decoder layer")
            .yAxisTitle(yTitle)
            .build();
    chart.getStyler().setLegendPosition(Styler.LegendPosition.OutsideE);
    chart.getStyler().setYAxisLogarithmic(log);
    if (!log) { // a fraction
      chart.getStyler().setYAxisMin(0.0);
      chart.getStyler().setYAxisMax(1.0);
    }
    chart.getStyler().setAntiAlias(false);
    for (Map.Entry<String, TreeMap<Integer, Double>> e : series.entrySet()) {
      List<Double> x = new ArrayList<>();
      List<Double> y = new ArrayList<>();
      e.getValue()
          .forEach(
              (layer, v) -> {
                x.add((double) layer);
                y.add(v);
              });
      XYSeries s = chart.addSeries(e.getKey(), x, y);
      s.setMarker(SeriesMarkers.CIRCLE);
    }
    try {
      BitmapEncoder.saveBitmap(chart, png.toString(), BitmapEncoder.BitmapFormat.PNG);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot write " + png, e);
    }
  }
}
