/**
 * Pruning: sparsity patterns ({@link llmc.prune.SparsityPattern}), scores ({@link
 * llmc.prune.Scores}: magnitude, Wanda), masks chosen from scores ({@link llmc.prune.Masks}), and
 * SparseGPT ({@link llmc.prune.SparseGpt}), which chooses its mask and compensates the pruned
 * weights with the inverse Hessian as GPTQ does. Weights are {@code [rows = out_features][cols =
 * in_features]} row-major; N:M blocks run along the input features (PROTOCOLS.md, "Sparsity
 * patterns").
 */
package llmc.prune;
