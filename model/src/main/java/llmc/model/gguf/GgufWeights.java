package llmc.model.gguf;

import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;
import llmc.formats.BadInputException;
import llmc.formats.gguf.GgmlBlocks;
import llmc.formats.gguf.GgmlType;
import llmc.formats.gguf.GgufFile;
import llmc.formats.gguf.GgufTensorInfo;
import llmc.model.Linear;
import llmc.model.LlamaFamily;
import llmc.model.TensorNames;
import llmc.model.Weights;
import llmc.model.kernels.WeightMatrix;

/**
 * The parameters of a GGUF file of llama.cpp's {@code "llama"} architecture as {@link Weights}: by
 * Hugging Face name, {@code [out, in]} row-major, dequantized to float32, with the q and k rows put
 * back in Hugging Face order (the inverse of {@link LlamaGguf#rowOrder}), so that {@link
 * llmc.model.LlamaRuntime} runs the file as it runs the folder it was exported from.
 *
 * <p>Opening checks every tensor: a name llmc does not map to Hugging Face (e.g. llama 3's {@code
 * rope_freqs}) or a shape the metadata does not imply is refused, naming the file and the tensor.
 * Tied models have no {@code output.weight}; {@link #contains} then says no to {@code
 * lm_head.weight} and the runtime reads the embedding. Closing unmaps the file.
 */
public final class GgufWeights implements Weights, AutoCloseable {
  private final GgufFile file;
  private final LlamaFamily family;

  /** Hugging Face name -> the GGUF tensor, in file order. */
  private final Map<String, GgufTensorInfo> byHfName = new LinkedHashMap<>();

  /**
   * Hugging Face name -> the GGUF row holding each Hugging Face row ({@code inverse(rowOrder)}), q
   * and k only.
   */
  private final Map<String, int[]> ggufRowOf = new LinkedHashMap<>();

  private GgufWeights(GgufFile file) {
    this.file = file;
    this.family = family(file);
    for (GgufTensorInfo t : file.tensors()) {
      String hf = LlamaGguf.hfName(t.name());
      if (hf == null) {
        throw new BadInputException(
            file.path()
                + ": tensor '"
                + t.name()
                + "' is not one llmc reads in llama.cpp's"
                + " \"llama\" architecture (token_embd, output_norm, output, blk.N.attn_norm/attn_q/attn_k/attn_v/"
                + "attn_output/ffn_norm/ffn_gate/ffn_up/ffn_down); llmc runs GGUF files it can map to Hugging Face"
                + " Llama names, such as the ones it exports");
      }
      long[] expected = expectedShape(hf, family);
      if (expected == null) {
        throw new BadInputException(
            file.path()
                + ": tensor '"
                + t.name()
                + "' belongs to no layer of the "
                + family.layers()
                + " that llama.block_count says; the file is inconsistent");
      }
      if (!Arrays.equals(t.shape(), expected)) {
        throw new BadInputException(
            file.path()
                + ": tensor '"
                + t.name()
                + "' has shape "
                + Arrays.toString(t.shape())
                + " but the llama.* metadata implies "
                + Arrays.toString(expected)
                + " ([out, in]); the file is"
                + " inconsistent, convert the model again");
      }
      byHfName.put(hf, t);
      int[] order = LlamaGguf.rowOrder(hf, family);
      if (order != null) {
        ggufRowOf.put(hf, LlamaGguf.inverse(order));
      }
    }
    for (String hf : LlamaGguf.writeOrder(family).keySet()) {
      if (!byHfName.containsKey(hf) && !hf.equals(TensorNames.LM_HEAD)) {
        throw new BadInputException(
            file.path()
                + ": no tensor '"
                + LlamaGguf.ggufName(hf)
                + "' ("
                + hf
                + "), which"
                + " a llama model of llama.block_count "
                + family.layers()
                + " has; the file is incomplete, convert the"
                + " model again");
      }
    }
  }

  /** Opens and validates the file; closing the weights closes it. */
  public static GgufWeights open(Path path) {
    GgufFile file = GgufFile.open(path);
    try {
      return new GgufWeights(file);
    } catch (RuntimeException e) {
      file.close();
      throw e;
    }
  }

  /**
   * The hyperparameters of a llama GGUF file; tied embeddings when it has no {@code output.weight}.
   */
  public static LlamaFamily family(GgufFile file) {
    return LlamaGguf.family(
        file.metadata(), file.path(), !file.contains(LlamaGguf.ggufName(TensorNames.LM_HEAD)));
  }

  public LlamaFamily family() {
    return family;
  }

