import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.training.GradientCollector;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.EnumSet;
import java.util.List;
import java.util.SplittableRandom;
import llmc.distill.AdamW;
import llmc.distill.DistillLoss;
import llmc.distill.Divergence;
import llmc.distill.Student;
import llmc.formats.ModelFolder;
import llmc.model.Engines;
import llmc.model.LlamaFamily;
import llmc.model.Weights;
import llmc.model.train.DifferentiableLlama;

/**
 * Profiling aid for bench/distill-vs-pytorch.sh (not part of the build): one knowledge-distillation
 * step of issue 11's setup (teacher = every layer, student = layers 0,2,..,28, batch 4 x 256, alpha
 * 0.5, T 2, AdamW, clip 1.0) split into phases, each with its wall time, the process's user and
 * system CPU seconds, minor page faults and resident set size (from /proc/self), and the arrays the
 * step's DJL scope holds (their nominal size: views counted in full).
 *
 * <p>The step is {@code llmc.distill.Trainer}'s: the teacher's forward in a manager of its own,
 * closed once the loss's inputs are taken from it; the student's forward (a manager per decoder
 * layer inside {@code DifferentiableLlama}); the loss over chunks of logits rows ({@code
 * DistillLoss}); the backward; the clipping and AdamW. Until 2026-11-30 (commit 9730991) the
 * trainer kept every intermediate array of a step until after its backward; this program's
 * {@code lean} and {@code lean-layers} modes measured the fixes, which the trainer now has
 * (bench/README.md keeps the figures).
 *
 * <pre>
 * OMP_WAIT_POLICY=PASSIVE java --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED \
 *     -Dai.djl.offline=true -cp "cli/target/llmc.jar:cli/target/lib/*" bench/KdStepPhases.java \
 *     MODEL_DIR STEPS
 * </pre>
 */
public class KdStepPhases {
  private static final int BATCH = 4;
  private static final int SEQ = 256;
  private static final float T = 2f;
  private static final float ALPHA = 0.5f;

  private static long[] last;
  private static NDManager held;
  private static final StringBuilder line = new StringBuilder();

  /** Wall ns, minor faults, user and system ticks, VmRSS kB. */
  private static long[] proc() throws Exception {
    String[] f = Files.readString(Path.of("/proc/self/stat")).split("\\) ")[1].split(" ");
    long rss = 0;
    for (String l : Files.readAllLines(Path.of("/proc/self/status"))) {
      if (l.startsWith("VmRSS:")) {
        rss = Long.parseLong(l.replaceAll("\\D", ""));
      }
    }
    return new long[] {
      System.nanoTime(), Long.parseLong(f[7]), Long.parseLong(f[11]), Long.parseLong(f[12]), rss
    };
  }

  private static void mark(String name) throws Exception {
    long[] now = proc();
    line.append(
        String.format(
            " | %s %.2f s (user %.1f sys %.1f, %dk faults, RSS %.1f GB",
            name,
            (now[0] - last[0]) / 1e9,
            (now[2] - last[2]) / 100.0,
            (now[3] - last[3]) / 100.0,
            (now[1] - last[1]) / 1000,
            now[4] / 1e6));
    if (held != null && held.isOpen()) {
      List<NDArray> arrays = held.getManagedArrays();
      long bytes = 0;
      for (NDArray x : arrays) {
        bytes += x.size() * 4;
      }
      line.append(String.format(", scope %d arrays %.2f GB", arrays.size(), bytes / 1e9));
    }
    line.append(")");
    last = proc();
  }

  public static void main(String[] args) throws Exception {
    Path model = Path.of(args[0]);
    int steps = Integer.parseInt(args[1]);
    Engines.configure(2);
    ModelFolder folder = ModelFolder.open(model);
    LlamaFamily tf = LlamaFamily.from(folder.config());
    int[] keep = new int[tf.layers() / 2];
    for (int i = 0; i < keep.length; i++) {
      keep[i] = 2 * i;
    }
    Student st = Student.cut(folder, keep);
    DistillLoss loss = new DistillLoss(ALPHA, T, 0, Divergence.FORWARD_KL, 0.5, List.of());
    try (NDManager m = Engines.newManager()) {
      var teacher =
          new DifferentiableLlama(
              tf,
              Weights.of(folder.checkpoint()),
              m,
              EnumSet.noneOf(DifferentiableLlama.Trainable.class));
      var student =
          new DifferentiableLlama(
              st.family(), st.weights(), m, EnumSet.allOf(DifferentiableLlama.Trainable.class));
      var params = student.parameters();
      var adamw = new AdamW(params, m, 0.9, 0.95, 1e-8, 0.01);
      SplittableRandom r = new SplittableRandom(0);
      System.out.printf("before training: RSS %.2f GB%n", proc()[4] / 1e6);
      for (int step = 0; step < steps; step++) {
        int[][] tokens = new int[BATCH][SEQ];
        for (int[] w : tokens) {
          for (int i = 0; i < w.length; i++) {
            w[i] = r.nextInt(tf.vocab());
          }
        }
        line.setLength(0);
        long t0 = System.nanoTime();
        last = proc();
        double lossValue;
        try (GradientCollector c = m.getEngine().newGradientCollector()) {
          try (NDManager scope = m.newSubManager()) {
            held = scope;
            DistillLoss.Teacher t;
            try (NDManager ts = scope.newSubManager()) {
              t = loss.teacher(teacher.forward(ts, tokens, false), SEQ);
              t.attach(scope);
            }
            mark("teacher");
            var s = student.forward(scope, tokens, false);
            mark("student");
            DistillLoss.Terms terms = loss.of(c, scope, t, s, tokens);
            s.logits().close();
            t.close();
            lossValue = terms.loss();
            mark("loss");
            c.backward(terms.objective());
            mark("backward");
          }
          held = null;
          mark("close");
        }
        AdamW.clipGradients(params, 1.0);
        mark("clip");
        adamw.step(params, 1e-3);
        AdamW.zeroGradients(params);
        mark("adamw");
        System.out.printf(
            "step %d: %.2f s, loss %.5f%s%n",
            step, (System.nanoTime() - t0) / 1e9, lossValue, line);
      }
    }
  }
}
