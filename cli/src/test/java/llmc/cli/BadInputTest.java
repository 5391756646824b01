package llmc.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Every broken input is refused with one line naming the file, exit code 2, and nothing written.
 */
class BadInputTest {
  @TempDir Path dir;

  interface Breakage {
    void apply(Path model) throws IOException;
  }

  static Stream<Arguments> breakages() {
    return Stream.of(
        Arguments.of(
            "truncated file",
            "model.safetensors",
            (Breakage)
                m -> {
                  byte[] all = Files.readAllBytes(m.resolve("model.safetensors"));
                  Files.write(
                      m.resolve("model.safetensors"), java.util.Arrays.copyOf(all, all.length / 2));
                }),
        Arguments.of(
            "header length past the end",
            "model.safetensors",
            (Breakage)
                m -> Files.write(m.resolve("model.safetensors"), safetensors(1L << 40, "{}", 0))),
        Arguments.of(
            "invalid JSON",
            "model.safetensors",
            (Breakage) m -> writeHeader(m, "{\"a\": {\"dtype\": \"F32\", ", 0)),
        Arguments.of(
            "unknown dtype",
            "model.safetensors",
            (Breakage)
                m ->
                    writeHeader(
                        m,
                        "{\"a\": {\"dtype\": \"F17\", \"shape\": [1], \"data_offsets\": [0, 4]}}",
                        4)),
        Arguments.of(
            "shape/offset mismatch",
            "model.safetensors",
            (Breakage)
                m ->
                    writeHeader(
                        m,
                        "{\"a\": {\"dtype\": \"F32\", \"shape\": [3], \"data_offsets\": [0, 8]}}",
                        8)),
        Arguments.of(
            "overlapping tensors",
            "model.safetensors",
            (Breakage)
                m ->
                    writeHeader(
                        m,
                        "{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]},"
                            + " \"b\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [4, 12]}}",
                        12)),
        Arguments.of(
            "shard named in the index but missing",
            "model-00002-of-00002.safetensors",
            (Breakage)
                m -> {
                  Files.move(
                      m.resolve("model.safetensors"),
                      m.resolve("model-00001-of-00002.safetensors"));
                  Files.writeString(
                      m.resolve("model.safetensors.index.json"),
                      """
              {"metadata": {"total_size": 1040128}, "weight_map": {
                "model.embed_tokens.weight": "model-00001-of-00002.safetensors",
                "model.norm.weight": "model-00002-of-00002.safetensors"}}""");
                }),
        Arguments.of(
            "config missing a required key",
            "config.json",
            (Breakage)
                m -> {
                  String config = Files.readString(m.resolve("config.json"));
                  Files.writeString(
                      m.resolve("config.json"), config.replace("\"hidden_size\": 64,", ""));
                }));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("breakages")
  void refusedWithOneLineExitTwoNothingWritten(String what, String namedFile, Breakage breakage)
      throws IOException {
    Path model = dir.resolve("model");
    Files.createDirectories(model);
    try (Stream<Path> files = Files.list(Path.of(Cli.stories()))) {
      for (Path f : files.toList()) {
        Files.copy(f, model.resolve(f.getFileName()));
      }
    }
    breakage.apply(model);
    List<Path> before = listing();
    for (String[] args :
        new String[][] {
          {"inspect", model.toString()},
          {"eval", model.toString(), "--data", Cli.valid(), "--max-windows", "1"}
        }) {
      Cli r = Cli.run(args);
      assertEquals(2, r.exitCode(), what + ": " + r.err());
      List<String> lines = r.err().lines().toList();
      assertEquals(1, lines.size(), what + ": one line, got: " + r.err());
      assertTrue(lines.get(0).startsWith("llmc: error: "), lines.get(0));
      assertTrue(
          lines.get(0).contains(namedFile), what + ": names " + namedFile + ": " + lines.get(0));
      assertEquals("", r.out());
    }
    assertEquals(before, listing(), "nothing written");
    Path out = dir.resolve("random-out");
    Cli r =
        Cli.run(
            "random-model",
            "--config",
            model.resolve("config.json").toString(),
            "--out",
            out.toString());
    if (namedFile.equals("config.json")) {
      assertEquals(2, r.exitCode(), r.err());
      assertFalse(Files.exists(out), "no output folder after a refused input");
      assertEquals(before, listing(), "nothing written");
    }
  }

  private List<Path> listing() throws IOException {
    try (Stream<Path> files = Files.walk(dir)) {
      return files.sorted().toList();
    }
  }

  private static void writeHeader(Path model, String header, int dataBytes) throws IOException {
    Files.write(
        model.resolve("model.safetensors"),
        safetensors(header.getBytes(StandardCharsets.UTF_8).length, header, dataBytes));
  }

  private static byte[] safetensors(long declaredHeaderLength, String header, int dataBytes) {
    byte[] json = header.getBytes(StandardCharsets.UTF_8);
    ByteBuffer b = ByteBuffer.allocate(8 + json.length + dataBytes).order(ByteOrder.LITTLE_ENDIAN);
    b.putLong(declaredHeaderLength).put(json);
    return b.array();
  }
}
