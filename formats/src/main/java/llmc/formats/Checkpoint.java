package llmc.formats;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.MemorySegment;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.InvalidPathException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeMap;

/**
 * A whole checkpoint: model.safetensors, or shards through model.safetensors.index.json, or else
 * every *.safetensors file in the folder.
 */
public final class Checkpoint implements AutoCloseable {

  public static final String SINGLE_FILE = "model.safetensors";
  public static final String INDEX_FILE = "model.safetensors.index.json";

  private final Path folder;
  private final List<SafetensorsFile> files;
  private final TreeMap<String, SafetensorsFile> fileOf; // tensor name -> the file that holds it

  private Checkpoint(
      Path folder, List<SafetensorsFile> files, TreeMap<String, SafetensorsFile> fileOf) {
    this.folder = folder;
    this.files = List.copyOf(files);
    this.fileOf = fileOf;
  }

  public static Checkpoint open(Path folder) {
    if (!Files.isDirectory(folder)) {
      throw new BadInputException(folder + ": not a folder");
    }
    List<SafetensorsFile> opened = new ArrayList<>();
    try {
      TreeMap<String, SafetensorsFile> fileOf = new TreeMap<>();
      Optional<Path> single = ModelFolder.file(folder, SINGLE_FILE);
      Optional<Path> index =
          single.isEmpty() ? ModelFolder.file(folder, INDEX_FILE) : Optional.empty();
      if (single.isPresent()) {
        addAll(openInto(opened, single.get()), fileOf);
      } else if (index.isPresent()) {
        readIndex(folder, index.get(), opened, fileOf);
      } else {
        for (Path file : safetensorsFiles(folder)) {
          addAll(openInto(opened, file), fileOf);
        }
      }
      return new Checkpoint(folder, opened, fileOf);
    } catch (RuntimeException e) {
      opened.forEach(SafetensorsFile::close);
      throw e;
    }
  }

  private static void readIndex(
      Path folder,
      Path index,
      List<SafetensorsFile> opened,
      TreeMap<String, SafetensorsFile> fileOf) {
    JsonNode weightMap = readJson(index).get("weight_map");
    if (weightMap == null || !weightMap.isObject()) {
      throw new BadInputException(index + ": no \"weight_map\" object");
    }
    Map<String, SafetensorsFile> shards = new LinkedHashMap<>();
    for (Map.Entry<String, JsonNode> e : weightMap.properties()) {
      String tensor = e.getKey();
      if (!e.getValue().isTextual()) {
        throw new BadInputException(
            index + ": weight_map entry for '" + tensor + "' is not a file name");
      }
      String shardName = e.getValue().textValue();
      SafetensorsFile shard = shards.get(shardName);
      if (shard == null) {
        Path base = folder.toAbsolutePath().normalize();
        Path shardPath;
        try {
          shardPath = base.resolve(shardName).normalize();
        } catch (InvalidPathException notAName) {
          throw new BadInputException(
              index
                  + ": shard '"
                  + shardName
                  + "' (of tensor '"
                  + tensor
                  + "') is not a file name");
        }
        if (!shardPath.startsWith(base) || shardPath.equals(base)) {
          throw new BadInputException(index + ": shard '" + shardName + "' is outside " + folder);
        }
        Path shardFile =
            ModelFolder.file(folder, shardName)
                .orElseThrow(
                    () ->
                        new BadInputException(
                            index
                                + ": shard "
                                + shardName
                                + " (of tensor '"
                                + tensor
                                + "') is missing from "
                                + folder));
        shard = openInto(opened, shardFile);
        shards.put(shardName, shard);
      }
      if (!shard.contains(tensor)) {
        throw new BadInputException(
            index + ": tensor '" + tensor + "' is not in its shard " + shard.path());
      }
      fileOf.put(tensor, shard);
    }
  }

  private static JsonNode readJson(Path file) {
    try {
      JsonNode root = Json.mapper().readTree(Files.readString(file));
      if (root == null || !root.isObject()) {
        throw new BadInputException(file + ": not a JSON object");
      }
      return root;
    } catch (JsonProcessingException e) {
      throw new BadInputException(file + ": not valid JSON: " + Json.describe(e), e);
    } catch (IOException e) {
      throw new BadInputException(file + ": cannot read: " + e.getMessage(), e);
    }
  }

  private static List<Path> safetensorsFiles(Path folder) {
    List<Path> found = new ArrayList<>();
    try (DirectoryStream<Path> stream = Files.newDirectoryStream(folder, "*.safetensors")) {
      for (Path p : stream) {
        ModelFolder.file(folder, p.getFileName().toString()).ifPresent(found::add);
      }
    } catch (IOException e) {
      throw new UncheckedIOException("cannot list " + folder, e);
    }
    if (found.isEmpty()) {
      throw new BadInputException(
          folder
              + ": no "
              + SINGLE_FILE
              + ", "
              + INDEX_FILE
              + " or other .safetensors file; is this a safetensors model folder?");
    }
    Collections.sort(found);
    return found;
  }

  private static SafetensorsFile openInto(List<SafetensorsFile> opened, Path file) {
    SafetensorsFile f = SafetensorsFile.open(file);
    opened.add(f);
    return f;
  }

  private static void addAll(SafetensorsFile file, TreeMap<String, SafetensorsFile> fileOf) {
    for (TensorInfo t : file.tensors()) {
      SafetensorsFile other = fileOf.putIfAbsent(t.name(), file);
      if (other != null) {
        throw new BadInputException(
            file.path() + ": tensor '" + t.name() + "' is also in " + other.path());
      }
    }
  }

  public Path folder() {
    return folder;
  }

  /** Sorted by name. */
  public Set<String> names() {
    return Collections.unmodifiableSet(fileOf.keySet());
  }

  public boolean contains(String name) {
    return fileOf.containsKey(name);
  }

  public TensorInfo info(String name) {
    return fileOf(name).info(name);
  }

  public SafetensorsFile fileOf(String name) {
    SafetensorsFile file = fileOf.get(name);
    if (file == null) {
      throw new BadInputException(folder + ": checkpoint has no tensor '" + name + "'");
    }
    return file;
  }

  public float[] floats(String name) {
    return fileOf(name).floats(name);
  }

  public MemorySegment bytes(String name) {
    return fileOf(name).bytes(name);
  }

  /** Sum of the safetensors files' sizes in bytes. */
  public long sizeOnDisk() {
    long total = 0;
    for (SafetensorsFile f : files) {
      try {
        total += Files.size(f.path());
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    }
    return total;
  }

  public List<Path> files() {
    return files.stream().map(SafetensorsFile::path).toList();
  }

  @Override
  public void close() {
    files.forEach(SafetensorsFile::close);
  }
}
