/**
 * Quantized checkpoint layouts: where a {@link llmc.formats.QuantizedTensor} goes in a safetensors
 * checkpoint that AutoGPTQ / GPTQModel / transformers / vLLM ({@link
 * llmc.formats.quant.GptqLayout}) or vLLM's compressed-tensors ({@link
 * llmc.formats.quant.CompressedTensorsLayout}) load, and the way back to dense float32 weights for
 * evaluation ({@link llmc.formats.quant.QuantizedCheckpoint}).
 */
package llmc.formats.quant;
