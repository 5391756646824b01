package llmc.cli;

import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import llmc.distill.Divergence;
import llmc.distill.LearningRate;
import llmc.distill.Trainer;
import llmc.formats.BadInputException;
import llmc.pipeline.DistillReport;
import llmc.pipeline.DistillSettings;
import llmc.pipeline.DistillStage;
import llmc.pipeline.Reports;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

@Command(
    name = "distill",
    mixinStandardHelpOptions = true,
    sortOptions = false,
    description = {
      "Knowledge distillation: train a student to imitate a teacher on text (temperature-softened",
      "KL plus hard labels, optionally hidden-state MSE), AdamW with warm-up and cosine decay.",
      "The student is a model folder sharing the teacher's vocabulary (e.g. from llmc prune), or",
      "layers cut from the teacher. Written as a Hugging Face folder with llmc-report.json and",
      "training-curves.png; checkpoints in a work folder, --resume continues from the last one.",
      "With --lora-rank only low-rank adapters train (W + alpha/r B A); the output is merged."
    },
    footer = {
      "",
      "Examples:",
      "  llmc distill --teacher samples/models/stories260K --keep-layers 0,2,4 --out /tmp/student \\",
      "      --data samples/data/tinystories/train.jsonl --eval samples/data/tinystories/valid.jsonl",
      "  llmc distill --teacher T --student pruned/ --out healed/ --data train.jsonl --alpha 0",
      "  llmc distill --teacher T --keep-layers 0,2,4 --out S --data d.jsonl --beta 1 \\",
      "      --hidden-pairs 0:0,1:2,2:4 --checkpoint-every 100 --resume",
      "  llmc distill --teacher T --student pruned/ --out healed/ --data d.jsonl --lora-rank 8"
    })
final class DistillCommand implements Callable<Integer> {
  @Option(names = "--teacher", required = true, paramLabel = "DIR", description = "The teacher.")
  Path teacher;

  @Option(
      names = "--out",
      required = true,
      paramLabel = "DIR",
      description = "The student's output folder, written atomically.")
  Path out;

  @Option(names = "--overwrite", description = "Replace --out if llmc wrote it.")
  boolean overwrite;

  @Option(
      names = "--student",
      paramLabel = "DIR",
      description = "A model folder to train (same vocabulary as the teacher).")
  Path student;

  @Option(
      names = "--keep-layers",
      split = ",",
      paramLabel = "I,J",
      description = "Or: a student of these teacher decoder layers (0-based).")
  int[] keepLayers;

  @Option(
      names = "--drop-layers",
      split = ",",
      paramLabel = "I,J",
      description = "Or: a student of the teacher without these decoder layers.")
  int[] dropLayers;

  @Option(
      names = "--data",
      required = true,
      paramLabel = "FILE",
      description = "Training text: .jsonl (one document per line) or .txt.")
  Path data;

  @Option(
      names = "--field",
      defaultValue = "text",
      description = "JSON field of the text (default: ${DEFAULT-VALUE}).")
  String field;

  @Option(
      names = "--eval",
      paramLabel = "FILE",
      description = "Text for P1 evaluations before, every --eval-every steps, and after.")
  Path eval;

  @Option(
      names = "--eval-max-windows",
      defaultValue = "0",
      paramLabel = "W",
      description = "With --eval: only the first W windows (default: all).")
  int evalMaxWindows;

  @Option(
      names = "--steps",
      defaultValue = "500",
      description = "Optimizer steps (default: ${DEFAULT-VALUE}).")
  int steps;

  @Option(
      names = "--batch-size",
      defaultValue = "8",
      description = "Windows per step (default: ${DEFAULT-VALUE}).")
  int batchSize;

  @Option(
      names = "--seq-len",
      defaultValue = "256",
      paramLabel = "L",
      description = "Tokens per training window (default: ${DEFAULT-VALUE}).")
  int seqLen;

  @Option(
      names = "--lr",
      defaultValue = "3e-3",
      description = "Peak learning rate (default: ${DEFAULT-VALUE}).")
  double lr;

  @Option(
      names = "--warmup",
      paramLabel = "N",
      description = "Linear warm-up steps (default: 10% of --steps).")
  Integer warmup;

  @Option(
      names = "--schedule",
      defaultValue = "cosine",
      paramLabel = "cosine|constant",
      description =
          "After warm-up: cosine decay to --min-lr-ratio of the peak, or constant (default: ${DEFAULT-VALUE}).")
  String schedule;

