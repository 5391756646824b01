package llmc.distill;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.List;
import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.knowm.xchart.XYSeries;
import org.knowm.xchart.style.markers.SeriesMarkers;

/**
 * The training curves as a PNG (XChart): training loss against steps on the left axis, the
 * evaluation perplexity on the right.
 */
public final class CurvePlot {
  private CurvePlot() {}

  public static void write(
      Path png, String title, List<Trainer.StepLog> steps, List<Trainer.EvalPoint> evals) {
    System.setProperty("java.awt.headless", "true");
    XYChart chart =
        new XYChartBuilder()
            .width(900)
            .height(500)
            .title(title)
            .xAxisTitle("step")
            .yAxisTitle("training loss")
            .build();
    chart.getStyler().setLegendPosition(org.knowm.xchart.style.Styler.LegendPosition.InsideNE);
    chart.getStyler().setYAxisGroupPosition(1, org.knowm.xchart.style.Styler.YAxisPosition.Right);
    chart.getStyler().setAntiAlias(false);
    if (!steps.isEmpty()) {
      XYSeries loss =
          chart.addSeries(
              "training loss",
              steps.stream().mapToDouble(Trainer.StepLog::step).toArray(),
              steps.stream().mapToDouble(Trainer.StepLog::loss).toArray());
      loss.setMarker(SeriesMarkers.NONE);
    }
    if (!evals.isEmpty()) {
      XYSeries ppl =
          chart.addSeries(
              "eval perplexity (P1)",
              evals.stream().mapToDouble(Trainer.EvalPoint::step).toArray(),
              evals.stream().mapToDouble(Trainer.EvalPoint::perplexity).toArray());
      ppl.setYAxisGroup(1);
      ppl.setMarker(SeriesMarkers.CIRCLE);
      chart.setYAxisGroupTitle(1, "eval perplexity");
    }
    try {
      BitmapEncoder.saveBitmap(chart, png.toString(), BitmapEncoder.BitmapFormat.PNG);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot write " + png, e);
    }
  }
}