  public GgufFile file() {
    return file;
  }

  /** The Hugging Face names of the file's tensors, in file order. */
  public Set<String> names() {
    return Collections.unmodifiableSet(byHfName.keySet());
  }

  /** The GGUF tensor behind a Hugging Face name. */
  public GgufTensorInfo info(String hfName) {
    GgufTensorInfo t = byHfName.get(hfName);
    if (t == null) {
      String gguf = LlamaGguf.ggufName(hfName);
      throw new BadInputException(
          file.path()
              + ": no tensor '"
              + hfName
              + "'"
              + (gguf == null ? " (llama.cpp has no such tensor)" : " (GGUF '" + gguf + "')"));
    }
    return t;
  }

  @Override
  public boolean contains(String name) {
    return byHfName.containsKey(name);
  }

  @Override
  public long[] shape(String name) {
    return info(name).shape();
  }

  @Override
  public float[] floats(String name) {
    GgufTensorInfo t = info(name);
    float[] stored = file.floats(t.name());
    int[] rowOf = ggufRowOf.get(name);
    return rowOf == null ? stored : LlamaGguf.reorderRows(stored, (int) t.shape()[1], rowOf);
  }

  /**
   * A matrix stored in blocks or F16 stays so, mapped, decoded as the product packs it ({@link
   * WeightMatrix.Blocks}): running a Q4_0 file holds no float32 copy of its matrices. F32 is read
   * as float32 rows.
   */
  @Override
  public WeightMatrix matrix(String name) {
    GgufTensorInfo t = info(name);
    long[] shape = t.shape();
    if (shape.length != 2 || t.type() == GgmlType.F32) {
      return Weights.super.matrix(name);
    }
    return new WeightMatrix.Blocks(
        t.type(),
        file.bytes(t.name()),
        Math.toIntExact(shape[0]),
        Math.toIntExact(shape[1]),
        ggufRowOf.get(name));
  }

  /**
   * Decodes only the blocks of the rows asked for (a row of a quantized tensor is cols / 32 whole
   * blocks).
   */
  @Override
  public float[] rows(String name, long fromRow, int rows) {
    GgufTensorInfo t = info(name);
    long[] shape = t.shape();
    if (shape.length != 2 || fromRow < 0 || rows < 0 || fromRow + rows > shape[0]) {
      throw new IllegalArgumentException(
          name
              + ": rows ["
              + fromRow
              + ", "
              + (fromRow + rows)
              + ") of a tensor of"
              + " shape "
              + Arrays.toString(shape));
    }
    int cols = (int) shape[1];
    long rowBytes = t.type().byteSize(cols);
    MemorySegment bytes = file.bytes(t.name());
    float[] out = new float[Math.multiplyExact(rows, cols)];
    int[] rowOf = ggufRowOf.get(name);
    if (rowOf == null) {
      GgmlBlocks.decode(
          t.type(), bytes.asSlice(fromRow * rowBytes, rows * rowBytes), out, 0, out.length);
      return out;
    }
    for (int r = 0; r < rows; r++) {
      long row = rowOf[Math.toIntExact(fromRow + r)];
      GgmlBlocks.decode(t.type(), bytes.asSlice(row * rowBytes, rowBytes), out, r * cols, cols);
    }
    return out;
  }

  /**
   * The Hugging Face shape a tensor must have, from the metadata; null for a layer past
   * block_count.
   */
  static long[] expectedShape(String hfName, LlamaFamily f) {
    switch (hfName) {
      case TensorNames.EMBED, TensorNames.LM_HEAD -> {
        return new long[] {f.vocab(), f.hidden()};
      }
      case TensorNames.FINAL_NORM -> {
        return new long[] {f.hidden()};
      }
      default -> {
        // model.layers.<i>.<rest>, as LlamaGguf.hfName builds it
        int dot = hfName.indexOf('.', "model.layers.".length());
        int layer;
        try {
          layer = Integer.parseInt(hfName.substring("model.layers.".length(), dot));
        } catch (NumberFormatException e) {
          return null;
        }
        if (layer >= f.layers()) {
          return null;
        }
        if (hfName.endsWith("layernorm.weight")) {
          return new long[] {f.hidden()};
        }
        for (Linear linear : Linear.values()) {
          if (hfName.equals(linear.weightName(layer))) {
            return new long[] {linear.outFeatures(f), linear.inFeatures(f)};
          }
        }
        throw new IllegalStateException("no shape for " + hfName);
      }
    }
  }

  @Override
  public void close() {
    file.close();
  }

  @Override
  public String toString() {
    return file.toString();
  }
}
