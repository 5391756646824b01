package llmc.distill;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Collection;
import java.util.EnumSet;
import java.util.function.IntConsumer;
import llmc.formats.BadInputException;
import llmc.formats.Json;
import llmc.formats.OutputFolder;
import llmc.model.Engines;
import llmc.model.LlamaFamily;
import llmc.model.Weights;
import llmc.model.kernels.Tensors;
import llmc.model.train.DifferentiableLlama;

/**
 * The teacher run once over the training windows and stored, so that later runs (other students,
 * other hyperparameters, resumed runs) never run it again. Per scored position (the {@code L - 1}
 * positions of each window whose next token is in the window): the teacher's {@code k} highest
 * logits with their token ids, and {@code log sum_v exp(z_v / T)} over the whole vocabulary, which
 * gives the top-k probabilities at temperature T and so the mass of the tail. The divergence is
 * then taken over k + 1 buckets: the k tokens and the rest (see {@link DistillLoss}).
 *
 * <p>Layout of {@code teacher.bin}, little-endian, window after window: for each scored position
 * {@code k} int32 token ids, {@code k} float32 logits, one float32 log-sum-exp. {@code
 * teacher-cache.json} says what it was made from; a run whose windows or temperature differ is
 * refused.
 */
public final class TeacherCache implements AutoCloseable {
  static final String META = "teacher-cache.json";
  static final String DATA = "teacher.bin";

  private static final OutputFolder.Kind KIND =
      new OutputFolder.Kind(
          "teacherCache",
          META,
          dir -> Files.isRegularFile(dir.resolve(META), LinkOption.NOFOLLOW_LINKS));

  /** What the cache was made from: a run must match it to use it. */
  public record Key(
      String teacher,
      String data,
      long streamTokens,
      long seed,
      int seqLen,
      double temperature,
      int topK,
      int vocab) {}

  private final Key key;
  private final long windows;
  private final Arena arena;
  private final MemorySegment bin;

  private TeacherCache(Key key, long windows, Arena arena, MemorySegment bin) {
    this.key = key;
    this.windows = windows;
    this.arena = arena;
    this.bin = bin;
  }

  /** Bytes stored per scored token: k ids, k logits, one log-sum-exp. */
  public static long bytesPerToken(int topK) {
    return 8L * topK + 4;
  }

  public Key key() {
    return key;
  }

  public long windows() {
    return windows;
  }

  /**
   * Runs the teacher over the first {@code count} windows {@code windows} draws (a fresh copy with
   * the run's seed) and stores the cache in {@code dir}.
   */
  public static void build(
      Path dir,
      Collection<Path> inputs,
      Key key,
      LlamaFamily family,
      Weights teacherWeights,
      TrainingWindows windows,
      long count,
      int batch,
      IntConsumer progress) {
    int scored = windows.length() - 1;
    int k = key.topK();
    float t = (float) key.temperature();
    try (OutputFolder folder = OutputFolder.create(dir, true, inputs, KIND);
        NDManager manager = Engines.newManager();
        FileChannel out =
            FileChannel.open(
                folder.dir().resolve(DATA),
                StandardOpenOption.CREATE_NEW,
                StandardOpenOption.WRITE)) {
      DifferentiableLlama teacher =
          new DifferentiableLlama(
              family, teacherWeights, manager, EnumSet.noneOf(DifferentiableLlama.Trainable.class));
      ByteBuffer record = ByteBuffer.allocate(scored * (int) bytesPerToken(k));
      record.order(ByteOrder.LITTLE_ENDIAN);
      long done = 0;
      while (done < count) {
        int n = (int) Math.min(batch, count - done);
        int[][] tokens = windows.next(n);
        try (NDManager scope = manager.newSubManager()) {
          NDArray logits =
              teacher.forward(scope, tokens).logits().split(new long[] {scored}, 1).get(0);
          NDArray lse = logits.div(t).logSoftmax(-1).neg().add(logits.div(t)); // z/T - logp = lse
          NDArray lseFirst = lse.get(":, :, 0"); // [n, T-1]
          NDArray top = logits.argSort(-1, false).get(":, :, :" + k); // [n, T-1, k]
          NDArray topLogits = logits.gather(top, -1);
          float[] lseValues = new float[n * scored];
          float[] topValues = new float[n * scored * k];
          Tensors.read(lseFirst, lseValues);
          Tensors.read(topLogits, topValues);
          long[] ids = top.toType(DataType.INT64, false).toLongArray();
          for (int w = 0; w < n; w++) {
            record.clear();
            for (int p = 0; p < scored; p++) {
              int row = w * scored + p;
              for (int j = 0; j < k; j++) {
                record.putInt((int) ids[row * k + j]);
              }
              for (int j = 0; j < k; j++) {
                record.putFloat(topValues[row * k + j]);
              }
              record.putFloat(lseValues[row]);
            }
            record.flip();
            while (record.hasRemaining()) {
              out.write(record);
            }
          }
        }
        done += n;
        progress.accept((int) done);
      }
      out.force(true);
      ObjectNode meta = Json.mapper().valueToTree(key);
      meta.put("windows", count);
      meta.put("bytes_per_token", bytesPerToken(k));
      Json.writePretty(folder.dir().resolve(META), meta);
      folder.commit();
    } catch (IOException e) {
      throw new UncheckedIOException("cannot write the teacher cache " + dir, e);
    }
  }

