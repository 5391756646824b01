/**
 * Training: the Llama-family forward in DJL array operations that PyTorch's autograd differentiates
 * ({@link llmc.model.train.DifferentiableLlama}), for gradients w.r.t. chosen parameters (pruning
 * scores, distillation), and LoRA adapters on its linear layers.
 */
package llmc.model.train;
