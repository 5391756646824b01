package llmc.model.gguf;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;
import java.util.function.Predicate;
import llmc.formats.BadInputException;
import llmc.formats.QuantizedTensor;
import llmc.formats.gguf.GgmlType;
import llmc.formats.gguf.GgufWriter;
import llmc.model.LlamaFamily;
import llmc.model.TensorNames;
import llmc.model.Weights;
import llmc.model.kernels.Parallel;

/**
 * A llama model written as one GGUF file, tensor by tensor in {@link #tensors()} order, so that at
 * most one tensor is in memory: the metadata and every tensor's name, type and shape first, then
 * the data.
 *
 * <p>Which type each tensor gets ({@link #plan}), as llama.cpp's {@code llama-quantize} decides
 * with a fallback:
 *
 * <ul>
 *   <li>norms (1-D): F32;
 *   <li>linear layers: the file's type; F16 where {@code in_features} is not a multiple of 32 (a
 *       block's width), or where the module was left out of quantization;
 *   <li>the token embedding: the file's type for F32 / F16; in the quantized types Q8_0 when it is
 *       tied (it is then also the output projection, which llama.cpp keeps at high precision), else
 *       the file's type;
 *   <li>{@code output.weight}: Q8_0 in the quantized types (llama.cpp uses Q6_K, a k-quant llmc
 *       does not write).
 * </ul>
 */
public final class GgufModelWriter implements AutoCloseable {

  /**
   * One tensor of the file.
   *
   * @param hfName the Hugging Face name it comes from
   * @param ggufName llama.cpp's name
   * @param type the stored type
   * @param rows outermost size (1 for a vector)
   * @param cols innermost size ({@code in_features} of a matrix, the length of a vector)
   * @param vector a 1-D tensor
   * @param rowOrder the GGUF row order of a q/k projection ({@code rowOrder[ggufRow] = hfRow}), or
   *     null
   * @param fallback why it is not of the file's type, or null
   */
  public record Tensor(
      String hfName,
      String ggufName,
      GgmlType type,
      int rows,
      int cols,
      boolean vector,
      int[] rowOrder,
      String fallback) {

    long[] shape() {
      return vector ? new long[] {cols} : new long[] {rows, cols};
    }
  }

  private final GgufWriter writer;
  private final List<Tensor> tensors;
  private final Map<String, Tensor> byHfName;

  /**
   * @param out the .gguf file (written beside as a temporary file, renamed by {@link #finish()})
   * @param overwrite replace an existing file
   * @param f the model's hyperparameters
   * @param name {@code general.name}
   * @param fileType the type of the linear layers ({@code general.file_type})
   * @param tensors the plan, in write order
   * @param tokenizer puts the {@code tokenizer.ggml.*} keys
   */
  public GgufModelWriter(
      Path out,
      boolean overwrite,
      LlamaFamily f,
      String name,
      GgmlType fileType,
      List<Tensor> tensors,
      Consumer<GgufWriter> tokenizer) {
    this(out, overwrite, List.of(), f, name, fileType, tensors, tokenizer);
  }

  /**
   * The same, with {@code inputs} (the model folder) that {@code out} may not overlap ({@link
   * GgufWriter#create(Path, boolean, Collection)}).
   */
  public GgufModelWriter(
      Path out,
      boolean overwrite,
      Collection<Path> inputs,
      LlamaFamily f,
      String name,
      GgmlType fileType,
      List<Tensor> tensors,
      Consumer<GgufWriter> tokenizer) {
    this.tensors = List.copyOf(tensors);
    this.byHfName = new java.util.HashMap<>();
    for (Tensor t : tensors) {
      byHfName.put(t.hfName(), t);
    }
    this.writer = GgufWriter.create(out, overwrite, inputs);
    writer.encodeWith(Parallel::forEach, Parallel.threads());
    try {
      writer.alignment(32); // written as general.alignment
      LlamaGguf.putMetadata(writer, f, name, fileType);
      tokenizer.accept(writer);
      for (Tensor t : tensors) {
        writer.declare(t.ggufName(), t.type(), t.shape());
      }
    } catch (RuntimeException e) {
      writer.close();
      throw e;
    }
  }

