package llmc.pipeline;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import llmc.distill.CurvePlot;
import llmc.distill.DistillLoss;
import llmc.distill.Student;
import llmc.distill.Trainer;
import llmc.distill.TrainingCheckpoint;
import llmc.distill.TrainingWindows;
import llmc.formats.BadInputException;
import llmc.formats.DType;
import llmc.formats.InvalidSettingException;
import llmc.formats.ModelFolder;
import llmc.formats.OutputFolder;
import llmc.formats.SafetensorsWriter;
import llmc.model.Evaluator;
import llmc.model.LlamaFamily;
import llmc.model.LlamaRuntime;
import llmc.model.TextDataset;
import llmc.model.TokenWindows;
import llmc.model.Tokenizer;
import llmc.model.Weights;

/**
 * Knowledge distillation: a student (a model folder, or layers cut from the teacher) trained to
 * imitate the teacher on text, evaluated by P1 before, during and after, checkpointed in a work
 * folder and resumable, and written as a complete Hugging Face folder with its report and a plot of
 * the curves.
 */
public final class DistillStage implements Stage<DistillSettings, DistillReport> {
  /** The plot written beside the report. */
  public static final String PLOT = "training-curves.png";

  @Override
  public DistillReport run(DistillSettings s, Progress progress) {
    long t0 = System.nanoTime();
    List<String> warnings = new ArrayList<>();
    try (ModelFolder teacher = ModelFolder.open(s.teacher());
        ModelFolder studentFolder = s.student() == null ? null : ModelFolder.open(s.student())) {
      if (teacher.config().json().has("quantization_config")) {
        throw new InvalidSettingException(
            "{teacher} %s is stored compressed; distill from a dense model", s.teacher());
      }
      LlamaFamily teacherFamily = LlamaFamily.from(teacher.config());
      Student student =
          studentFolder != null
              ? Student.open(studentFolder, teacherFamily)
              : Student.cut(teacher, s.keptLayers(teacherFamily.layers()));
      for (int[] pair : s.hiddenPairs()) {
        if (pair[0] >= student.family().layers() || pair[1] >= teacherFamily.layers()) {
          throw new InvalidSettingException(
              "{hiddenPairs} %s:%s: the student has layers 0..%s, the teacher 0..%s",
              pair[0], pair[1], student.family().layers() - 1, teacherFamily.layers() - 1);
        }
      }
      if (!s.hiddenPairs().isEmpty() && student.family().hidden() != teacherFamily.hidden()) {
        throw new InvalidSettingException(
            "{hiddenPairs}: the student's hidden size %s differs from the teacher's %s",
            student.family().hidden(), teacherFamily.hidden());
      }
      List<Path> inputs = new ArrayList<>(List.of(s.teacher(), s.data()));
      if (s.student() != null) {
        inputs.add(s.student());
      }
      if (s.eval() != null) {
        inputs.add(s.eval());
      }
      int[] stream;
      List<int[]> evalWindows = null;
      int evalSeqLen = teacherFamily.defaultSeqLen();
      try (Tokenizer tokenizer = Tokenizer.open(teacher)) {
        stream = TokenWindows.stream(tokenizer, TextDataset.read(s.data(), s.field()));
        if (s.eval() != null) {
          int[] evalStream = TokenWindows.stream(tokenizer, TextDataset.read(s.eval(), "text"));
          evalWindows = TokenWindows.first(evalStream, evalSeqLen, s.evalMaxWindows());
          if (evalWindows.isEmpty()) {
            throw new BadInputException(
                s.eval() + ": fewer than one window of " + evalSeqLen + " tokens");
          }
        }
      }
      if (stream.length < s.seqLen()) {
        throw new InvalidSettingException(
            "%s holds %s tokens, fewer than one window of {seqLen} %s",
            s.data(), stream.length, s.seqLen());
      }
      TrainingWindows windows = new TrainingWindows(stream, s.seqLen(), s.seed());
      DistillLoss loss =
          new DistillLoss(
              s.alpha(), s.temperature(), s.beta(), s.divergence(), s.jsdBeta(), s.hiddenPairs());
      Trainer.Settings training =
          new Trainer.Settings(
              s.steps(),
              s.batchSize(),
              s.gradAccum(),
              s.learningRate(),
              0.9,
              0.95,
              1e-8,
              s.weightDecay(),
              s.gradClip(),
              loss,
              s.evalEvery(),
              s.checkpointEvery());
      String fingerprint = fingerprint(s);
      List<int[]> evalOn = evalWindows;
      double[] evalSeconds = new double[1];
      // The end of the last step's evaluation or checkpoint (or the start of training): each
      // step's wall time runs from there to the end of the step.
      long[] stepMark = new long[1];
      Trainer.Evaluation evaluation =
          evalOn == null
              ? null
              : (step, family, weights) -> {
                long e0 = System.nanoTime();
                Trainer.EvalPoint p = evaluate(step, family, weights, evalOn, progress);
                stepMark[0] = System.nanoTime();
                evalSeconds[0] += (stepMark[0] - e0) / 1e9;
                return p;
              };
      try (OutputFolder folder = OutputFolder.create(s.out(), s.overwrite(), inputs);
          Trainer trainer =
              new Trainer(
                  training, teacherFamily, Weights.of(teacher.checkpoint()), student, windows)) {
        Trainer.EvalPoint teacherEval =
            evaluation == null
                ? null
                : evaluation.evaluate(0, teacherFamily, Weights.of(teacher.checkpoint()));
        Integer resumedFrom = null;
        Trainer.EvalPoint before = null;
        TrainingCheckpoint.Loaded loaded =
            s.resume() ? TrainingCheckpoint.load(s.work(), fingerprint) : null;
        if (s.resume() && loaded == null) {
          warnings.add("resume: no checkpoint in " + s.work() + "; trained from the start");
        }
        if (loaded != null) {
          trainer.restore(loaded.state(), loaded.parameters(), loaded.optimizer());
          resumedFrom = loaded.state().step();
        } else if (evaluation != null) {
          before = trainer.evaluateNow(evaluation);
        }
        long trainStart = System.nanoTime();
        double evalBefore = evalSeconds[0];
        List<Double> stepSeconds = new ArrayList<>();
        stepMark[0] = trainStart;
        trainer.train(
            evaluation,
            step -> {
              TrainingCheckpoint.save(s.work(), inputs, trainer, fingerprint);
              stepMark[0] = System.nanoTime();
              return null;
            },
            log -> {
              long now = System.nanoTime();
              stepSeconds.add((now - stepMark[0]) / 1e9);
              stepMark[0] = now;
              progress.update("distill: step", log.step(), s.steps());
            });
        progress.finished();
        double trainSeconds =
            (System.nanoTime() - trainStart) / 1e9 - (evalSeconds[0] - evalBefore);
        int stepsRun = s.steps() - (resumedFrom == null ? 0 : resumedFrom);
        double tokensPerSecond =
            trainSeconds > 0
                ? (double) stepsRun * s.gradAccum() * s.batchSize() * s.seqLen() / trainSeconds
                : 0;
        writeStudent(folder.dir(), student, trainer.current());
        student.config().write(folder.dir().resolve("config.json"));
        (studentFolder != null ? studentFolder : teacher).copyAuxiliaryFilesTo(folder.dir());
        List<Trainer.EvalPoint> evals = trainer.evals();
        Trainer.EvalPoint after = evals.isEmpty() ? null : evals.get(evals.size() - 1);
        CurvePlot.write(
            folder.dir().resolve(PLOT),
            "llmc distill: " + student.description(),
            trainer.log(),
            evals);
        DistillReport report =
            new DistillReport(
                "distill",
                s.teacher().toString(),
                student.description(),
                s.out().toString(),
                new DistillReport.Training(
                    s.steps(),
                    s.batchSize(),
                    s.seqLen(),
                    s.gradAccum(),
                    "adamw (0.9, 0.95, 1e-8)",
                    s.lr(),
                    s.warmupSteps(),
                    s.schedule().name().toLowerCase(),
                    s.minLrRatio(),
                    s.weightDecay(),
                    s.gradClip(),
                    s.seed()),
                new DistillReport.Loss(
                    s.alpha(),
                    s.temperature(),
                    s.beta(),
                    s.divergence().label(),
                    s.divergence() == llmc.distill.Divergence.JSD ? s.jsdBeta() : null,
                    s.hiddenPairs().stream().map(p -> p[0] + ":" + p[1]).toList()),
                new DistillReport.Data(
                    s.data().toString(),
                    s.field(),
                    stream.length,
                    windows.drawn(),
                    s.eval() == null ? null : s.eval().toString(),
                    evalOn == null ? null : evalSeqLen,
                    evalOn == null ? null : evalOn.size()),
                trainer.trainableParameters(),
                trainer.optimizerBytes(),
                teacherEval,
                before,
                after,
                resumedFrom,
                PLOT,
                new DistillReport.Seconds(
                    trainSeconds,
                    evalSeconds[0],
                    (System.nanoTime() - t0) / 1e9,
                    tokensPerSecond,
                    List.copyOf(stepSeconds)),
                trainer.log(),
                evals,
                List.copyOf(warnings));
        Reports.store(report, folder.dir());
        folder.commit();
        TrainingCheckpoint.remove(s.work());
        return report;
      }
    }
  }

