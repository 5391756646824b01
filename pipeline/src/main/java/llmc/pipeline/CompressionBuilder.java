package llmc.pipeline;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Pattern;

/**
 * What the quantize and prune settings builders share: the model and output, calibration,
 * evaluation of the result, modules left as they are, sharding, and the dampening and block of the
 * Hessian-based methods (GPTQ, SparseGPT).
 *
 * @param <B> the concrete builder, returned by every setter
 */
public abstract class CompressionBuilder<B extends CompressionBuilder<B>> {
  final Path model;
  final Path out;
  boolean overwrite;
  CalibrationSettings calibration;
  double damp = 0.01;
  int blockSize = 128;
  final List<Pattern> ignore = new ArrayList<>();
  EvaluationSettings eval;
  Long maxShardBytes;
  Long maxMemoryBytes;
  Path workDir;
  boolean resume;

  CompressionBuilder(Path model, Path out) {
    this.model = model;
    this.out = out;
  }

  abstract B self();

  /** Replace an output llmc wrote before. */
  public B overwrite(boolean overwrite) {
    this.overwrite = overwrite;
    return self();
  }

  public B calibration(CalibrationSettings calibration) {
    this.calibration = calibration;
    return self();
  }

  /** Dampening, a fraction of the mean Hessian diagonal (default 0.01). */
  public B damp(double damp) {
    this.damp = damp;
    return self();
  }

  /** Columns per lazy-update block (default 128). */
  public B blockSize(int blockSize) {
    this.blockSize = blockSize;
    return self();
  }

  /** Leaves modules whose name matches {@code regex} as they are. */
  public B ignore(String regex) {
    ignore.add(QuantizeSettings.regex("ignore", regex));
    return self();
  }

  /** Measure the quality before and after. */
  public B eval(EvaluationSettings eval) {
    this.eval = eval;
    return self();
  }

  /** The memory the run may use at its peak; null for three quarters of the machine's. */
  public B maxMemoryBytes(Long maxMemoryBytes) {
    this.maxMemoryBytes = maxMemoryBytes;
    return self();
  }

  /** Largest safetensors shard; null for 5 GB. */
  public B maxShardBytes(Long maxShardBytes) {
    this.maxShardBytes = maxShardBytes;
    return self();
  }

  /**
   * Where each finished layer is kept while the run goes (default: {@code OUT.work} beside the
   * output); removed when the run succeeds.
   */
  public B workDir(Path workDir) {
    this.workDir = workDir;
    return self();
  }

  /**
   * Continue from the layers the work folder holds (of a run with the same inputs and settings).
   */
  public B resume(boolean resume) {
    this.resume = resume;
    return self();
  }
}
