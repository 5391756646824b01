package llmc.model.gguf;

import java.nio.file.Path;
import java.util.Map;
import java.util.TreeMap;
import llmc.formats.BadInputException;
import llmc.formats.gguf.GgmlType;
import llmc.formats.gguf.GgufMetadata;
import llmc.formats.gguf.GgufWriter;
import llmc.model.Linear;
import llmc.model.LlamaFamily;
import llmc.model.Rope;
import llmc.model.TensorNames;
import llmc.model.Weights;

/**
 * llama.cpp's {@code "llama"} architecture as GGUF stores it (FORMATS.md, GGUF): the {@code
 * llama.*} metadata, the tensor names, and the row order of {@code attn_q} / {@code attn_k}.
 *
 * <p>Hugging Face checkpoints keep each head's q and k rows in the {@code rotate_half} order: the
 * first half of a head's rows rotates with the second half. llama.cpp rotates adjacent pairs, so
 * its converter interleaves the two halves back: GGUF row {@code h d + 2 j + i} is Hugging Face row
 * {@code h d + i d/2 + j} ({@code i} in 0..1, {@code j} in 0..d/2). Every other tensor keeps its
 * rows.
 */
public final class LlamaGguf {
  public static final String ARCHITECTURE = "llama";

  /** Hugging Face name below {@code model.layers.i.} -> GGUF name below {@code blk.i.}. */
  private static final Map<String, String> LAYER_NAMES =
      Map.of(
          "input_layernorm.weight", "attn_norm.weight",
          "self_attn.q_proj.weight", "attn_q.weight",
          "self_attn.k_proj.weight", "attn_k.weight",
          "self_attn.v_proj.weight", "attn_v.weight",
          "self_attn.o_proj.weight", "attn_output.weight",
          "post_attention_layernorm.weight", "ffn_norm.weight",
          "mlp.gate_proj.weight", "ffn_gate.weight",
          "mlp.up_proj.weight", "ffn_up.weight",
          "mlp.down_proj.weight", "ffn_down.weight");

  private static final Map<String, String> GLOBAL_NAMES =
      Map.of(
          TensorNames.EMBED, "token_embd.weight",
          TensorNames.FINAL_NORM, "output_norm.weight",
          TensorNames.LM_HEAD, "output.weight");

  private LlamaGguf() {}

  /**
   * Refuses (naming the model and what to do) a model that llama.cpp's "llama" architecture would
   * not run as llmc does: another variant, a sliding window, biases, or a rope scaling GGUF keys
   * cannot express here.
   */
  public static void checkExportable(LlamaFamily f, Weights weights, Path model) {
    if (f.variant() != LlamaFamily.Variant.LLAMA && f.variant() != LlamaFamily.Variant.MISTRAL) {
      throw new BadInputException(
          model
              + ": "
              + f.variant().hfClass
              + " is not exported to GGUF yet; llmc writes"
              + " llama.cpp's \"llama\" architecture (LlamaForCausalLM, MistralForCausalLM without a sliding window)");
    }
    if (f.slidingWindow() > 0) {
      throw new BadInputException(
          model
              + ": sliding_window "
              + f.slidingWindow()
              + " cannot be written as llama.cpp's"
              + " \"llama\" architecture, which attends to the whole context; set sliding_window to null if the model"
              + " never uses it");
    }
    String scaling = f.rope().scalingType();
    if (!scaling.equals("none") && !scaling.equals("linear")) {
      throw new BadInputException(
          model
              + ": rope_scaling '"
              + scaling
              + "' is not exported to GGUF yet (llmc"
              + " writes none and 'linear')");
    }
    for (Linear linear : Linear.values()) {
      if (weights.contains(linear.biasName(0))) {
        throw new BadInputException(
            model
                + ": "
                + linear.biasName(0)
                + ": llama.cpp's \"llama\" architecture has"
                + " no linear biases");
      }
    }
  }

  /** The GGUF name of a Hugging Face tensor, or null when llama.cpp has no such tensor. */
  public static String ggufName(String hfName) {
    String global = GLOBAL_NAMES.get(hfName);
    if (global != null) {
      return global;
    }
    if (!hfName.startsWith("model.layers.")) {
      return null;
    }
    int dot = hfName.indexOf('.', "model.layers.".length());
    if (dot < 0) {
      return null;
    }
    String layer = hfName.substring("model.layers.".length(), dot);
    String rest = LAYER_NAMES.get(hfName.substring(dot + 1));
    return rest == null || !layer.chars().allMatch(Character::isDigit)
        ? null
        : "blk." + layer + "." + rest;
  }

