import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import java.lang.reflect.Method;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.EnumSet;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import llmc.distill.AdamW;
import llmc.distill.DistillLoss;
import llmc.distill.Divergence;
import llmc.distill.Student;
import llmc.formats.ModelFolder;
import llmc.model.Engines;
import llmc.model.LlamaFamily;
import llmc.model.Rope;
import llmc.model.Weights;
import llmc.model.kernels.Tensors;
import llmc.model.train.DifferentiableLlama;

/**
 * Profiling aid for bench/distill-vs-pytorch.sh (not part of the build): one knowledge-distillation
 * step of issue 11's setup (teacher = every layer, student = layers 0,2,..,28, batch 4 x 256, alpha
 * 0.5, T 2, AdamW, clip 1.0) split into phases, each with its wall time, the process's user and
 * system CPU seconds, minor page faults and resident set size (from /proc/self), and the arrays the
 * step's DJL scope holds (their nominal size: views counted in full).
 *
 * <p>Modes:
 *
 * <ul>
 *   <li>{@code trainer}: as {@code llmc.distill.Trainer} runs a step today (DifferentiableLlama,
 *       DistillLoss, AdamW and its clipping, everything in one scope until after the backward).
 *   <li>{@code lean}: the same arithmetic, but the teacher runs in its own sub-manager closed as
 *       soon as its {@code log_softmax(z_t / T)} is made, the loss closes its temporaries, and
 *       AdamW updates in place with four temporaries per parameter (as torch's single-tensor
 *       AdamW).
 *   <li>{@code lean-layers}: {@code lean} plus every decoder layer of the teacher and the student
 *       in its own sub-manager (prototyped here by reflection into DifferentiableLlama's private
 *       methods): autograd keeps what the backward needs, DJL's handles nothing more.
 * </ul>
 *
 * The loss printed at each step must be the same in every mode (the same windows, seed 0).
 *
 * <pre>
 * OMP_WAIT_POLICY=PASSIVE java --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED \
 *     -Dai.djl.offline=true -cp "cli/target/llmc.jar:cli/target/lib/*" bench/KdStepPhases.java \
 *     MODEL_DIR trainer|lean|lean-layers STEPS
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
    String mode = args[1];
    int steps = Integer.parseInt(args[2]);
    if (!List.of("trainer", "lean", "lean-layers").contains(mode)) {
      throw new IllegalArgumentException("mode: trainer, lean or lean-layers");
    }
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
      System.out.printf("mode %s; before training: RSS %.2f GB%n", mode, proc()[4] / 1e6);
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
        float lossValue;
        try (GradientCollector c = m.getEngine().newGradientCollector()) {
          try (NDManager scope = m.newSubManager()) {
            held = scope;
            NDArray total;
            if (mode.equals("trainer")) {
              var t = teacher.forward(scope, tokens, false);
              mark("teacher");
              var s = student.forward(scope, tokens, false);
              mark("student");
              total = loss.of(scope, t, s, tokens).loss();
            } else {
              boolean layers = mode.equals("lean-layers");
              NDArray logPt;
              try (NDManager ts = scope.newSubManager()) {
                NDArray zt =
                    layers
                        ? layerScoped(teacher, ts, tokens)
                        : teacher.forward(ts, tokens).logits();
                if (zt.hasGradient()) {
                  throw new IllegalStateException("the teacher's logits require a gradient");
                }
                logPt = scored(zt).div(T).logSoftmax(-1);
                logPt.attach(scope);
              }
              mark("teacher");
              NDArray zsFull =
                  layers
                      ? layerScoped(student, scope, tokens)
                      : student.forward(scope, tokens).logits();
              mark("student");
              total = leanLoss(scope, logPt, zsFull, tokens);
            }
            lossValue = total.getFloat();
            mark("loss");
            c.backward(total);
            mark("backward");
          }
          held = null;
          mark("close");
        }
        AdamW.clipGradients(params, 1.0);
        mark("clip");
        if (mode.equals("trainer")) {
          adamw.step(params, 1e-3);
        } else {
          leanAdamW(params, 1e-3, step + 1);
        }
        AdamW.zeroGradients(params);
        mark("adamw");
        System.out.printf(
            "step %d: %.2f s, loss %.5f%s%n",
            step, (System.nanoTime() - t0) / 1e9, lossValue, line);
      }
    }
  }

  /** {@code [B, T, V] -> [B (T-1), V]}. */
  private static NDArray scored(NDArray logits) {
    long vocab = logits.getShape().get(2);
    return logits.split(new long[] {SEQ - 1}, 1).get(0).reshape(-1, vocab);
  }

  /** DistillLoss (forward KL + CE) with every temporary closed once used. */
  private static NDArray leanLoss(NDManager scope, NDArray logPt, NDArray zsFull, int[][] tokens) {
    NDArray zs = scored(zsFull);
    long[] next = new long[BATCH * (SEQ - 1)];
    for (int b = 0; b < BATCH; b++) {
      for (int i = 0; i < SEQ - 1; i++) {
        next[b * (SEQ - 1) + i] = tokens[b][i + 1];
      }
    }
    NDArray targets = scope.create(next, new Shape(next.length, 1));
    NDArray ce;
    try (NDArray lsm = zs.logSoftmax(-1);
        NDArray g = lsm.gather(targets, -1);
        NDArray mean = g.mean()) {
      ce = mean.neg();
    }
    NDArray d;
    try (NDArray zsT = zs.div(T);
        NDArray logPs = zsT.logSoftmax(-1);
        NDArray pt = logPt.exp();
        NDArray diff = logPt.sub(logPs);
        NDArray prod = pt.mul(diff);
        NDArray sum = prod.sum(new int[] {-1})) {
      d = sum.mean();
    }
    zs.close();
    logPt.close();
    zsFull.close();
    return ce.mul(1 - ALPHA).add(d.mul(ALPHA * T * T));
  }

  private static final Map<String, NDArray[]> moments = new HashMap<>();

  /** AdamW in place where it can, four temporaries per parameter (AdamW.step makes six). */
  private static void leanAdamW(Map<String, NDArray> params, double lr, int t) {
    double b1 = 0.9;
    double b2 = 0.95;
    double c1 = 1 - Math.pow(b1, t);
    double c2 = 1 - Math.pow(b2, t);
    for (var e : params.entrySet()) {
      NDArray p = e.getValue();
      NDArray[] mv =
          moments.computeIfAbsent(e.getKey(), k -> new NDArray[] {p.zerosLike(), p.zerosLike()});
      try (NDArray g = p.getGradient()) {
        if (p.getShape().dimension() == 2) {
          p.muli((float) (1 - lr * 0.01));
        }
        try (NDArray a = g.mul((float) (1 - b1))) {
          mv[0].muli((float) b1).addi(a);
        }
        try (NDArray sq = g.square()) {
          mv[1].muli((float) b2).addi(sq.muli((float) (1 - b2)));
        }
        try (NDArray den = mv[1].sqrt()) {
          den.divi((float) Math.sqrt(c2)).addi(1e-8f);
          try (NDArray u = mv[0].div(den)) {
            p.subi(u.muli((float) (lr / c1)));
          }
        }
      }
    }
  }

  /** DifferentiableLlama.forward's logits with each decoder layer in its own sub-manager. */
  private static NDArray layerScoped(DifferentiableLlama model, NDManager scope, int[][] tokens)
      throws Exception {
    Class<?> c = DifferentiableLlama.class;
    Class<?> layerClass = Class.forName("llmc.model.train.DifferentiableLlama$Layer");
    Method embed = method(c, "embed", NDManager.class, int[][].class);
    Method mask = method(c, "causalMask", int.class);
    Method layer =
        method(
            c,
            "decoderLayer",
            NDManager.class,
            layerClass,
            NDArray.class,
            NDArray.class,
            NDArray.class,
            NDArray.class);
    Method rms = method(c, "rmsNorm", NDArray.class, NDArray.class);
    LlamaFamily f = model.family();
    int d = f.headDim();
    NDArray x = (NDArray) embed.invoke(model, scope, tokens);
    float[][] cs = Rope.tables(f.rope(), d, 0, SEQ);
    NDArray cos = Tensors.create(scope, cs[0], new Shape(SEQ, d));
    NDArray sin = Tensors.create(scope, cs[1], new Shape(SEQ, d));
    NDArray m = Tensors.create(scope, (float[]) mask.invoke(model, SEQ), new Shape(SEQ, SEQ));
    for (Object l : (Object[]) field(model, "layers")) {
      try (NDManager ls = scope.newSubManager()) {
        x.attach(ls); // results of x's operations land in x's manager
        NDArray y = (NDArray) layer.invoke(model, ls, l, x, cos, sin, m);
        y.attach(scope);
        x = y;
      }
    }
    NDArray head = ((NDArray) field(model, "lmHead")).transpose();
    head.attach(scope);
    return ((NDArray) rms.invoke(model, x, field(model, "finalNorm"))).matMul(head);
  }

  private static Method method(Class<?> c, String name, Class<?>... types) throws Exception {
    Method m = c.getDeclaredMethod(name, types);
    m.setAccessible(true);
    return m;
  }

  private static Object field(Object o, String name) throws Exception {
    var f = o.getClass().getDeclaredField(name);
    f.setAccessible(true);
    return f.get(o);
  }
}
