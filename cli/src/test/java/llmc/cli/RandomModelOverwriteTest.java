package llmc.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** random-model, as every command that writes: an existing output only with --overwrite. */
class RandomModelOverwriteTest {
  @TempDir Path dir;

  @Test
  void anExistingOutputIsRefusedWithoutOverwriteAndReplacedWithIt() throws IOException {
    Path out = dir.resolve("random");
    String[] args = {
      "random-model", "--config", Cli.stories(), "--out", out.toString(), "--seed", "1"
    };
    assertEquals(0, Cli.run(args).exitCode());
    byte[] weights = Files.readAllBytes(out.resolve("model.safetensors"));
    assertTrue(Files.exists(out.resolve("llmc-report.json")));
    Cli again = Cli.run(args);
    assertEquals(2, again.exitCode());
    assertTrue(again.err().contains("--overwrite"), again.err());
    String[] overwrite = java.util.Arrays.copyOf(args, args.length + 1);
    overwrite[args.length] = "--overwrite";
    Cli replaced = Cli.run(overwrite);
    assertEquals(0, replaced.exitCode(), replaced.err());
    assertArrayEquals(weights, Files.readAllBytes(out.resolve("model.safetensors")), "same seed");
    Cli json =
        Cli.run(
            "random-model",
            "--config",
            Cli.stories(),
            "--out",
            dir.resolve("j").toString(),
            "--json");
    assertEquals(0, json.exitCode(), json.err());
    assertEquals("random-model", json.json().get("command").asText());
    assertEquals(dir.resolve("j").toString(), json.json().get("out").asText());
    // A folder llmc did not write is never replaced.
    Path foreign = dir.resolve("foreign");
    Files.createDirectories(foreign);
    Files.writeString(foreign.resolve("notes.txt"), "mine");
    Cli refused =
        Cli.run(
            "random-model", "--config", Cli.stories(), "--out", foreign.toString(), "--overwrite");
    assertEquals(2, refused.exitCode());
    assertTrue(Files.exists(foreign.resolve("notes.txt")));
  }

  /** Large random models come in shards, as Hugging Face's do, and read back as one model. */
  @Test
  void shardedOutputHasAnIndexAndEvaluatesLikeOneFile() throws IOException {
    Path one = dir.resolve("one");
    Path sharded = dir.resolve("sharded");
    String[] base = {"random-model", "--config", Cli.stories(), "--seed", "3", "--dtype", "f32"};
    assertEquals(0, Cli.run(cat(base, "--out", one.toString())).exitCode());
    Cli r = Cli.run(cat(base, "--out", sharded.toString(), "--max-shard-size", "300KB"));
    assertEquals(0, r.exitCode(), r.err());
    assertTrue(Files.exists(sharded.resolve("model.safetensors.index.json")));
    try (var files = Files.list(sharded)) {
      long shards =
          files
              .filter(f -> f.getFileName().toString().matches("model-\\d+-of-\\d+\\.safetensors"))
              .count();
      assertTrue(shards >= 3, shards + " shards for about 1 MB at 300 KB each");
    }
    Cli a = Cli.run("eval", one.toString(), "--data", Cli.valid(), "--max-windows", "2", "--json");
    Cli b =
        Cli.run("eval", sharded.toString(), "--data", Cli.valid(), "--max-windows", "2", "--json");
    assertEquals(0, b.exitCode(), b.err());
    assertEquals(a.json().get("perplexity").asDouble(), b.json().get("perplexity").asDouble(), 0.0);
    assertEquals(
        2,
        Cli.run(cat(base, "--out", dir.resolve("x").toString(), "--max-shard-size", "-1GB"))
            .exitCode());
  }

  private static String[] cat(String[] a, String... b) {
    String[] all = java.util.Arrays.copyOf(a, a.length + b.length);
    System.arraycopy(b, 0, all, a.length, b.length);
    return all;
  }
}
