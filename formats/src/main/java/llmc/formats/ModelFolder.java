package llmc.formats;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.List;
import java.util.Optional;

/**
 * A Hugging Face model folder: config.json, tokenizer files, safetensors checkpoint. Every file
 * llmc reads from a model folder is found through {@link #file(Path, String)}: a symbolic link may
 * point anywhere inside the folder, never outside it.
 */
public final class ModelFolder implements AutoCloseable {

  public static final String CONFIG = "config.json";

  /** Files a compressed output folder carries over unchanged, in this order. */
  public static final List<String> AUXILIARY_FILES =
      List.of(
          "generation_config.json",
          "tokenizer.json",
          "tokenizer_config.json",
          "special_tokens_map.json",
          "tokenizer.model",
          "vocab.json",
          "merges.txt",
          "added_tokens.json",
          "chat_template.jinja");

  private final Path dir;
  private final ModelConfig config;
  private Checkpoint checkpoint;
  private Optional<ObjectNode> tokenizerConfig;

  private ModelFolder(Path dir, ModelConfig config) {
    this.dir = dir;
    this.config = config;
  }

  public static ModelFolder open(Path dir) {
    if (!Files.isDirectory(dir)) {
      throw new BadInputException(
          dir + ": not a folder" + (Files.exists(dir) ? "" : " (does not exist)"));
    }
    Path config =
        file(dir, CONFIG)
            .orElseThrow(
                () ->
                    new BadInputException(
                        dir + ": no config.json; is this a Hugging Face model folder?"));
    return new ModelFolder(dir, ModelConfig.read(config));
  }

  /**
   * The regular file {@code name} (a name or a relative path) of the model folder {@code dir}, if
   * there is one; refused with a {@link BadInputException} when its real path (symbolic links
   * resolved) lies outside the folder's real path. A link that stays inside the folder is fine, and
   * the folder itself may be a link. The path returned is {@code dir.resolve(name)}, as the user
   * knows it.
   */
  public static Optional<Path> file(Path dir, String name) {
    Path file = dir.resolve(name);
    if (!Files.isRegularFile(file)) {
      return Optional.empty(); // absent, a folder, or a link that leads nowhere: nothing to read
    }
    Path real;
    Path realDir;
    try {
      real = file.toRealPath();
      realDir = dir.toRealPath();
    } catch (IOException e) {
      throw new BadInputException(file + ": cannot resolve its real path: " + e.getMessage(), e);
    }
    if (!real.startsWith(realDir) || real.equals(realDir)) {
      throw new BadInputException(
          file
              + " links to "
              + real
              + ", outside the model folder "
              + realDir
              + "; llmc reads only files inside the model folder: copy the file into the folder");
    }
    return Optional.of(file);
  }

  /** {@link #file(Path, String)} of this folder. */
  public Optional<Path> file(String name) {
    return file(dir, name);
  }

  public Path dir() {
    return dir;
  }

  public ModelConfig config() {
    return config;
  }

  /** Opened on first use. */
  public synchronized Checkpoint checkpoint() {
    if (checkpoint == null) {
      checkpoint = Checkpoint.open(dir);
    }
    return checkpoint;
  }

  public Optional<Path> tokenizerJson() {
    return file("tokenizer.json");
  }

  /** tokenizer_config.json parsed, when present. */
  public synchronized Optional<ObjectNode> tokenizerConfig() {
    if (tokenizerConfig == null) {
      tokenizerConfig = file("tokenizer_config.json").map(ModelFolder::readObject);
    }
    return tokenizerConfig.map(ObjectNode::deepCopy);
  }

  /** tokenizer_config's add_bos_token; when absent, true for the llama family (llama, mistral). */
  public boolean addBosToken() {
    JsonNode flag = tokenizerConfig().map(c -> c.get("add_bos_token")).orElse(null);
    if (flag != null && flag.isBoolean()) {
      return flag.booleanValue();
    }
    String type = config.modelType();
    return "llama".equals(type) || "mistral".equals(type);
  }

  /** Those of AUXILIARY_FILES present. */
  public List<Path> auxiliaryFiles() {
    return AUXILIARY_FILES.stream().map(this::file).flatMap(Optional::stream).toList();
  }

  /** Verbatim byte copies (fresh files, not the source's permissions). */
  public void copyAuxiliaryFilesTo(Path target) {
    for (Path file : auxiliaryFiles()) {
      try (InputStream in = Files.newInputStream(file)) {
        Files.copy(
            in, target.resolve(file.getFileName().toString()), StandardCopyOption.REPLACE_EXISTING);
      } catch (IOException e) {
        throw new UncheckedIOException("cannot copy " + file + " to " + target, e);
      }
    }
  }

  private static ObjectNode readObject(Path file) {
    try {
      if (Json.mapper().readTree(Files.readString(file)) instanceof ObjectNode object) {
        return object;
      }
      throw new BadInputException(file + ": not a JSON object");
    } catch (JsonProcessingException e) {
      throw new BadInputException(file + ": not valid JSON: " + Json.describe(e), e);
    } catch (IOException e) {
      throw new BadInputException(file + ": cannot read: " + e.getMessage(), e);
    }
  }

  @Override
  public synchronized void close() {
    if (checkpoint != null) {
      checkpoint.close();
      checkpoint = null;
    }
  }
}
