package llmc.pipeline;

import com.fasterxml.jackson.databind.JsonNode;
import java.util.List;
import java.util.Map;

/**
 * What a model is: architecture, parameters, bytes by dtype, size on disk, shape and the memory a
 * workload needs. A folder's report has {@code modelType}, {@code quantization} and {@code
 * sparsity}; a GGUF file's has {@code format}, {@code ggufVersion}, {@code tensorCount}, {@code
 * parametersByDtype} and its metadata (shape and memory only for llama.cpp's "llama" architecture).
 * What a report does not have is null.
 *
 * @param bytesByDtype bytes of the tensors of each dtype (safetensors or ggml names)
 * @param quantization a quantized folder's {@code quantization_config}, as it is
 * @param metadata GGUF keys {@code general.*} and {@code <architecture>.*}: scalars as they are,
 *     arrays of up to 8 values in full, longer ones as a text that counts them
 * @param tokenizer GGUF keys {@code tokenizer.ggml.*} that are not arrays (without the prefix), and
 *     {@code tokens}, the number of tokens
 * @param tensors every tensor, when asked for
 */
public record InspectReport(
    String model,
    String format,
    Integer ggufVersion,
    String architecture,
    String modelType,
    Integer tensorCount,
    long parameters,
    Map<String, Long> parametersByDtype,
    Map<String, Long> bytesByDtype,
    double bitsPerParameter,
    JsonNode quantization,
    long sizeOnDiskBytes,
    int files,
    Shape shape,
    Memory memory,
    Sparsity sparsity,
    Integer metadataKeys,
    Map<String, JsonNode> metadata,
    Map<String, JsonNode> tokenizer,
    List<Tensor> tensors,
    Double outlierThreshold,
    List<llmc.calibration.ActivationOutliers> activationOutliers) {

  /** True for a GGUF file's report. */
  public boolean gguf() {
    return ggufVersion != null;
  }

  /** The decoder's shape, with Hugging Face's names. */
  public record Shape(
      int hiddenSize,
      int numHiddenLayers,
      int numAttentionHeads,
      int numKeyValueHeads,
      int headDim,
      int intermediateSize,
      int vocabSize,
      int contextLength,
      boolean tieWordEmbeddings) {}

  /**
   * Memory to run: the weights as stored plus the KV cache, {@code 2 x layers x kv_heads x head_dim
   * x bytes x batch x seqLen}.
   */
  public record Memory(
      int batch,
      int seqLen,
      String kvDtype,
      long weightsBytes,
      long kvCacheBytes,
      long totalBytes) {}

  /**
   * Exact zeros in the decoder's linear weights as the model computes with them, and whether every
   * row is 2:4 sparse.
   */
  public record Sparsity(double linear, long zeros, long weights, boolean twoFour) {}

  /**
   * One tensor: shape outermost first; a folder's names its file, a GGUF file's its Hugging Face
   * name.
   */
  public record Tensor(
      String name, String dtype, List<Long> shape, long bytes, String file, String hfName) {}
}
