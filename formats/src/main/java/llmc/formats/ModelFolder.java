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

/** A Hugging Face model folder: config.json, tokenizer files, safetensors checkpoint. */
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
    Path config = dir.resolve(CONFIG);
    if (!Files.isRegularFile(config)) {
      throw new BadInputException(dir + ": no config.json; is this a Hugging Face model folder?");
    }
    return new ModelFolder(dir, ModelConfig.read(config));
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
    Path file = dir.resolve("tokenizer.json");
    return Files.isRegularFile(file) ? Optional.of(file) : Optional.empty();
  }

  /** tokenizer_config.json parsed, when present. */
  public synchronized Optional<ObjectNode> tokenizerConfig() {
    if (tokenizerConfig == null) {
      Path file = dir.resolve("tokenizer_config.json");
      tokenizerConfig =
          Files.isRegularFile(file) ? Optional.of(readObject(file)) : Optional.empty();
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
    return AUXILIARY_FILES.stream().map(dir::resolve).filter(Files::isRegularFile).toList();
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
