/** llmc prune module: see docs/architecture.md. Filled in by its own issue. */
package llmc.prune;
