package llmc.model;

import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import llmc.formats.DType;
import llmc.formats.Json;
import llmc.formats.ModelConfig;
import llmc.formats.ModelFolder;
import llmc.formats.OutputFolder;
import llmc.formats.SafetensorsWriter;

/**
 * Random-weight models of a real shape, for tests and benchmarks: weights ~ N(0, std^2), norm
 * weights 1 + N(0, normJitter^2), biases ~ N(0, std^2). Written tensor by tensor, so memory is one
 * tensor whatever the model's size; deterministic for a seed.
 */
public final class RandomModel {
  private RandomModel() {}

  /**
   * @param config the architecture (its config.json is written as is)
   * @param auxiliary a model folder whose tokenizer files are copied, or null
   */
  public static void write(
      ModelConfig config,
      ModelFolder auxiliary,
      Path out,
      long seed,
      DType dtype,
      double std,
      double normJitter) {
    write(config, auxiliary, out, seed, dtype, std, normJitter, false);
  }

  /**
   * As above; {@code overwrite} replaces an existing output that llmc wrote (it holds
   * llmc-report.json, which this writes too: the seed, dtype and standard deviation).
   */
  public static void write(
      ModelConfig config,
      ModelFolder auxiliary,
      Path out,
      long seed,
      DType dtype,
      double std,
      double normJitter,
      boolean overwrite) {
    write(config, auxiliary, out, seed, dtype, std, normJitter, overwrite, 0);
  }

  /**
   * As above, in shards of at most {@code maxShardBytes} (0: one file) with a {@code
   * model.safetensors.index.json}, as Hugging Face checkpoints of large models are.
   */
  public static void write(
      ModelConfig config,
      ModelFolder auxiliary,
      Path out,
      long seed,
      DType dtype,
      double std,
      double normJitter,
      boolean overwrite,
      long maxShardBytes) {
    LlamaFamily f = LlamaFamily.from(config);
    SplittableRandom random = new SplittableRandom(seed);
    List<Path> inputs = auxiliary == null ? List.of() : List.of(auxiliary.dir());
    try (OutputFolder folder = OutputFolder.create(out, overwrite, inputs)) {
      ObjectNode report = Json.mapper().createObjectNode();
      report.put("command", "random-model");
      report.put("seed", seed);
      report.put("dtype", dtype.name());
      report.put("std", std);
      report.put("norm_jitter", normJitter);
      Json.writePretty(folder.dir().resolve(OutputFolder.REPORT), report);
      config.write(folder.dir().resolve("config.json"));
      if (auxiliary != null) {
        auxiliary.copyAuxiliaryFilesTo(folder.dir());
      }
      try (SafetensorsWriter writer =
          new SafetensorsWriter(
              folder.dir(),
              maxShardBytes,
              Map.of("format", "pt", "llmc", "random-model seed " + seed))) {
        Writer w = new Writer(writer, random, dtype);
        w.normal(TensorNames.EMBED, std, f.vocab(), f.hidden());
        for (int i = 0; i < f.layers(); i++) {
          w.norm(TensorNames.inputNorm(i), normJitter, f.hidden());
          for (Linear linear : Linear.values()) {
            w.normal(linear.weightName(i), std, linear.outFeatures(f), linear.inFeatures(f));
            boolean qkv = linear.input == Linear.Input.ATTN_IN;
            if ((qkv && config.attentionBias())
                || (linear.input != Linear.Input.ATTN_IN
                    && linear.input != Linear.Input.ATTN_OUT
                    && config.mlpBias())) {
              w.normal(linear.biasName(i), std, linear.outFeatures(f));
            }
          }
          if (f.variant().hasQkNorm()) {
            w.norm(TensorNames.qNorm(i), normJitter, f.headDim());
            w.norm(TensorNames.kNorm(i), normJitter, f.headDim());
          }
          w.norm(TensorNames.postAttentionNorm(i), normJitter, f.hidden());
        }
        w.norm(TensorNames.FINAL_NORM, normJitter, f.hidden());
        if (!f.tiedEmbeddings()) {
          w.normal(TensorNames.LM_HEAD, std, f.vocab(), f.hidden());
        }
        writer.finish();
      }
      folder.commit();
    }
  }

  private record Writer(SafetensorsWriter writer, SplittableRandom random, DType dtype) {
    void normal(String name, double std, long... shape) {
      float[] values =
          new float[Math.toIntExact(shape.length == 1 ? shape[0] : shape[0] * shape[1])];
      for (int i = 0; i < values.length; i++) {
        values[i] = (float) (random.nextGaussian() * std);
      }
      writer.writeFloats(name, dtype, shape, values);
    }

    void norm(String name, double jitter, long size) {
      float[] values = new float[Math.toIntExact(size)];
      for (int i = 0; i < values.length; i++) {
        values[i] = (float) (1 + random.nextGaussian() * jitter);
      }
      writer.writeFloats(name, dtype, new long[] {size}, values);
    }
  }
}
