package llmc.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import llmc.formats.ModelConfig;
import llmc.formats.SafetensorsFile;
import llmc.model.Linear;
import llmc.model.LlamaFamily;
import llmc.model.TensorNames;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code llmc distill --lora-rank} on stories260K's layers 0, 2, 4: only the adapters train (their
 * count is {@code sum r (in + out)}), the student improves, the output is a plain merged model that
 * {@code llmc eval} scores as the report says, and the tensors without adapters are the teacher's.
 */
class DistillLoraTest {
  @TempDir Path dir;

  /** 20 steps of 4 x 128 tokens, 8 evaluation windows. */
  private Cli distill(String out, String... more) {
    return distill(out, 20, 8, more);
  }

  private Cli distill(String out, int steps, int evalWindows, String... more) {
    List<String> args =
        new ArrayList<>(
            List.of(
                "distill",
                "--teacher",
                Cli.stories(),
                "--keep-layers",
                "0,2,4",
                "--data",
                Cli.root().resolve("samples/data/tinystories/train.jsonl").toString(),
                "--eval",
                Cli.valid(),
                "--eval-max-windows",
                String.valueOf(evalWindows),
                "--steps",
                String.valueOf(steps),
                "--batch-size",
                "4",
                "--seq-len",
                "128",
                "--out",
                dir.resolve(out).toString(),
                "--json"));
    args.addAll(List.of(more));
    return Cli.run(args.toArray(String[]::new));
  }

  /** {@code sum over targeted linear layers of r (in + out)}, over the student's layers. */
  private static long adapterParameters(LlamaFamily f, int rank, List<Linear> targets) {
    long count = 0;
    for (Linear l : targets) {
      count += (long) rank * (l.inFeatures(f) + l.outFeatures(f));
    }
    return count * f.layers();
  }

  private static List<String> strings(JsonNode array) {
    List<String> out = new ArrayList<>();
    array.forEach(n -> out.add(n.asText()));
    return out;
  }

  @Test
  void loraTrainsTheAdaptersOnlyAndWritesAMergedModel() throws Exception {
    Cli run = distill("lora", "--lora-rank", "4");
    assertEquals(0, run.exitCode(), run.err());
    JsonNode r = run.json();
    Path out = dir.resolve("lora");
    LlamaFamily student = LlamaFamily.from(ModelConfig.read(out.resolve("config.json")));
    assertEquals(3, student.layers());
    long adapters = adapterParameters(student, 4, List.of(Linear.values()));
    assertEquals(13_872, adapters); // 3 layers x 4 x (128 + 96 + 96 + 128 + 236 + 236 + 236)
    assertEquals(adapters, r.get("trainable_parameters").asLong());
    assertEquals(2L * 4 * adapters, r.get("optimizer_bytes").asLong());
    JsonNode lora = r.get("lora");
    assertEquals(4, lora.get("rank").asInt());
    assertEquals(8.0, lora.get("alpha").asDouble());
    assertEquals(2.0, lora.get("scale").asDouble());
    assertEquals(List.of("q", "k", "v", "o", "gate", "up", "down"), strings(lora.get("targets")));
    assertEquals(adapters, lora.get("trainable_parameters").asLong());
    assertEquals(169_152, lora.get("full_parameters").asLong()); // a full fine-tune's count
    assertEquals(2L * 4 * (169_152 - adapters), lora.get("optimizer_bytes_saved").asLong());

    double before = r.at("/student_before/perplexity").asDouble();
    double after = r.at("/student_after/perplexity").asDouble();
    double teacher = r.at("/teacher_eval/perplexity").asDouble();
    System.out.printf(
        "LoRA r=4, 20 steps of 4 x 128, 8 windows: untrained %.3f -> %.3f, teacher %.3f%n",
        before, after, teacher);
    assertTrue(after < before, after + " < " + before);

    // A plain dense model: the cut's tensors, none of the adapters; llmc eval agrees with the
    // report.
    List<String> names;
    try (SafetensorsFile f = SafetensorsFile.open(out.resolve("model.safetensors"))) {
      names = f.tensors().stream().map(llmc.formats.TensorInfo::name).toList();
      // Frozen: the embedding and every norm are the teacher's (layer 1 is the teacher's 2).
      try (SafetensorsFile t =
          SafetensorsFile.open(Path.of(Cli.stories()).resolve("model.safetensors"))) {
        assertArrayEquals(t.floats(TensorNames.EMBED), f.floats(TensorNames.EMBED));
        assertArrayEquals(t.floats(TensorNames.inputNorm(2)), f.floats(TensorNames.inputNorm(1)));
        assertArrayEquals(t.floats(TensorNames.FINAL_NORM), f.floats(TensorNames.FINAL_NORM));
        assertFalse(
            java.util.Arrays.equals(
                t.floats(Linear.DOWN.weightName(2)), f.floats(Linear.DOWN.weightName(1))),
            "the merged weights changed");
      }
    }
    assertEquals(2 + 3 * 9, names.size(), names.toString());
    assertTrue(names.stream().noneMatch(n -> n.contains("lora")), names.toString());
    Cli eval =
        Cli.run("eval", out.toString(), "--data", Cli.valid(), "--max-windows", "8", "--json");
    assertEquals(0, eval.exitCode(), eval.err());
    assertEquals(after, eval.json().get("perplexity").asDouble(), 1e-6 * after);
    assertFalse(Files.exists(dir.resolve("lora.work")));

    // The text summary says what trained.
    List<String> args =
        new ArrayList<>(
            List.of(
                "distill",
                "--teacher",
                Cli.stories(),
                "--keep-layers",
                "0,2,4",
                "--data",
                Cli.valid(),
                "--steps",
                "1",
                "--batch-size",
                "1",
                "--seq-len",
                "16",
                "--lora-rank",
                "8",
                "--out",
                dir.resolve("text").toString()));
    Cli text = Cli.run(args.toArray(String[]::new));
    assertEquals(0, text.exitCode(), text.err());
    assertTrue(
        text.out()
            .contains(
                "lora      rank 8, alpha 16 (scale 2) on q,k,v,o,gate,up,down: 27,744 of the"
                    + " student's 169,152 parameters train"),
        text.out());
  }

