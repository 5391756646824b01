/** llmc calibration module: see docs/architecture.md. Filled in by its own issue. */
package llmc.calibration;
