/**
 * GGUF, the file format of llama.cpp (also read by Ollama and LM Studio): the block types ({@link
 * llmc.formats.gguf.GgmlType}) and their codecs ({@link llmc.formats.gguf.GgmlBlocks}, llama.cpp's
 * round-to-nearest reference rules bit for bit), a streaming writer ({@link
 * llmc.formats.gguf.GgufWriter}) and a mapped, validating reader ({@link
 * llmc.formats.gguf.GgufFile}).
 *
 * <p>Shapes in this package are row-major, outermost first, like safetensors: a weight is {@code
 * [out, in]}. GGUF itself stores them reversed ({@code ne[0]} innermost = {@code in}); only the
 * file bytes use that order.
 */
package llmc.formats.gguf;
