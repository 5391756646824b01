package llmc.model;

import java.nio.file.Path;
import llmc.formats.ModelFolder;

/** A model folder opened for running: config, mapped weights, the DJL runtime and the tokenizer. */
public final class LoadedModel implements AutoCloseable {
  public final ModelFolder folder;
  public final LlamaFamily family;
  public final LlamaRuntime runtime;
  private Tokenizer tokenizer;

  private LoadedModel(ModelFolder folder) {
    this.folder = folder;
    this.family = LlamaFamily.from(folder.config());
    this.runtime = new LlamaRuntime(family, Weights.of(folder), true);
  }

  public static LoadedModel open(Path dir) {
    ModelFolder folder = ModelFolder.open(dir);
    try {
      return new LoadedModel(folder);
    } catch (RuntimeException e) {
      folder.close();
      throw e;
    }
  }

  public Tokenizer tokenizer() {
    if (tokenizer == null) {
      tokenizer = Tokenizer.open(folder);
    }
    return tokenizer;
  }

  @Override
  public void close() {
    if (tokenizer != null) {
      tokenizer.close();
    }
    runtime.close();
    folder.close();
  }
}
