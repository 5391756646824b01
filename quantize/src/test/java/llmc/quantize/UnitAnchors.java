package llmc.quantize;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;

/**
 * The shared reference anchors ({@code reference/unit_anchors.json}) and their inputs, rebuilt from
 * the LCG of the file's spec: {@code W [8][192]}, {@code X [256][192]}, {@code H = 2/T X^T X}, and
 * Wanda's column norms {@code sum_t X_tj^2} (float64).
 *
 * <p>Shared with prune's tests through quantize's test jar.
 */
public final class UnitAnchors {
  public final int rows;
  public final int cols;
  public final int samples;
  public final float[] w; // [rows][cols]
  public final float[] x; // [samples][cols]
  public final float[] hessian; // [cols][cols]
  public final double[] columnSquaredNorms; // [cols]
  public final JsonNode json;

  private static UnitAnchors instance;

  public static synchronized UnitAnchors load() {
    if (instance == null) {
      instance = new UnitAnchors();
    }
    return instance;
  }

  private UnitAnchors() {
    Path file =
        Path.of(
            System.getProperty("llmc.shared", "../../shared"), "reference", "unit_anchors.json");
    try {
      json = new ObjectMapper().readTree(file.toFile());
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    rows = json.get("rows").asInt();
    cols = json.get("cols").asInt();
    samples = json.get("T").asInt();
    Lcg lcg = new Lcg();
    w = new float[rows * cols];
    for (int i = 0; i < w.length; i++) {
      w[i] = (float) (0.2 * (lcg.next() - 0.5));
    }
    double[] u = new double[samples * cols];
    for (int i = 0; i < u.length; i++) {
      u[i] = lcg.next();
    }
    double[] r = new double[samples];
    for (int t = 0; t < samples; t++) {
      r[t] = lcg.next();
    }
    x = new float[samples * cols];
    for (int t = 0; t < samples; t++) {
      for (int j = 0; j < cols; j++) {
        x[t * cols + j] = (float) ((u[t * cols + j] - 0.5) * (1 + (j % 5)) + 0.5 * (r[t] - 0.5));
      }
    }
    hessian = new float[cols * cols];
    for (int i = 0; i < cols; i++) {
      for (int j = 0; j < cols; j++) {
        double s = 0;
        for (int t = 0; t < samples; t++) {
          s += (double) x[t * cols + i] * x[t * cols + j];
        }
        hessian[i * cols + j] = (float) (2.0 / samples * s);
      }
    }
    columnSquaredNorms = new double[cols];
    for (int j = 0; j < cols; j++) {
      for (int t = 0; t < samples; t++) {
        columnSquaredNorms[j] += (double) x[t * cols + j] * x[t * cols + j];
      }
    }
  }

  /** {@code state_{k+1} = (1103515245 state_k + 12345) mod 2^31}, {@code u = state / 2^31}. */
  private static final class Lcg {
    private long state = 12345;

    double next() {
      state = (1103515245L * state + 12345L) % (1L << 31);
      return state / (double) (1L << 31);
    }
  }

  public float[] values(String result) {
    JsonNode v = json.get("results").get(result).get("values");
    float[] out = new float[v.size()];
    for (int i = 0; i < out.length; i++) {
      out[i] = (float) v.get(i).asDouble();
    }
    return out;
  }

  public double outErr(String result) {
    return json.get("results").get(result).get("out_err").asDouble();
  }

  /** {@code sum(((Q - W) X^T)^2)} in float64. */
  public double outputError(float[] q) {
    double total = 0;
    for (int n = 0; n < rows; n++) {
      for (int t = 0; t < samples; t++) {
        double s = 0;
        for (int k = 0; k < cols; k++) {
          s += ((double) q[n * cols + k] - w[n * cols + k]) * x[t * cols + k];
        }
        total += s * s;
      }
    }
    return total;
  }
}