  @Option(
      names = "--min-lr-ratio",
      defaultValue = "0.1",
      description =
          "The cosine schedule's end as a fraction of the peak (default: ${DEFAULT-VALUE}).")
  double minLrRatio;

  @Option(
      names = "--weight-decay",
      defaultValue = "0.01",
      description = "AdamW weight decay on 2-D weights (default: ${DEFAULT-VALUE}).")
  double weightDecay;

  @Option(
      names = "--grad-clip",
      defaultValue = "1.0",
      description = "Global gradient-norm clipping, 0 for none (default: ${DEFAULT-VALUE}).")
  double gradClip;

  @Option(
      names = "--grad-accum",
      defaultValue = "1",
      description = "Batches accumulated per step (default: ${DEFAULT-VALUE}).")
  int gradAccum;

  @Option(
      names = {"--temperature", "-T"},
      defaultValue = "2",
      description = "Softmax temperature of the divergence (default: ${DEFAULT-VALUE}).")
  double temperature;

  @Option(
      names = "--alpha",
      defaultValue = "0.5",
      description =
          "Weight of the divergence; 1 - alpha weighs the hard labels (default: ${DEFAULT-VALUE}).")
  double alpha;

  @Option(
      names = "--beta",
      defaultValue = "0",
      description =
          "Weight of the hidden-state MSE over --hidden-pairs (default: ${DEFAULT-VALUE}).")
  double beta;

  @Option(
      names = "--hidden-pairs",
      paramLabel = "S:T,...",
      description =
          "Student layer : teacher layer pairs of decoder-layer outputs, e.g. 0:0,1:2,2:4.")
  String hiddenPairs;

  @Option(
      names = "--divergence",
      defaultValue = "forward-kl",
      paramLabel = "forward-kl|reverse-kl|jsd",
      description = "D of the loss (default: ${DEFAULT-VALUE}).")
  String divergence;

  @Option(
      names = "--jsd-beta",
      defaultValue = "0.5",
      description = "The generalized JSD's weight (default: ${DEFAULT-VALUE}).")
  double jsdBeta;

  @Option(
      names = "--seed",
      defaultValue = "0",
      description =
          "Seed of the training windows and of LoRA's initial adapters (default:"
              + " ${DEFAULT-VALUE}).")
  long seed;

  @Option(
      names = "--lora-rank",
      defaultValue = "0",
      paramLabel = "R",
      description =
          "Train only LoRA adapters of rank R on --lora-targets, everything else frozen; the"
              + " written student is merged, a plain dense model (default: 0, train every"
              + " parameter).")
  int loraRank;

  @Option(
      names = "--lora-alpha",
      paramLabel = "A",
      description = "LoRA's alpha: the update is (A / R) B A (default: 2R, a scale of 2).")
  Double loraAlpha;

  @Option(
      names = "--lora-targets",
      paramLabel = "q,k,v,o,gate,up,down",
      description = "The linear layers with LoRA adapters (default: all seven).")
  String loraTargets;

  @Option(
      names = "--checkpoint-every",
      defaultValue = "0",
      paramLabel = "N",
      description = "Checkpoint every N steps in --work-dir (default: never).")
  int checkpointEvery;

  @Option(
      names = "--eval-every",
      defaultValue = "0",
      paramLabel = "N",
      description = "Evaluate every N steps (default: before and after only).")
  int evalEvery;

  @Option(
      names = "--work-dir",
      paramLabel = "DIR",
      description = "Where checkpoints go (default: OUT.work beside --out).")
  Path workDir;

  @Option(names = "--resume", description = "Continue from the checkpoint in the work folder.")
  boolean resume;

  @Option(
      names = "--teacher-cache",
      paramLabel = "DIR",
      description = {
        "Run the teacher once over the training windows and keep its top-k logits here (built when",
        "absent, reused by later runs with the same data, seed, windows and temperature)."
      })
  Path teacherCache;

  @Option(
      names = "--cache-top-k",
      defaultValue = "64",
      paramLabel = "K",
      description = "Logits kept per position in --teacher-cache (default: ${DEFAULT-VALUE}).")
  int cacheTopK;

  @Mixin CommonOptions common;

  @Spec CommandSpec spec;

  @Override
  public Integer call() {
    common.configureEngine();
    DistillReport report = new DistillStage().run(settings(), common.progress());
    PrintWriter stdout = spec.commandLine().getOut();
    if (common.json) {
      common.print(stdout, Reports.toJson(report));
    } else {
      printSummary(stdout, report);
    }
    return Llmc.OK;
  }