  /** Targets and alpha as given; the linear layers without adapters stay the teacher's. */
  @Test
  void chosenTargetsAndAlpha() throws Exception {
    Cli run = distill("qv", 3, 1, "--lora-rank", "8", "--lora-alpha", "4", "--lora-targets", "q,v");
    assertEquals(0, run.exitCode(), run.err());
    JsonNode lora = run.json().get("lora");
    assertEquals(List.of("q", "v"), strings(lora.get("targets")));
    assertEquals(0.5, lora.get("scale").asDouble());
    assertEquals(3L * 8 * (128 + 96), lora.get("trainable_parameters").asLong());
    try (SafetensorsFile f = SafetensorsFile.open(dir.resolve("qv").resolve("model.safetensors"));
        SafetensorsFile t =
            SafetensorsFile.open(Path.of(Cli.stories()).resolve("model.safetensors"))) {
      for (Linear l : Linear.values()) {
        boolean same =
            java.util.Arrays.equals(t.floats(l.weightName(4)), f.floats(l.weightName(2)));
        assertEquals(l != Linear.Q && l != Linear.V, same, l.toString());
      }
    }
  }

  @Test
  void badLoraSettingsAreRefusedNamingTheirFlag() {
    Cli alphaAlone = distill("x", "--lora-alpha", "4");
    assertEquals(2, alphaAlone.exitCode());
    assertEquals(
        "llmc: error: --lora-alpha and --lora-targets shape LoRA's adapters: give --lora-rank too",
        alphaAlone.err().strip());
    Cli badTarget = distill("x", "--lora-rank", "4", "--lora-targets", "q,qkv");
    assertEquals(2, badTarget.exitCode());
    assertEquals(
        "llmc: error: --lora-targets 'q,qkv': give linear layers among q,k,v,o,gate,up,down",
        badTarget.err().strip());
    Cli negative = distill("x", "--lora-rank", "-1");
    assertEquals(2, negative.exitCode());
    assertEquals(
        "llmc: error: --lora-rank -1: give a rank of at least 1, or 0 to train every parameter",
        negative.err().strip());
    Cli tooHigh = distill("x", "--lora-rank", "33");
    assertEquals(2, tooHigh.exitCode());
    assertEquals(
        "llmc: error: --lora-rank 33 exceeds the student's k_proj, 32 x 64: give at most 32",
        tooHigh.err().strip());
    Cli zeroAlpha = distill("x", "--lora-rank", "4", "--lora-alpha", "0");
    assertEquals(2, zeroAlpha.exitCode());
    assertEquals("llmc: error: --lora-alpha 0.0: give a number above 0", zeroAlpha.err().strip());
    assertFalse(Files.exists(dir.resolve("x")));
  }
}
