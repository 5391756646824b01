package llmc.cli;

import java.io.PrintWriter;
import java.util.concurrent.Callable;
import picocli.AutoComplete;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

@Command(
    name = "completion",
    mixinStandardHelpOptions = true,
    description = {
      "Prints a shell completion script for llmc (commands, options, file names): bash, or zsh",
      "(the same script: run by zsh, it loads compinit and bashcompinit first)."
    },
    footer = {
      "",
      "Examples:",
      "  source <(llmc completion bash)            # this shell; or put the line in ~/.bashrc",
      "  llmc completion zsh > ~/.llmc-completion.zsh && echo 'source ~/.llmc-completion.zsh' >> ~/.zshrc"
    })
final class CompletionCommand implements Callable<Integer> {
  @Parameters(
      index = "0",
      paramLabel = "bash|zsh",
      defaultValue = "bash",
      description = "The shell (default: ${DEFAULT-VALUE}).")
  String shell;

  @Spec CommandSpec spec;

  @Override
  public Integer call() {
    PrintWriter out = spec.commandLine().getOut();
    String script = AutoComplete.bash("llmc", spec.root().commandLine());
    switch (shell.toLowerCase()) {
      // picocli's script enables bash completion itself when zsh runs it (compinit, bashcompinit)
      case "bash", "zsh" -> out.print(script);
      default -> {
        spec.commandLine()
            .getErr()
            .println("llmc: error: completion '" + shell + "': use bash or zsh");
        return Llmc.BAD_INPUT;
      }
    }
    out.flush();
    return Llmc.OK;
  }
}