  /**
   * The tensors of a model in write order (globals, then layer by layer) with their types.
   *
   * @param hfNames every tensor of the checkpoint
   * @param type the file's type
   * @param quantizable the linear layers that get {@code type} (the others are F16); null = all of
   *     them
   */
  public static List<Tensor> plan(
      LlamaFamily f,
      Weights weights,
      Iterable<String> hfNames,
      GgmlType type,
      Predicate<String> quantizable) {
    Map<String, Integer> order = LlamaGguf.writeOrder(f);
    List<Tensor> plan = new ArrayList<>();
    for (String hf : hfNames) {
      if (hf.endsWith(".rotary_emb.inv_freq")) {
        continue; // recomputed from rope_theta, as llama.cpp's converter does
      }
      String gguf = LlamaGguf.ggufName(hf);
      if (gguf == null || !order.containsKey(hf)) {
        throw new BadInputException(
            "tensor "
                + hf
                + " has no place in llama.cpp's \"llama\" architecture; llmc"
                + " exports Llama-family checkpoints with the standard tensor names");
      }
      if (hf.equals(TensorNames.LM_HEAD) && f.tiedEmbeddings()) {
        continue;
      }
      long[] shape = weights.shape(hf);
      boolean vector = shape.length == 1;
      int rows = vector ? 1 : Math.toIntExact(shape[0]);
      int cols = Math.toIntExact(shape[shape.length - 1]);
      GgmlType chosen;
      String fallback = null;
      if (vector) {
        chosen = GgmlType.F32;
      } else if (!type.isQuantized()) {
        chosen = type;
      } else {
        boolean embedding = hf.equals(TensorNames.EMBED);
        boolean output = hf.equals(TensorNames.LM_HEAD) || (embedding && f.tiedEmbeddings());
        chosen = output ? GgmlType.Q8_0 : type;
        if (!embedding && !output && quantizable != null && !quantizable.test(hf)) {
          chosen = GgmlType.F16;
          fallback = "left out of quantization";
        } else if (cols % GgmlType.QK != 0) {
          fallback = "in_features " + cols + " is not a multiple of " + GgmlType.QK;
          chosen = GgmlType.F16;
        }
      }
      plan.add(
          new Tensor(
              hf,
              gguf,
              chosen,
              rows,
              cols,
              vector,
              vector ? null : LlamaGguf.rowOrder(hf, f),
              fallback));
    }
    plan.sort(Comparator.comparingInt(t -> order.get(t.hfName())));
    return plan;
  }

  public List<Tensor> tensors() {
    return tensors;
  }

  public Tensor tensor(String hfName) {
    Tensor t = byHfName.get(hfName);
    if (t == null) {
      throw new IllegalArgumentException(hfName + " is not in this file's plan");
    }
    return t;
  }

  /**
   * Writes a tensor from its float32 values ({@code [rows][cols]} in Hugging Face order),
   * llama.cpp's rounding.
   */
  public void writeFloats(String hfName, float[] values) {
    Tensor t = tensor(hfName);
    float[] stored =
        t.rowOrder() == null ? values : LlamaGguf.reorderRows(values, t.cols(), t.rowOrder());
    writer.writeFloats(t.ggufName(), stored); // encoded chunk by chunk, not copied
  }

  /**
   * Writes a quantizer's result stored without any further rounding: the tensor's type must be the
   * block type whose grid {@code q} is on (groups of 32 in order, float16 scales, zero point {@code
   * 2^(b-1)} for the _0 types, float mins for the _1 types).
   */
  public void writeQuantized(String hfName, QuantizedTensor q) {
    Tensor t = tensor(hfName);
    GgmlType type = t.type();
    boolean hasMin = type == GgmlType.Q4_1 || type == GgmlType.Q5_1;
    int bits =
        switch (type) {
          case Q4_0, Q4_1 -> 4;
          case Q5_0, Q5_1 -> 5;
          case Q8_0 -> 8;
          default ->
              throw new IllegalArgumentException(
                  t.ggufName()
                      + " is stored as "
                      + type.ggmlName()
                      + ", not as codes; write its floats");
        };
    if (q.rows() != t.rows()
        || q.cols() != t.cols()
        || q.bits() != bits
        || q.groupSize() != GgmlType.QK
        || !q.hasTrivialGroupIndex()
        || (q.mins() != null) != hasMin) {
      throw new IllegalArgumentException(
          t.ggufName()
              + ": a "
              + q.bits()
              + "-bit result with groups of "
              + q.groupSize()
              + (q.mins() != null ? " and mins" : "")
              + " is not on the "
              + type.ggmlName()
              + " grid");
    }
    int zero = hasMin ? 0 : 1 << (bits - 1);
    int offset =
        type == GgmlType.Q8_0 ? zero : 0; // Q8_0 stores q - 128 as int8; the others the codes
    QuantizedTensor stored = t.rowOrder() == null ? q : q.withRows(t.rowOrder());
    int groups = stored.groups();
    int rowsPerCall = Math.max(1, (1 << 20) / t.cols());
    for (int r0 = 0; r0 < t.rows(); r0 += rowsPerCall) {
      int n = Math.min(rowsPerCall, t.rows() - r0);
      int[] codes = new int[n * t.cols()];
      float[] scales = new float[n * groups];
      float[] mins = hasMin ? new float[n * groups] : null;
      for (int r = 0; r < n; r++) {
        int row = r0 + r;
        for (int k = 0; k < t.cols(); k++) {
          codes[r * t.cols() + k] = stored.code(row, k) - offset;
        }
        for (int g = 0; g < groups; g++) {
          if (stored.zero(g, row) != zero) {
            throw new IllegalArgumentException(
                t.ggufName()
                    + ": zero point "
                    + stored.zero(g, row)
                    + " in row "
                    + row
                    + " is not "
                    + type.ggmlName()
                    + "'s "
                    + zero);
          }
          scales[r * groups + g] = stored.scale(g, row);
          if (hasMin) {
            mins[r * groups + g] = stored.min(g, row);
          }
        }
      }
      writer.writeCodes(t.ggufName(), codes, scales, mins);
    }
  }

  /** Checks every tensor was written and renames the file into place. */
  public Path finish() {
    return writer.finish();
  }

  /** Without finish(): deletes the partial file. */
  @Override
  public void close() {
    writer.close();
  }
}
