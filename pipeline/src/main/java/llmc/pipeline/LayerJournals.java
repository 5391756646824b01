package llmc.pipeline;

import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.List;
import llmc.calibration.LayerJournal;
import llmc.formats.OutputPaths;

/** The layer journal of a quantize or prune run: where it lies and what it is tied to. */
final class LayerJournals {
  private LayerJournals() {}

  /**
   * Opens the journal in {@code work}, tied to the SHA-256 of every file in {@code hashed} (the
   * model, the calibration data, saved statistics) and to the settings that shape the layers: not
   * where the output goes, nor its evaluation, shard size or the work folder itself.
   *
   * @param inputs what the work folder may not overlap
   */
  static LayerJournal open(
      Record settings, Path work, boolean resume, List<Path> inputs, List<Path> hashed) {
    OutputPaths.checkDisjoint(work, inputs, "workDir");
    ObjectNode key = Reports.toJson(settings);
    for (String field :
        List.of("model", "out", "overwrite", "eval", "max_shard_bytes", "work_dir", "resume")) {
      key.remove(field);
    }
    for (Path p : hashed) {
      key.put("sha256 " + p.getFileName(), RecipeRun.sha256(p));
    }
    try {
      byte[] digest =
          MessageDigest.getInstance("SHA-256")
              .digest(key.toString().getBytes(StandardCharsets.UTF_8));
      return LayerJournal.open(work, HexFormat.of().formatHex(digest), resume);
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }
}
