package llmc.cli;

import java.io.PrintWriter;
import java.util.Locale;
import llmc.pipeline.MemoryPlan;
import llmc.pipeline.Reports;
import picocli.CommandLine.Option;

/** The memory limit of a layer-by-layer run, and the plan it is checked against. */
final class MemoryOptions {
  @Option(
      names = "--max-memory",
      paramLabel = "SIZE",
      description =
          "Memory the run may use at its peak, e.g. 6GB (default: three quarters of the"
              + " machine's). A run whose plan needs more is refused before it starts; ./llmc"
              + " sizes the JVM heap from it.")
  String maxMemory;

  @Option(
      names = "--dry-run",
      description =
          "Print the memory plan (what the run holds at its peak, and where) and stop; nothing"
              + " is read beyond config.json and the tensors' headers.")
  boolean dryRun;

  /** --max-memory in bytes, or null when not given. */
  Long maxMemoryBytes() {
    return maxMemory == null ? null : OutputOptions.bytes("--max-memory", maxMemory);
  }

  /** Prints the plan (or that the method has none) as --dry-run does. */
  static void print(PrintWriter out, MemoryPlan plan, boolean json, CommonOptions common) {
    if (json) {
      if (plan == null) {
        com.fasterxml.jackson.databind.node.ObjectNode none =
            com.fasterxml.jackson.databind.node.JsonNodeFactory.instance.objectNode();
        none.putNull("peak");
        none.put("note", "no memory plan for this method: it holds the whole model");
        common.print(out, none);
      } else {
        common.print(out, Reports.toJson(plan));
      }
      return;
    }
    if (plan == null) {
      out.println("memory plan: none for this method (it holds the whole model)");
      out.flush();
      return;
    }
    out.printf(
        Locale.ROOT,
        "memory plan: peak %s at %s; limit %s (%s)%n",
        Sizes.human(plan.peak()),
        plan.peakAt(),
        Sizes.human(plan.limit()),
        plan.fits() ? "fits" : "does not fit");
    for (MemoryPlan.Part p : plan.parts()) {
      out.printf(Locale.ROOT, "  %10s  %s%n", Sizes.human(p.bytes()), p.what());
    }
    out.printf(
        Locale.ROOT,
        "MLP activations: %s%n",
        plan.keepsMlpActivations() ? "kept for the layer's output" : "computed again");
    if (plan.spillsFinishedMatrices()) {
      out.println(
          "finished matrices: on disk in the work folder while down_proj's input is accumulated"
              + " and compressed");
    }
    out.flush();
  }
}
