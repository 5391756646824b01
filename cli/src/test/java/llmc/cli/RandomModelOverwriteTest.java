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
}