  /** The cache in {@code dir}, or null when there is none. */
  public static TeacherCache open(Path dir) {
    Path meta = dir.resolve(META);
    if (!Files.isRegularFile(meta)) {
      return null;
    }
    try {
      ObjectNode json = (ObjectNode) Json.mapper().readTree(Files.readString(meta));
      long windows = json.path("windows").asLong();
      json.remove("windows");
      json.remove("bytes_per_token");
      Key key = Json.mapper().treeToValue(json, Key.class);
      Arena arena = Arena.ofShared();
      try (FileChannel in = FileChannel.open(dir.resolve(DATA), StandardOpenOption.READ)) {
        MemorySegment bin = in.map(FileChannel.MapMode.READ_ONLY, 0, in.size(), arena);
        long expected = windows * (key.seqLen() - 1) * bytesPerToken(key.topK());
        if (bin.byteSize() != expected) {
          arena.close();
          throw new BadInputException(
              dir.resolve(DATA)
                  + " holds "
                  + bin.byteSize()
                  + " bytes, not the "
                  + expected
                  + " its metadata says; remove the cache to build it again");
        }
        return new TeacherCache(key, windows, arena, bin);
      }
    } catch (IOException e) {
      throw new BadInputException(dir + ": not a teacher cache: " + e.getMessage(), e);
    }
  }

  /** The cached teacher of windows {@code [first, first + count)}. */
  public DistillLoss.CachedTeacher read(NDManager scope, long first, int count) {
    if (first + count > windows) {
      throw new IllegalStateException("the cache holds " + windows + " windows");
    }
    int k = key.topK();
    int scored = key.seqLen() - 1;
    int rows = count * scored;
    long[] ids = new long[rows * k];
    float[] logits = new float[rows * k];
    float[] lse = new float[rows];
    long offset = first * scored * bytesPerToken(k);
    for (int r = 0; r < rows; r++) {
      for (int j = 0; j < k; j++) {
        ids[r * k + j] =
            bin.get(ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), offset);
        offset += 4;
      }
      for (int j = 0; j < k; j++) {
        logits[r * k + j] =
            bin.get(ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), offset);
        offset += 4;
      }
      lse[r] = bin.get(ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), offset);
      offset += 4;
    }
    return new DistillLoss.CachedTeacher(
        scope.create(ids, new Shape(rows, k)),
        Tensors.create(scope, logits, new Shape(rows, k)),
        Tensors.create(scope, lse, new Shape(rows, 1)));
  }

  @Override
  public void close() {
    arena.close();
  }
}
