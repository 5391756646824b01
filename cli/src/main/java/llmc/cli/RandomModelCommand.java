package llmc.cli;

import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import llmc.formats.BadInputException;
import llmc.formats.DType;
import llmc.formats.Json;
import llmc.formats.ModelConfig;
import llmc.formats.ModelFolder;
import llmc.model.RandomModel;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

@Command(
    name = "random-model",
    mixinStandardHelpOptions = true,
    description = {
      "Writes a random-weight model of a real shape (for benchmarks and tests):",
      "the architecture from a config.json, the tokenizer files copied from the same folder."
    },
    footer = {
      "",
      "Example:",
      "  llmc random-model --config ../shared/models/smollm2-135m-shape --out /tmp/smollm2-random --dtype bf16"
    })
final class RandomModelCommand implements Callable<Integer> {
  @Option(
      names = "--config",
      required = true,
      paramLabel = "PATH",
      description = "A config.json, or a folder holding one (and tokenizer files).")
  Path config;

  @Option(
      names = "--out",
      required = true,
      paramLabel = "DIR",
      description = "Output folder, written atomically.")
  Path out;

  @Option(names = "--overwrite", description = "Replace --out if llmc wrote it.")
  boolean overwrite;

  @Option(
      names = "--seed",
      defaultValue = "0",
      description = "Random seed (default: ${DEFAULT-VALUE}).")
  long seed;

  @Option(
      names = "--dtype",
      defaultValue = "bf16",
      description = "f32, f16 or bf16 (default: ${DEFAULT-VALUE}).")
  String dtype;

  @Option(
      names = "--std",
      defaultValue = "0.02",
      description = "Standard deviation of the weights (default: ${DEFAULT-VALUE}).")
  double std;

  @Option(
      names = "--max-shard-size",
      defaultValue = "5GB",
      paramLabel = "SIZE",
      description =
          "Split the safetensors output into shards of at most SIZE (default: ${DEFAULT-VALUE}).")
  String maxShardSize;

  @Mixin CommonOptions common;

  @Spec CommandSpec spec;

  @Override
  public Integer call() {
    DType type =
        switch (dtype.toLowerCase()) {
          case "f32", "float32" -> DType.F32;
          case "f16", "float16" -> DType.F16;
          case "bf16", "bfloat16" -> DType.BF16;
          default -> throw new BadInputException("--dtype '" + dtype + "': use f32, f16 or bf16");
        };
    Path configJson = Files.isDirectory(config) ? config.resolve("config.json") : config;
    ModelConfig modelConfig = ModelConfig.read(configJson);
    ModelFolder auxiliary = Files.isDirectory(config) ? ModelFolder.open(config) : null;
    try {
      RandomModel.write(
          modelConfig,
          auxiliary,
          out,
          seed,
          type,
          std,
          0.0,
          overwrite,
          OutputOptions.shardBytes(maxShardSize));
    } finally {
      if (auxiliary != null) {
        auxiliary.close();
      }
    }
    if (common.json) {
      ObjectNode report = Json.mapper().createObjectNode();
      report.put("command", "random-model");
      report.put("out", out.toString());
      report.put("seed", seed);
      report.put("dtype", type.name());
      report.put("std", std);
      common.print(spec.commandLine().getOut(), report);
    } else {
      spec.commandLine().getOut().println(out);
    }
    return Llmc.OK;
  }
}
