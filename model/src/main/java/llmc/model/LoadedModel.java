package llmc.model;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import llmc.formats.BadInputException;
import llmc.formats.InvalidSettingException;
import llmc.formats.ModelFolder;
import llmc.model.gguf.GgufWeights;

/**
 * A model opened for running: a Hugging Face folder (config, mapped weights) or a GGUF file of
 * llama.cpp's {@code "llama"} architecture (mapped, dequantized per tensor, q/k rows back in
 * Hugging Face order), with the runtime and the tokenizer. GGUF files carry llama.cpp's tokenizer,
 * not a {@code tokenizer.json}: their tokenizer comes from a Hugging Face folder given to {@link
 * #open(Path, Path)} (the model that was exported).
 */
public final class LoadedModel implements AutoCloseable {
  /** The model as given: a folder or a .gguf file. */
  public final Path path;

  /** The model folder; null for a GGUF file. */
  public final ModelFolder folder;

  /** The GGUF weights; null for a folder. */
  public final GgufWeights gguf;

  public final LlamaFamily family;
  public final LlamaRuntime runtime;

  /**
   * Where the tokenizer comes from: the folder itself, the --tokenizer folder, or null (a GGUF file
   * without one).
   */
  private final ModelFolder tokenizerFolder;

  private Tokenizer tokenizer;

  private LoadedModel(
      Path path,
      ModelFolder folder,
      GgufWeights gguf,
      LlamaFamily family,
      ModelFolder tokenizerFolder) {
    this.path = path;
    this.folder = folder;
    this.gguf = gguf;
    this.family = family;
    this.tokenizerFolder = tokenizerFolder;
    // Layers stay loaded while they take at most a quarter of the heap (an evaluation may hold a
    // base model too); a larger model runs one layer at a time.
    this.runtime =
        new LlamaRuntime(
            family,
            folder != null ? Weights.of(folder) : gguf,
            true,
            Runtime.getRuntime().maxMemory() / 4);
  }

  /** A model folder, or a .gguf file (whose {@link #tokenizer()} is then refused). */
  public static LoadedModel open(Path model) {
    return open(model, null);
  }

  /**
   * A model folder or a .gguf file, with the tokenizer of {@code tokenizerFolder} (a Hugging Face
   * folder with {@code config.json} and {@code tokenizer.json}); null = the model folder's own.
   */
  public static LoadedModel open(Path model, Path tokenizerFolder) {
    ModelFolder folder = null;
    GgufWeights gguf = null;
    ModelFolder tokenizer = null;
    try {
      if (isGguf(model)) {
        gguf = GgufWeights.open(model);
      } else if (Files.isRegularFile(model)) {
        throw new BadInputException(
            model
                + ": neither a model folder nor a GGUF file; MODEL is a Hugging Face"
                + " folder (config.json, model.safetensors, tokenizer.json) or a .gguf file");
      } else {
        folder = ModelFolder.open(model);
      }
      if (tokenizerFolder != null) {
        tokenizer = ModelFolder.open(tokenizerFolder);
      } else if (folder != null) {
        tokenizer = folder;
      }
      LlamaFamily family = folder != null ? LlamaFamily.of(folder) : gguf.family();
      if (tokenizer != null
          && tokenizer != folder
          && tokenizer.config().vocabSize() != family.vocab()) {
        throw new BadInputException(
            tokenizerFolder
                + ": config.json has vocab_size "
                + tokenizer.config().vocabSize()
                + " but "
                + model
                + " has "
                + family.vocab()
                + " tokens; set {tokenizer} to the folder of the model that"
                + " was exported");
      }
      return new LoadedModel(model, folder, gguf, family, tokenizer);
    } catch (RuntimeException e) {
      if (gguf != null) {
        gguf.close();
      }
      if (folder != null) {
        folder.close();
      }
      if (tokenizer != null && tokenizer != folder) {
        tokenizer.close();
      }
      throw e;
    }
  }

  /**
   * A path named {@code *.gguf} (not a folder), or a regular file that starts with GGUF's magic
   * bytes.
   */
  public static boolean isGguf(Path model) {
    Path name = model.getFileName();
    if (name != null
        && name.toString().toLowerCase(Locale.ROOT).endsWith(".gguf")
        && !Files.isDirectory(model)) {
      return true;
    }
    if (!Files.isRegularFile(model)) {
      return false;
    }
    try (InputStream in = Files.newInputStream(model)) {
      return new String(in.readNBytes(4), StandardCharsets.ISO_8859_1).equals("GGUF");
    } catch (IOException e) {
      return false;
    }
  }

  public boolean isGguf() {
    return gguf != null;
  }

  public Tokenizer tokenizer() {
    if (tokenizer == null) {
      if (tokenizerFolder == null) {
        throw new InvalidSettingException(
            "%s: llmc reads the tokenizer of a GGUF file from the original model folder; set"
                + " {tokenizer} to it",
            path);
      }
      tokenizer = Tokenizer.open(tokenizerFolder);
    }
    return tokenizer;
  }

  @Override
  public void close() {
    if (tokenizer != null) {
      tokenizer.close();
    }
    runtime.close();
    if (folder != null) {
      folder.close();
    }
    if (gguf != null) {
      gguf.close();
    }
    if (tokenizerFolder != null && tokenizerFolder != folder) {
      tokenizerFolder.close();
    }
  }
}
