package llmc.pipeline;

import java.nio.file.Path;
import java.util.Locale;
import java.util.Objects;
import llmc.formats.InvalidSettingException;

/**
 * What {@link InspectStage} looks at: a model folder or GGUF file, and the workload its memory is
 * sized for.
 *
 * @param model a Hugging Face folder or a {@code .gguf} file
 * @param tensors also list every tensor
 * @param batch sequences held at once in the KV cache
 * @param seqLen tokens per sequence, or null for the model's context length
 * @param kvDtype the KV cache's element type (null: f16)
 */
public record InspectSettings(
    Path model, boolean tensors, int batch, Integer seqLen, KvDtype kvDtype) {

  /** The element type of the KV cache, and its bytes. */
  public enum KvDtype {
    F32(4),
    F16(2),
    BF16(2),
    FP8(1);

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

    /** f32, f16, bf16 or fp8 in any case; float32, float16, bfloat16, f8, int8 and q8 too. */
    public static KvDtype parse(String name) {
      return switch (name == null ? "" : name.toLowerCase(Locale.ROOT)) {
        case "f32", "float32" -> F32;
        case "f16", "float16" -> F16;
        case "bf16", "bfloat16" -> BF16;
        case "fp8", "f8", "int8", "q8" -> FP8;
        default ->
            throw new InvalidSettingException("{kvDtype} '%s': use f32, f16, bf16 or fp8", name);
      };
    }
  }

  public InspectSettings {
    if (model == null) {
      throw new InvalidSettingException("{model} is required");
    }
    kvDtype = Objects.requireNonNullElse(kvDtype, KvDtype.F16);
    if (batch < 1) {
      throw new InvalidSettingException("{batch} %s: give at least 1", batch);
    }
    if (seqLen != null && seqLen < 1) {
      throw new InvalidSettingException("{seqLen} %s: give at least 1 token", seqLen);
    }
  }

  /** Batch 1, the context length, f16, without the tensor list. */
  public static InspectSettings of(Path model) {
    return new InspectSettings(model, false, 1, null, KvDtype.F16);
  }
}
