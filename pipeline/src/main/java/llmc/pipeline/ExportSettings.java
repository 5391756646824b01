package llmc.pipeline;

import java.nio.file.Path;
import llmc.formats.InvalidSettingException;
import llmc.formats.gguf.GgmlType;

/**
 * A model written as one GGUF file for llama.cpp, Ollama and LM Studio.
 *
 * @param model a Hugging Face folder (a quantized folder is read dequantized)
 * @param out the {@code .gguf} file
 * @param type the tensor type of the linear layers
 * @param name {@code general.name}, or null for the model folder's name
 */
public record ExportSettings(Path model, Path out, boolean overwrite, GgmlType type, String name) {
  public ExportSettings {
    if (model == null || out == null) {
      throw new InvalidSettingException("{model} and {out} are required");
    }
    if (type == null) {
      throw new InvalidSettingException("{type} is required: f32|f16|q8_0|q4_0|q4_1|q5_0|q5_1");
    }
  }

  public static ExportSettings of(Path model, Path out, GgmlType type) {
    return new ExportSettings(model, out, false, type, null);
  }
}
