package llmc.cli;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.stream.IntStream;
import llmc.formats.BadInputException;
import llmc.formats.Json;
import llmc.model.Generator;
import llmc.model.LoadedModel;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

@Command(
    name = "generate",
    mixinStandardHelpOptions = true,
    description = "Greedy decoding with a KV cache: prints the prompt and its continuation.",
    footer = {
      "",
      "Example:",
      "  llmc generate samples/models/stories260K --prompt \"Once upon a time\" --max-tokens 40",
      "  llmc generate model-q8_0.gguf --tokenizer original/ --prompt \"Once upon a time\""
    })
final class GenerateCommand implements Callable<Integer> {
  @Parameters(
      index = "0",
      paramLabel = "MODEL",
      description = "A Hugging Face model folder or a .gguf file.")
  Path model;

  @Option(
      names = "--prompt",
      required = true,
      paramLabel = "TEXT",
      description = "The prompt (\"\" starts from BOS alone).")
  String prompt;

  @Option(
      names = "--max-tokens",
      defaultValue = "64",
      paramLabel = "N",
      description = "New tokens at most (default: ${DEFAULT-VALUE}).")
  int maxTokens;

  @Option(
      names = "--tokenizer",
      paramLabel = "DIR",
      description =
          "Hugging Face folder whose tokenizer.json to use (needed for a .gguf MODEL: the folder it was"
              + " exported from).")
  Path tokenizer;

  @Mixin CommonOptions common;

  @Spec CommandSpec spec;

  @Override
  public Integer call() {
    common.configureEngine();
    if (maxTokens < 0) {
      throw new BadInputException("--max-tokens must not be negative");
    }
    try (LoadedModel loaded = LoadedModel.open(model, tokenizer)) {
      int[] promptIds = loaded.tokenizer().encodeDocument(prompt);
      if (promptIds.length == 0) {
        throw new BadInputException(
            "the prompt is empty and the tokenizer adds no BOS token; give a --prompt");
      }
      if (promptIds.length + maxTokens > loaded.family.contextLength()) {
        maxTokens = Math.max(0, loaded.family.contextLength() - promptIds.length);
        spec.commandLine()
            .getErr()
            .println(
                "llmc: note: --max-tokens cut to "
                    + maxTokens
                    + " to stay within the context length "
                    + loaded.family.contextLength());
      }
      long t0 = System.nanoTime();
      List<Integer> generated =
          Generator.greedy(loaded.runtime, promptIds, maxTokens, loaded.tokenizer().eosId());
      double seconds = (System.nanoTime() - t0) / 1e9;
      int[] all =
          IntStream.concat(IntStream.of(promptIds), generated.stream().mapToInt(Integer::intValue))
              .toArray();
      String text = loaded.tokenizer().decode(all);
      String promptText = loaded.tokenizer().decode(promptIds);
      String continuation =
          text.startsWith(promptText) ? text.substring(promptText.length()) : text;
      PrintWriter stdout = spec.commandLine().getOut();
      if (common.json) {
        ObjectNode out = Json.mapper().createObjectNode();
        out.put("model", model.toString());
        out.put("prompt", prompt);
        out.put("text", text);
        out.put("continuation", continuation);
        out.put("prompt_tokens", promptIds.length);
        out.put("generated_tokens", generated.size());
        ArrayNode ids = out.putArray("tokens");
        generated.forEach(ids::add);
        out.put("seconds", seconds);
        out.put("tokens_per_second", generated.size() / seconds);
        common.print(stdout, out);
      } else {
        stdout.println(text);
        stdout.flush();
        spec.commandLine()
            .getErr()
            .printf(
                "llmc: %d tokens in %.2f s (%.1f tokens/s)%n",
                generated.size(), seconds, generated.size() / seconds);
      }
    }
    return Llmc.OK;
  }
}
