package llmc.pipeline;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.List;
import llmc.formats.SafetensorsFile;
import llmc.formats.TensorInfo;
import llmc.model.Linear;
import llmc.model.train.DifferentiableLlama.LoRA;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A LoRA distillation checkpoints its adapters (and their optimizer moments), and a run stopped
 * after a checkpoint and resumed ends with the uninterrupted run's weights, bit for bit.
 */
class DistillLoraResumeTest {
  @TempDir Path dir;

  private DistillSettings settings(String out, boolean resume) {
    Path root = Path.of(System.getProperty("llmc.root"));
    return DistillSettings.builder(
            root.resolve("samples/models/stories260K"),
            dir.resolve(out),
            root.resolve("samples/data/tinystories/valid.jsonl"))
        .keepLayers(0, 2, 4)
        .steps(12)
        .batchSize(2)
        .seqLen(32)
        .seed(3)
        .loraRank(2)
        .loraTargets(EnumSet.of(Linear.Q, Linear.DOWN))
        .checkpointEvery(5)
        .workDir(dir.resolve(out + ".work"))
        .resume(resume)
        .build();
  }

  /** Stops the run (as a crash would) when it reports step {@code step}. */
  private static final class Stop extends RuntimeException {}

  @Test
  void aStoppedLoraRunResumesToTheUninterruptedWeights() throws Exception {
    DistillReport whole = new DistillStage().run(settings("whole", false), Progress.NONE);
    assertEquals(3L * 2 * ((64 + 64) + (172 + 64)), whole.trainableParameters());

    Progress stopAt7 =
        (task, done, total) -> {
          if (task.equals("distill: step") && done == 7) {
            throw new Stop();
          }
        };
    assertThrows(Stop.class, () -> new DistillStage().run(settings("stopped", false), stopAt7));
    assertFalse(Files.exists(dir.resolve("stopped")));
    Path checkpoint = dir.resolve("stopped.work/checkpoint");
    List<String> saved = new ArrayList<>();
    try (SafetensorsFile f = SafetensorsFile.open(checkpoint.resolve("student.safetensors"))) {
      f.tensors().stream().map(TensorInfo::name).forEach(saved::add);
    }
    List<String> adapters = new ArrayList<>();
    for (int i = 0; i < 3; i++) {
      for (Linear l : List.of(Linear.Q, Linear.DOWN)) {
        adapters.add(LoRA.aName(l, i));
        adapters.add(LoRA.bName(l, i));
      }
    }
    assertEquals(adapters.stream().sorted().toList(), saved.stream().sorted().toList());

    DistillReport resumed = new DistillStage().run(settings("stopped", true), Progress.NONE);
    assertEquals(5, resumed.resumedFrom());
    assertEquals(whole.steps(), resumed.steps());
    assertArrayEquals(
        Files.readAllBytes(dir.resolve("whole/model.safetensors")),
        Files.readAllBytes(dir.resolve("stopped/model.safetensors")),
        "resumed weights differ from the uninterrupted run's");
    assertTrue(whole.lora().optimizerBytesSaved() > 0);
  }
}
