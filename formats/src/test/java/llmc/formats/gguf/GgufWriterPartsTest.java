package llmc.formats.gguf;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;
import java.util.concurrent.ForkJoinPool;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A writer that encodes its chunks in parallel ranges of blocks writes the bytes of one that does
 * not, for every type, with tensors larger than one 4 MiB chunk and a number of blocks that does
 * not divide evenly.
 */
class GgufWriterPartsTest {
  @TempDir Path dir;

  @Test
  void parallelPartsWriteTheBytesOfOneThread() throws Exception {
    Random random = new Random(5);
    // 3 * 32 * 50_001 weights: 4.8M, more than one chunk of Q8_0 and of F32
    float[] values = new float[3 * 32 * 50_001];
    for (int i = 0; i < values.length; i++) {
      values[i] = (float) random.nextGaussian();
    }
    ForkJoinPool pool = new ForkJoinPool(3);
    AtomicInteger parallelTasks = new AtomicInteger();
    try {
      for (GgmlType type :
          new GgmlType[] {
            GgmlType.F32,
            GgmlType.F16,
            GgmlType.Q8_0,
            GgmlType.Q4_0,
            GgmlType.Q4_1,
            GgmlType.Q5_0,
            GgmlType.Q5_1
          }) {
        byte[] one = write(dir.resolve(type + "-1.gguf"), type, values, null, 1);
        byte[] parts =
            write(
                dir.resolve(type + "-3.gguf"),
                type,
                values,
                (tasks, body) -> {
                  parallelTasks.addAndGet(tasks);
                  pool.submit(() -> IntStream.range(0, tasks).parallel().forEach(body)).join();
                },
                3);
        assertArrayEquals(one, parts, type.ggmlName());
      }
    } finally {
      pool.shutdown();
    }
    assertEquals(0, parallelTasks.get() % 3, "every chunk was split in 3");
  }

  private static byte[] write(
      Path file, GgmlType type, float[] values, GgufWriter.Tasks tasks, int parts)
      throws Exception {
    try (GgufWriter w = GgufWriter.create(file, false)) {
      if (tasks != null) {
        w.encodeWith(tasks, parts);
      }
      w.declare("t", type, values.length / 96, 96);
      w.writeFloats("t", values);
      w.finish();
    }
    return Files.readAllBytes(file);
  }
}
