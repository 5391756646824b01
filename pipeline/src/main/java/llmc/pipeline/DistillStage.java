package llmc.pipeline;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import llmc.distill.CurvePlot;
import llmc.distill.DistillLoss;
import llmc.distill.Student;
import llmc.distill.TeacherCache;
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
import llmc.model.Linear;
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
 * the curves. With LoRA only low-rank adapters train; the student written is the merged dense model
 * (no adapter tensors), and the checkpoints hold the adapters.
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
      LlamaFamily teacherFamily = LlamaFamily.of(teacher);
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
      checkLoraRank(s, student.family());
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
              s.checkpointEvery(),
              s.lora());
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
      DistillReport.Cache cacheReport = null;
      TeacherCache cache = null;
      if (s.teacherCache() != null && loss.needsTeacher()) {
        long needed = (long) s.steps() * s.gradAccum() * s.batchSize();
        if (s.cacheTopK() > teacherFamily.vocab()) {
          throw new InvalidSettingException(
              "{cacheTopK} %s: the vocabulary has %s tokens", s.cacheTopK(), teacherFamily.vocab());
        }
        TeacherCache.Key key =
            new TeacherCache.Key(
                s.teacher().toAbsolutePath().normalize().toString(),
                s.data().toAbsolutePath().normalize().toString(),
                stream.length,
                s.seed(),
                s.seqLen(),
                s.temperature(),
                s.cacheTopK(),
                teacherFamily.vocab());
        cache = TeacherCache.open(s.teacherCache());
        boolean built = false;
        Double buildSeconds = null;
        if (cache == null) {
          long b0 = System.nanoTime();
          TeacherCache.build(
              s.teacherCache(),
              inputs,
              key,
              teacherFamily,
              Weights.of(teacher.checkpoint()),
              new TrainingWindows(stream, s.seqLen(), s.seed()),
              needed,
              s.batchSize(),
              done -> progress.update("teacher cache: window", done, needed));
          progress.finished();
          buildSeconds = (System.nanoTime() - b0) / 1e9;
          built = true;
          cache = TeacherCache.open(s.teacherCache());
        } else if (!cache.key().equals(key) || cache.windows() < needed) {
          TeacherCache.Key have = cache.key();
          long haveWindows = cache.windows();
          cache.close();
          throw new InvalidSettingException(
              "{teacherCache} %s was made for %s (%s windows); this run needs %s (%s windows):"
                  + " give another {teacherCache} folder or remove this one",
              s.teacherCache(), have, haveWindows, key, needed);
        }
        long bytesPerToken = TeacherCache.bytesPerToken(s.cacheTopK());
        cacheReport =
            new DistillReport.Cache(
                s.teacherCache().toString(),
                built,
                s.cacheTopK(),
                cache.windows(),
                bytesPerToken,
                cache.windows() * (s.seqLen() - 1) * bytesPerToken,
                buildSeconds);
      }
      try (TeacherCache opened = cache;
          OutputFolder folder = OutputFolder.create(s.out(), s.overwrite(), inputs);
          Trainer trainer =
              new Trainer(
                  training,
                  teacherFamily,
                  Weights.of(teacher.checkpoint()),
                  student,
                  windows,
                  cache)) {
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
            "llmc distill: " + ModelCard.student(student.description()).replace("`", ""),
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
                lora(s, trainer),
                teacherEval,
                before,
                after,
                resumedFrom,
                cacheReport,
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
        ModelCard.store(ModelCard.of(report), folder.dir());
        folder.commit();
        TrainingCheckpoint.remove(s.work());
        return report;
      }
    }
  }

  /**
   * A rank above a targeted matrix's smaller side adds nothing a full update of it would not; such
   * a rank is refused.
   */
  private static void checkLoraRank(DistillSettings s, LlamaFamily student) {
    if (s.loraRank() == 0) {
      return;
    }
    for (Linear l : s.loraTargets()) {
      int side = Math.min(l.inFeatures(student), l.outFeatures(student));
      if (s.loraRank() > side) {
        throw new InvalidSettingException(
            "{loraRank} %s exceeds the student's %s_proj, %s x %s: give at most %s",
            s.loraRank(),
            DistillSettings.targetName(l),
            l.outFeatures(student),
            l.inFeatures(student),
            side);
      }
    }
  }

  /** The report's LoRA part, or null for a full fine-tune. */
  private static DistillReport.Lora lora(DistillSettings s, Trainer trainer) {
    if (s.loraRank() == 0) {
      return null;
    }
    long adapters = trainer.trainableParameters();
    long full = trainer.modelParameters();
    return new DistillReport.Lora(
        s.loraRank(),
        s.loraAlphaUsed(),
        s.loraAlphaUsed() / s.loraRank(),
        s.loraTargets().stream().map(DistillSettings::targetName).toList(),
        adapters,
        full,
        2L * 4 * (full - adapters));
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
    if (s.loraRank() == 0) {
      json.remove("lora_rank"); // as checkpoints made before LoRA existed
    } else {
      json.put("lora_alpha", s.loraAlphaUsed());
    }
    json.put("keep_layers", Arrays.toString(s.keepLayers()));
    json.put("drop_layers", Arrays.toString(s.dropLayers()));
    return json.toString();
  }
}