  /** P1 perplexity of {@code weights} on {@code windows}, on the fast runtime. */
  private static Trainer.EvalPoint evaluate(
      int step, LlamaFamily family, Weights weights, List<int[]> windows, Progress progress) {
    try (LlamaRuntime runtime = new LlamaRuntime(family, weights, true)) {
      Evaluator.Result r =
          Evaluator.evaluate(
              runtime,
              null,
              windows,
              1,
              done -> progress.update("eval: window", done, windows.size()));
      return new Trainer.EvalPoint(step, r.perplexity(), r.meanNll());
    }
  }

  /** The student's tensors, each in the dtype it was stored in. */
  private static void writeStudent(Path dir, Student student, Weights current) {
    try (SafetensorsWriter writer =
        new SafetensorsWriter(
            dir,
            QuantizeSettings.DEFAULT_SHARD_BYTES,
            Map.of("format", "pt", "producer", "llmc distill"))) {
      for (Map.Entry<String, DType> e : student.dtypes().entrySet()) {
        writer.writeFloats(
            e.getKey(), e.getValue(), current.shape(e.getKey()), current.floats(e.getKey()));
      }
      writer.finish();
    }
  }

  /**
   * The settings a checkpoint must have been made with to be resumed: everything that shapes the
   * training, not where it goes or how often it is looked at.
   */
  static String fingerprint(DistillSettings s) {
    var json = Reports.toJson(s);
    for (String key :
        List.of(
            "out",
            "overwrite",
            "eval",
            "eval_max_windows",
            "checkpoint_every",
            "eval_every",
            "work_dir",
            "resume")) {
      json.remove(key);
    }
    json.put("keep_layers", Arrays.toString(s.keepLayers()));
    json.put("drop_layers", Arrays.toString(s.dropLayers()));
    return json.toString();
  }
}
