/**
 * Gradients of the language-model loss w.r.t. the linear weights, by DJL/PyTorch autograd over the
 * calibration windows ({@link llmc.prune.grad.Gradients}): the input of the gradient-based pruning
 * scores (sensitivity, Taylor).
 */
package llmc.prune.grad;
