package llmc.pipeline;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.knowm.xchart.XYSeries;
import org.knowm.xchart.style.Styler;
import org.knowm.xchart.style.markers.SeriesMarkers;

/**
 * {@code llmc compare}: for each variant, its size ({@link InspectStage}) and its quality against
 * the base ({@link EvalStage} with the base: P1 perplexity, KL, top-1 on the same windows), and
 * optionally a chart of size against perplexity drawn with XChart.
 */
public final class CompareStage implements Stage<CompareSettings, CompareReport> {

  @Override
  public CompareReport run(CompareSettings s, Progress progress) {
    InspectStage inspect = new InspectStage();
    EvalStage eval = new EvalStage();
    CompareReport.Row baseRow = null;
    EvalReport first = null;
    List<CompareReport.Row> rows = new ArrayList<>();
    for (Path model : s.models()) {
      InspectReport size = inspect.run(InspectSettings.of(model), progress);
      EvalReport quality =
          eval.run(
              new EvalSettings(
                  model, s.data(), s.field(), null, s.maxWindows(), 1, 0, s.base(), s.base()),
              progress);
      if (first == null) {
        first = quality;
      }
      if (s.base() != null && baseRow == null) {
        InspectReport baseSize = inspect.run(InspectSettings.of(s.base()), progress);
        baseRow = row(s.base(), baseSize, quality.basePerplexity(), null, null, null);
      }
      Double increase =
          quality.basePerplexity() == null
              ? null
              : quality.perplexity() / quality.basePerplexity() - 1;
      rows.add(
          row(
              model,
              size,
              quality.perplexity(),
              increase,
              quality.meanKl(),
              quality.top1Agreement()));
    }
    if (s.chart() != null) {
      draw(s.chart(), baseRow, rows);
    }
    progress.finished();
    return new CompareReport(
        "compare",
        s.data().toString(),
        first.protocol(),
        first.seqLen(),
        first.windows(),
        baseRow,
        List.copyOf(rows),
        s.chart() == null ? null : s.chart().toString());
  }

  private static CompareReport.Row row(
      Path model, InspectReport size, double ppl, Double increase, Double kl, Double top1) {
    return new CompareReport.Row(
        model.toString(),
        size.gguf() ? "gguf" : "safetensors",
        size.sizeOnDiskBytes(),
        size.bitsPerParameter(),
        ppl,
        increase,
        kl,
        top1);
  }

  /** Size (MiB) against perplexity, one point per model, labelled by its file name. */
  private static void draw(Path png, CompareReport.Row base, List<CompareReport.Row> rows) {
    System.setProperty("java.awt.headless", "true");
    XYChart chart =
        new XYChartBuilder()
            .width(900)
            .height(550)
            .title("size against perplexity (P1)")
            .xAxisTitle("size on disk (MiB)")
            .yAxisTitle("perplexity")
            .build();
    chart.getStyler().setDefaultSeriesRenderStyle(XYSeries.XYSeriesRenderStyle.Scatter);
    chart.getStyler().setLegendPosition(Styler.LegendPosition.OutsideE);
    chart.getStyler().setMarkerSize(10);
    chart.getStyler().setAntiAlias(false);
    List<CompareReport.Row> all = new ArrayList<>();
    if (base != null) {
      all.add(base);
    }
    all.addAll(rows);
    for (CompareReport.Row r : all) {
      String name = Path.of(r.model()).getFileName() + (r == base ? " (base)" : "");
      XYSeries point =
          chart.addSeries(
              name, new double[] {r.sizeBytes() / 1048576.0}, new double[] {r.perplexity()});
      point.setMarker(r == base ? SeriesMarkers.DIAMOND : SeriesMarkers.CIRCLE);
    }
    try {
      Path parent = png.toAbsolutePath().getParent();
      if (parent != null) {
        Files.createDirectories(parent);
      }
      BitmapEncoder.saveBitmap(chart, png.toString(), BitmapEncoder.BitmapFormat.PNG);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot write " + png, e);
    }
  }
}
