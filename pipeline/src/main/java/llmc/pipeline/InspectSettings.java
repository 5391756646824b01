package llmc.pipeline;

import java.nio.file.Path;
import java.util.Locale;
import llmc.formats.InvalidSettingException;

/**
 * What {@link InspectStage} looks at: a model folder or GGUF file, and the workload its memory is
 * sized for.
 *
 * @param model a Hugging Face folder or a {@code .gguf} file
 * @param tensors also list every tensor
 * @param batch sequences held at once in the KV cache
 * @param seqLen tokens per sequence, or null for the model's context length
 * @param kvDtype the KV cache's element type (null: the model's own, from its {@code
 *     kv_cache_scheme}: fp8 or int8; f16 without one)
 * @param calibration with it, the calibration windows run through the model (a folder) and every
 *     layer's inputs reported for activation outliers; null for none
 * @param outlierThreshold an input feature is an outlier when its largest {@code |x|} is above it
 *     (6.0 by default, LLM.int8's)
 */
public record InspectSettings(
    Path model,
    boolean tensors,
    int batch,
    Integer seqLen,
    KvDtype kvDtype,
    CalibrationSettings calibration,
    double outlierThreshold) {

  /** LLM.int8's outlier threshold. */
  public static final double DEFAULT_OUTLIER_THRESHOLD = 6.0;

  /** Without the activation outliers. */
  public InspectSettings(Path model, boolean tensors, int batch, Integer seqLen, KvDtype kvDtype) {
    this(model, tensors, batch, seqLen, kvDtype, null, DEFAULT_OUTLIER_THRESHOLD);
  }

  /** The element type of the KV cache, and its bytes. */
  public enum KvDtype {
    F32(4),
    F16(2),
    BF16(2),
    FP8(1),
    INT8(1);

    private final int bytes;

    KvDtype(int bytes) {
      this.bytes = bytes;
    }

    public int bytes() {
      return bytes;
    }

    /** {@code f16}, as the report names it. */
    public String label() {
      return name().toLowerCase(Locale.ROOT);
    }

    /** f32, f16, bf16, fp8 or int8 in any case; float32, float16, bfloat16, f8 and q8 too. */
    public static KvDtype parse(String name) {
      return switch (name == null ? "" : name.toLowerCase(Locale.ROOT)) {
        case "f32", "float32" -> F32;
        case "f16", "float16" -> F16;
        case "bf16", "bfloat16" -> BF16;
        case "fp8", "f8" -> FP8;
        case "int8", "q8" -> INT8;
        default ->
            throw new InvalidSettingException(
                "{kvDtype} '%s': use f32, f16, bf16, fp8 or int8", name);
      };
    }
  }

  public InspectSettings {
    if (model == null) {
      throw new InvalidSettingException("{model} is required");
    }
    if (batch < 1) {
      throw new InvalidSettingException("{batch} %s: give at least 1", batch);
    }
    if (seqLen != null && seqLen < 1) {
      throw new InvalidSettingException("{seqLen} %s: give at least 1 token", seqLen);
    }
    if (!(outlierThreshold > 0)) {
      throw new InvalidSettingException(
          "{outlierThreshold} %s: give a positive |x| (6.0 is LLM.int8's)", outlierThreshold);
    }
  }

  /** Batch 1, the context length, the model's KV cache type, without the tensor list. */
  public static InspectSettings of(Path model) {
    return new InspectSettings(model, false, 1, null, null);
  }
}