  /** The Hugging Face name of a GGUF tensor, or null when llmc does not know it. */
  public static String hfName(String ggufName) {
    for (Map.Entry<String, String> e : GLOBAL_NAMES.entrySet()) {
      if (e.getValue().equals(ggufName)) {
        return e.getKey();
      }
    }
    if (!ggufName.startsWith("blk.")) {
      return null;
    }
    int dot = ggufName.indexOf('.', "blk.".length());
    if (dot < 0) {
      return null;
    }
    String layer = ggufName.substring("blk.".length(), dot);
    String rest = ggufName.substring(dot + 1);
    for (Map.Entry<String, String> e : LAYER_NAMES.entrySet()) {
      if (e.getValue().equals(rest) && layer.chars().allMatch(Character::isDigit)) {
        return "model.layers." + layer + "." + e.getKey();
      }
    }
    return null;
  }

  /** GGUF row {@code r} of a q or k projection is Hugging Face row {@code order[r]}. */
  public static int[] interleavedRowOrder(int heads, int headDim) {
    int half = headDim / 2;
    int[] order = new int[heads * headDim];
    for (int h = 0; h < heads; h++) {
      for (int j = 0; j < half; j++) {
        for (int i = 0; i < 2; i++) {
          order[h * headDim + 2 * j + i] = h * headDim + i * half + j;
        }
      }
    }
    return order;
  }

  /**
   * The row order GGUF stores a Hugging Face tensor in ({@code order[ggufRow] = hfRow}), or null
   * when unchanged.
   */
  public static int[] rowOrder(String hfName, LlamaFamily f) {
    if (hfName.endsWith(".self_attn.q_proj.weight")) {
      return interleavedRowOrder(f.heads(), f.headDim());
    }
    if (hfName.endsWith(".self_attn.k_proj.weight")) {
      return interleavedRowOrder(f.kvHeads(), f.headDim());
    }
    return null;
  }

  /** {@code out[r] = w[order[r]]} row by row, rows of {@code cols} values. */
  public static float[] reorderRows(float[] w, int cols, int[] order) {
    float[] out = new float[w.length];
    for (int r = 0; r < order.length; r++) {
      System.arraycopy(w, order[r] * cols, out, r * cols, cols);
    }
    return out;
  }

  /** The inverse permutation. */
  public static int[] inverse(int[] order) {
    int[] inv = new int[order.length];
    for (int i = 0; i < order.length; i++) {
      inv[order[i]] = i;
    }
    return inv;
  }

  /** llama.cpp's {@code llama_ftype} of a file whose linear layers are mostly {@code type}. */
  public static int fileType(GgmlType type) {
    return switch (type) {
      case F32 -> 0; // LLAMA_FTYPE_ALL_F32
      case F16 -> 1; // LLAMA_FTYPE_MOSTLY_F16
      case Q4_0 -> 2;
      case Q4_1 -> 3;
      case Q8_0 -> 7;
      case Q5_0 -> 8;
      case Q5_1 -> 9;
    };
  }

  /** general.* and llama.* keys of the architecture, as llama.cpp's converter writes them. */
  public static void putMetadata(GgufWriter w, LlamaFamily f, String name, GgmlType fileType) {
    w.putString("general.architecture", ARCHITECTURE);
    w.putString("general.name", name);
    w.putU32("general.file_type", fileType(fileType));
    if (fileType.isQuantized()) {
      w.putU32("general.quantization_version", 2);
    }
    w.putU32("llama.vocab_size", f.vocab());
    w.putU32("llama.context_length", f.contextLength());
    w.putU32("llama.embedding_length", f.hidden());
    w.putU32("llama.block_count", f.layers());
    w.putU32("llama.feed_forward_length", f.intermediate());
    w.putU32("llama.rope.dimension_count", f.headDim());
    w.putU32("llama.attention.head_count", f.heads());
    w.putU32("llama.attention.head_count_kv", f.kvHeads());
    if (f.headDim() * f.heads() != f.hidden()) {
      w.putU32("llama.attention.key_length", f.headDim());
      w.putU32("llama.attention.value_length", f.headDim());
    }
    w.putF32("llama.attention.layer_norm_rms_epsilon", (float) f.rmsNormEps());
    w.putF32("llama.rope.freq_base", (float) f.rope().theta());
    if (f.rope().scalingType().equals("linear")) {
      w.putString("llama.rope.scaling.type", "linear");
      w.putF32("llama.rope.scaling.factor", (float) f.rope().factor());
    }
  }

