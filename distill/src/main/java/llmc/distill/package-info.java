/** llmc distill module: see docs/architecture.md. Filled in by its own issue. */
package llmc.distill;
