package llmc.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The per-layer charts next to a quantized or pruned model: PNGs, the same bytes each run. */
class LayerPlotsTest {
  @TempDir Path dir;

  private static final byte[] PNG = {(byte) 0x89, 'P', 'N', 'G'};

  @Test
  void quantizeDrawsTheErrorPerLayerAndPruneTheSparsityPerLayer() throws IOException {
    byte[][] charts = new byte[2][];
    for (int run = 0; run < 2; run++) {
      Path out = dir.resolve("rtn" + run);
      Cli c =
          Cli.run(
              "quantize",
              Cli.stories(),
              "--method",
              "rtn",
              "--bits",
              "4",
              "--format",
              "compressed-tensors",
              "--out",
              out.toString());
      assertEquals(0, c.exitCode(), c.err());
      charts[run] = Files.readAllBytes(out.resolve("quantization-error.png"));
      assertArrayEquals(PNG, Arrays.copyOf(charts[run], 4));
    }
    assertArrayEquals(charts[0], charts[1], "the same report draws the same bytes");
    Path pruned = dir.resolve("pruned");
    Cli p =
        Cli.run(
            "prune",
            Cli.stories(),
            "--method",
            "magnitude",
            "--sparsity",
            "0.5",
            "--out",
            pruned.toString());
    assertEquals(0, p.exitCode(), p.err());
    assertArrayEquals(PNG, Arrays.copyOf(Files.readAllBytes(pruned.resolve("sparsity.png")), 4));
  }
}