  /**
   * The hyperparameters of a llama GGUF file; {@code tied} when it has no {@code output.weight}.
   */
  public static LlamaFamily family(GgufMetadata m, Path file, boolean tied) {
    String arch = m.contains("general.architecture") ? m.string("general.architecture") : "(none)";
    if (!arch.equals(ARCHITECTURE)) {
      throw new BadInputException(
          file + ": general.architecture is '" + arch + "'; llmc reads llama GGUF files");
    }
    int heads = require(m, file, "llama.attention.head_count", 1, 1 << 12);
    int hidden = require(m, file, "llama.embedding_length", 1, 1 << 18);
    int kvHeads =
        m.contains("llama.attention.head_count_kv")
            ? require(m, file, "llama.attention.head_count_kv", 1, heads)
            : heads;
    if (heads % kvHeads != 0) {
      throw new BadInputException(
          file
              + ": llama.attention.head_count "
              + heads
              + " is not a multiple of llama.attention.head_count_kv "
              + kvHeads);
    }
    int headDim =
        m.contains("llama.attention.key_length")
            ? require(m, file, "llama.attention.key_length", 2, 1 << 12)
            : hidden / heads;
    if (headDim < 2 || headDim % 2 != 0) {
      throw new BadInputException(
          file + ": the head size is " + headDim + "; RoPE needs an even size of at least 2");
    }
    int vocab;
    if (m.contains("llama.vocab_size")) {
      vocab = require(m, file, "llama.vocab_size", 1, 1 << 24);
    } else if (m.contains("tokenizer.ggml.tokens")) {
      vocab = m.strings("tokenizer.ggml.tokens").size();
      if (vocab < 1 || vocab > 1 << 24) {
        throw new BadInputException(
            file
                + ": no llama.vocab_size, and tokenizer.ggml.tokens holds "
                + vocab
                + " tokens; expected 1 to "
                + (1 << 24)
                + " (the file is damaged or not a llama model)");
      }
    } else {
      throw new BadInputException(
          file
              + ": neither llama.vocab_size nor tokenizer.ggml.tokens in the metadata; not a"
              + " complete llama GGUF file");
    }
    double theta = m.contains("llama.rope.freq_base") ? m.f32("llama.rope.freq_base") : 10000.0;
    positive(file, "llama.rope.freq_base", theta);
    Rope.Spec rope = new Rope.Spec(theta, "none", 1, 0, 0, 0);
    if (m.contains("llama.rope.scaling.type")) {
      String type = m.string("llama.rope.scaling.type");
      if (type.equals("linear")) {
        double factor = m.f32("llama.rope.scaling.factor");
        positive(file, "llama.rope.scaling.factor", factor);
        rope = new Rope.Spec(theta, "linear", factor, 0, 0, 0);
      } else if (!type.equals("none")) {
        throw new BadInputException(
            file + ": llama.rope.scaling.type '" + type + "' is not supported by llmc");
      }
    }
    double eps = m.f32("llama.attention.layer_norm_rms_epsilon");
    if (!(eps > 0 && eps < 1)) {
      throw new BadInputException(
          file
              + ": llama.attention.layer_norm_rms_epsilon is "
              + eps
              + "; expected a small positive number");
    }
    return new LlamaFamily(
        LlamaFamily.Variant.LLAMA,
        hidden,
        require(m, file, "llama.block_count", 1, 1 << 10),
        heads,
        kvHeads,
        headDim,
        require(m, file, "llama.feed_forward_length", 1, 1 << 20),
        vocab,
        require(m, file, "llama.context_length", 1, 1 << 24),
        eps,
        rope,
        tied,
        0);
  }

  /** A count from the metadata within {@code [least, most]}: a hostile value stops here. */
  private static int require(GgufMetadata m, Path file, String key, int least, int most) {
    if (!m.contains(key)) {
      throw new BadInputException(
          file + ": no " + key + " in the metadata; not a complete llama GGUF file");
    }
    long value = m.integer(key);
    if (value < least || value > most) {
      throw new BadInputException(
          file
              + ": "
              + key
              + " is "
              + value
              + "; expected "
              + least
              + " to "
              + most
              + " (the file is damaged or not a llama model)");
    }
    return (int) value;
  }

  private static void positive(Path file, String key, double value) {
    if (!(value > 0 && Double.isFinite(value))) {
      throw new BadInputException(
          file + ": " + key + " is " + value + "; expected a positive finite number");
    }
  }

  /**
   * Hugging Face tensor names in the order llmc writes them: globals first, then layer by layer.
   */
  public static Map<String, Integer> writeOrder(LlamaFamily f) {
    Map<String, Integer> order = new TreeMap<>();
    int next = 0;
    order.put(TensorNames.EMBED, next++);
    order.put(TensorNames.FINAL_NORM, next++);
    order.put(TensorNames.LM_HEAD, next++);
    String[] inLayer = {
      "input_layernorm.weight",
      "self_attn.q_proj.weight",
      "self_attn.k_proj.weight",
      "self_attn.v_proj.weight",
      "self_attn.o_proj.weight",
      "post_attention_layernorm.weight",
      "mlp.gate_proj.weight",
      "mlp.up_proj.weight",
      "mlp.down_proj.weight"
    };
    for (int i = 0; i < f.layers(); i++) {
      for (String suffix : inLayer) {
        order.put(TensorNames.layer(i) + suffix, next++);
      }
    }
    return order;
  }
}