  private DistillSettings settings() {
    DistillSettings.Builder b =
        DistillSettings.builder(teacher, out, data)
            .overwrite(overwrite)
            .student(student)
            .field(field)
            .eval(eval)
            .evalMaxWindows(evalMaxWindows)
            .steps(steps)
            .batchSize(batchSize)
            .seqLen(seqLen)
            .lr(lr)
            .warmup(warmup)
            .schedule(
                switch (schedule.toLowerCase()) {
                  case "cosine" -> LearningRate.Schedule.COSINE;
                  case "constant" -> LearningRate.Schedule.CONSTANT;
                  default ->
                      throw new BadInputException(
                          "--schedule '" + schedule + "': use cosine or constant");
                })
            .minLrRatio(minLrRatio)
            .weightDecay(weightDecay)
            .gradClip(gradClip)
            .gradAccum(gradAccum)
            .temperature(temperature)
            .alpha(alpha)
            .beta(beta)
            .hiddenPairs(DistillSettings.parsePairs(hiddenPairs))
            .divergence(
                switch (divergence.toLowerCase()) {
                  case "forward-kl", "kl" -> Divergence.FORWARD_KL;
                  case "reverse-kl" -> Divergence.REVERSE_KL;
                  case "jsd" -> Divergence.JSD;
                  default ->
                      throw new BadInputException(
                          "--divergence '" + divergence + "': use forward-kl, reverse-kl or jsd");
                })
            .jsdBeta(jsdBeta)
            .seed(seed)
            .loraRank(loraRank)
            .loraAlpha(loraAlpha)
            .loraTargets(loraTargets == null ? null : DistillSettings.parseTargets(loraTargets))
            .checkpointEvery(checkpointEvery)
            .evalEvery(evalEvery)
            .workDir(workDir)
            .resume(resume)
            .teacherCache(teacherCache)
            .cacheTopK(cacheTopK);
    if (keepLayers != null) {
      b.keepLayers(keepLayers);
    }
    if (dropLayers != null) {
      b.dropLayers(dropLayers);
    }
    return b.build();
  }

  /** 16.0 as "16", 0.5 as "0.5". */
  private static String plain(double v) {
    return java.math.BigDecimal.valueOf(v).stripTrailingZeros().toPlainString();
  }

  private static void printSummary(PrintWriter out, DistillReport r) {
    out.printf("distilled %s -> %s (student: %s)%n", r.teacher(), r.out(), r.student());
    DistillReport.Training t = r.training();
    out.printf(
        "training  %d steps of %d x %d tokens%s, lr %.3g (%s), %,d trainable parameters%n",
        t.steps(),
        t.batchSize(),
        t.seqLen(),
        r.resumedFrom() != null ? " (resumed at step " + r.resumedFrom() + ")" : "",
        t.lr(),
        t.schedule(),
        r.trainableParameters());
    DistillReport.Lora lora = r.lora();
    if (lora != null) {
      out.printf(
          "lora      rank %d, alpha %s (scale %s) on %s: %,d of the student's %,d parameters"
              + " train, %s less optimizer state; written merged%n",
          lora.rank(),
          plain(lora.alpha()),
          plain(lora.scale()),
          String.join(",", lora.targets()),
          lora.trainableParameters(),
          lora.fullParameters(),
          Sizes.human(lora.optimizerBytesSaved()));
    }
    if (!r.steps().isEmpty()) {
      Trainer.StepLog last = r.steps().get(r.steps().size() - 1);
      out.printf(
          "loss      %.4f at the last step (divergence %.4f, cross-entropy %.4f)%n",
          last.loss(), last.divergence(), last.crossEntropy());
    }
    if (r.studentAfter() != null) {
      out.printf(
          "quality   P1 perplexity: teacher %.4f, student %s -> %.4f%n",
          r.teacherEval().perplexity(),
          r.studentBefore() == null
              ? "(resumed)"
              : String.format("%.4f", r.studentBefore().perplexity()),
          r.studentAfter().perplexity());
    }
    out.printf(
        "speed     %.0f training tokens/s (%.1f s training, %.1f s evaluation)%n",
        r.seconds().tokensPerSecond(), r.seconds().training(), r.seconds().evaluation());
    for (String w : r.warnings()) {
      out.println("warning   " + w);
    }
    out.flush();
  }
}
