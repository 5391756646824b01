package llmc.formats;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;
import java.util.stream.Stream;
import llmc.formats.gguf.GgufTokenizer;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * llmc reads only files inside the model folder: a file that is a symbolic link leading out of the
 * folder is refused with a message that names it, where it leads, and the fix; a link that stays
 * inside is read, and the folder itself may be a link.
 */
class ModelFolderLinksTest {

  @TempDir Path tmp;
  private Path model;
  private Path secret;

  private static Path stories() {
    return Path.of(System.getProperty("llmc.root", ".."), "samples/models/stories260K");
  }

  /** A copy of stories260K, and a file outside it. */
  @BeforeEach
  void copyOfStories() throws IOException {
    model = Files.createDirectories(tmp.resolve("model"));
    try (Stream<Path> files = Files.list(stories())) {
      for (Path f : files.toList()) {
        Files.copy(f, model.resolve(f.getFileName()));
      }
    }
    secret = Files.writeString(tmp.resolve("secret.txt"), "not for the output");
  }

  /** Replaces the model's file {@code name} with a link to {@code to}. */
  private Path linkInModel(String name, Path to) throws IOException {
    Path link = model.resolve(name);
    Files.deleteIfExists(link);
    return Files.createSymbolicLink(link, to);
  }

  private void assertRefusedLink(Runnable read, String name, Path to) throws IOException {
    TestFiles.assertBadInput(
        read::run,
        model.resolve(name).toString(),
        "links to " + to.toRealPath(),
        "outside the model folder",
        "copy the file into the folder");
  }

  @ParameterizedTest
  @ValueSource(
      strings = {
        "tokenizer.json",
        "tokenizer_config.json",
        "generation_config.json",
        "special_tokens_map.json",
        "tokenizer.model",
        "chat_template.jinja",
        "added_tokens.json"
      })
  void anAuxiliaryFileLinkedOutsideTheFolderIsRefusedAndNotCopied(String name) throws IOException {
    linkInModel(name, secret);
    Path out = Files.createDirectory(tmp.resolve("out"));
    try (ModelFolder folder = ModelFolder.open(model)) {
      assertRefusedLink(() -> folder.file(name), name, secret);
      assertRefusedLink(() -> folder.copyAuxiliaryFilesTo(out), name, secret);
    }
    try (Stream<Path> copied = Files.list(out)) {
      assertEquals(List.of(), copied.toList(), "nothing copied");
    }
  }

  @Test
  void theTokenizerReadersRefuseLinksOutside() throws IOException {
    linkInModel("tokenizer.json", secret);
    try (ModelFolder folder = ModelFolder.open(model)) {
      assertRefusedLink(folder::tokenizerJson, "tokenizer.json", secret);
    }
    Files.delete(model.resolve("tokenizer.json"));
    Files.copy(stories().resolve("tokenizer.json"), model.resolve("tokenizer.json"));
    linkInModel("tokenizer.model", secret);
    try (ModelFolder folder = ModelFolder.open(model)) {
      assertRefusedLink(() -> GgufTokenizer.from(folder), "tokenizer.model", secret);
    }
    Files.delete(model.resolve("tokenizer.model"));
    linkInModel("tokenizer_config.json", secret);
    try (ModelFolder folder = ModelFolder.open(model)) {
      assertRefusedLink(folder::tokenizerConfig, "tokenizer_config.json", secret);
      assertRefusedLink(folder::addBosToken, "tokenizer_config.json", secret);
    }
  }

  @Test
  void aTokenizerJsonLinkedToAnotherModelsFolderIsRefusedToo() throws IOException {
    Path real = stories().resolve("tokenizer.json").toRealPath();
    linkInModel("tokenizer.json", real);
    try (ModelFolder folder = ModelFolder.open(model)) {
      assertRefusedLink(folder::tokenizerJson, "tokenizer.json", real);
    }
  }

  @Test
  void aConfigLinkedOutsideIsRefused() throws IOException {
    Path config = Files.copy(model.resolve("config.json"), tmp.resolve("config.json"));
    linkInModel("config.json", config);
    assertRefusedLink(() -> ModelFolder.open(model), "config.json", config);
  }

