package llmc.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.nio.file.Files;
import java.nio.file.Path;
import llmc.formats.InvalidSettingException;
import llmc.pipeline.CalibrationSettings;
import llmc.pipeline.PruneSettings;
import llmc.pipeline.QuantizeSettings;
import llmc.prune.PruneMethod;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * One check, two front ends: the settings records refuse a bad value with a message naming the
 * setting; the command line prints the same message with its flags, on one line, exit 2.
 */
class SettingMessagesTest {
  @TempDir Path dir;

  @Test
  void badGroupSizeNamesTheSettingInJavaAndTheFlagOnTheCommandLine() {
    Path out = dir.resolve("out");
    Path calib = Path.of(Cli.valid());
    InvalidSettingException api =
        assertThrows(
            InvalidSettingException.class,
            () ->
                QuantizeSettings.builder(Path.of(Cli.stories()), out)
                    .groupSize(0)
                    .calibration(CalibrationSettings.of(calib))
                    .build());
    assertEquals("groupSize 0: use a positive size or -1 (one scale per row)", api.getMessage());

    Cli cli =
        Cli.run(
            "quantize",
            Cli.stories(),
            "--out",
            out.toString(),
            "--group-size",
            "0",
            "--calib",
            Cli.valid());
    assertEquals(2, cli.exitCode(), cli.err());
    assertEquals(
        "llmc: error: --group-size 0: use a positive size or -1 (one scale per row)",
        cli.err().strip());
    assertFalse(Files.exists(out));
  }

  @Test
  void contradictionsOfTheGgufTypeNameBothSettings() {
    InvalidSettingException api =
        assertThrows(
            InvalidSettingException.class,
            () ->
                QuantizeSettings.builder(Path.of(Cli.stories()), dir.resolve("m.gguf"))
                    .gguf(llmc.formats.gguf.GgmlType.Q4_0)
                    .bits(3)
                    .method(QuantizeSettings.Method.RTN)
                    .build());
    assertEquals("bits 3 contradicts ggufType q4_0 (4 bits); drop bits", api.getMessage());
    Cli cli =
        Cli.run(
            "quantize",
            Cli.stories(),
            "--out",
            dir.resolve("m.gguf").toString(),
            "--method",
            "rtn",
            "--format",
            "gguf",
            "--gguf-type",
            "q4_0",
            "--bits",
            "3");
    assertEquals(2, cli.exitCode(), cli.err());
    assertEquals(
        "llmc: error: --bits 3 contradicts --gguf-type q4_0 (4 bits); drop --bits",
        cli.err().strip());
  }

  @Test
  void nestedCalibrationSettingsAreNamedByTheirOwnFlag() {
    InvalidSettingException api =
        assertThrows(
            InvalidSettingException.class,
            () ->
                PruneSettings.builder(Path.of(Cli.stories()), dir.resolve("p"), PruneMethod.WANDA)
                    .calibration(CalibrationSettings.of(Path.of(Cli.valid())).withNsamples(0))
                    .build());
    assertEquals("calibration.nsamples 0: give at least 1", api.getMessage());
    Cli cli =
        Cli.run(
            "prune",
            Cli.stories(),
            "--out",
            dir.resolve("p").toString(),
            "--method",
            "wanda",
            "--calib",
            Cli.valid(),
            "--nsamples",
            "0");
    assertEquals(2, cli.exitCode(), cli.err());
    assertEquals("llmc: error: --nsamples 0: give at least 1", cli.err().strip());
  }
}