  @Test
  void aCheckpointLinkedOutsideIsRefused() throws IOException {
    Path weights = Files.move(model.resolve("model.safetensors"), tmp.resolve("weights"));
    linkInModel("model.safetensors", weights);
    try (ModelFolder folder = ModelFolder.open(model)) {
      assertRefusedLink(folder::checkpoint, "model.safetensors", weights);
    }
    Files.delete(model.resolve("model.safetensors"));
    linkInModel("loose.safetensors", weights); // no model.safetensors, no index: loose files
    assertRefusedLink(() -> Checkpoint.open(model).close(), "loose.safetensors", weights);
  }

  /** model.safetensors moved to a shard named by an index. */
  private Path shardedModel(String shardName) throws IOException {
    Path shard = model.resolve(shardName);
    Files.createDirectories(shard.getParent());
    Files.move(model.resolve("model.safetensors"), shard);
    StringBuilder map = new StringBuilder();
    try (SafetensorsFile file = SafetensorsFile.open(shard)) {
      for (TensorInfo t : file.tensors()) {
        map.append(map.isEmpty() ? "" : ", ")
            .append('"')
            .append(t.name())
            .append("\": \"")
            .append(shardName)
            .append('"');
      }
    }
    Files.writeString(model.resolve(Checkpoint.INDEX_FILE), "{\"weight_map\": {" + map + "}}");
    return shard;
  }

  @Test
  void aShardLinkedOutsideIsRefused() throws IOException {
    Path shard = shardedModel("model-00001-of-00001.safetensors");
    Path outside = Files.move(shard, tmp.resolve("shard.safetensors"));
    linkInModel("model-00001-of-00001.safetensors", outside);
    try (ModelFolder folder = ModelFolder.open(model)) {
      assertRefusedLink(folder::checkpoint, "model-00001-of-00001.safetensors", outside);
    }
  }

  @Test
  void anIndexLinkedOutsideIsRefused() throws IOException {
    shardedModel("model-00001-of-00001.safetensors");
    Path index = Files.move(model.resolve(Checkpoint.INDEX_FILE), tmp.resolve("index.json"));
    linkInModel(Checkpoint.INDEX_FILE, index);
    assertRefusedLink(() -> Checkpoint.open(model).close(), Checkpoint.INDEX_FILE, index);
  }

  @Test
  void linksThatStayInsideTheFolderAreRead() throws IOException {
    // the Hugging Face cache's layout: names that link to blobs in the same tree
    Path blobs = Files.createDirectories(model.resolve("blobs"));
    Path blob = Files.move(model.resolve("tokenizer.json"), blobs.resolve("0a1b"));
    Files.createSymbolicLink(model.resolve("tokenizer.json"), Path.of("blobs/0a1b"));
    shardedModel("shards/model-00001-of-00001.safetensors");
    Path shard = model.resolve("shards/model-00001-of-00001.safetensors");
    Path shardBlob = Files.move(shard, blobs.resolve("2c3d"));
    Files.createSymbolicLink(shard, shardBlob);
    Path out = Files.createDirectory(tmp.resolve("out"));
    try (ModelFolder folder = ModelFolder.open(model)) {
      assertEquals(Optional.of(model.resolve("tokenizer.json")), folder.tokenizerJson());
      assertEquals(47, folder.checkpoint().names().size());
      folder.copyAuxiliaryFilesTo(out);
      GgufTokenizer.from(folder);
    }
    assertEquals(Files.readString(blob), Files.readString(out.resolve("tokenizer.json")));
    assertFalse(Files.isSymbolicLink(out.resolve("tokenizer.json")), "a copy, not the link");
  }

  @Test
  void theFolderItselfMayBeALink() throws IOException {
    Path link = Files.createSymbolicLink(tmp.resolve("link"), model);
    try (ModelFolder folder = ModelFolder.open(link)) {
      assertTrue(folder.tokenizerJson().isPresent());
      assertEquals(47, folder.checkpoint().names().size());
      assertEquals(5, folder.auxiliaryFiles().size());
    }
  }

  @Test
  void aMissingFileOrALinkThatLeadsNowhereIsAbsent() throws IOException {
    Files.delete(model.resolve("tokenizer.json"));
    try (ModelFolder folder = ModelFolder.open(model)) {
      assertEquals(Optional.empty(), folder.tokenizerJson());
    }
    linkInModel("tokenizer.json", tmp.resolve("does-not-exist"));
    try (ModelFolder folder = ModelFolder.open(model)) {
      assertEquals(Optional.empty(), folder.tokenizerJson());
    }
  }
}
