package llmc.model;

/** Hugging Face tensor names of the Llama family. */
public final class TensorNames {
  public static final String EMBED = "model.embed_tokens.weight";
  public static final String FINAL_NORM = "model.norm.weight";
  public static final String LM_HEAD = "lm_head.weight";

  private TensorNames() {}

  /** The prefix of every decoder layer's tensors. */
  public static final String LAYERS = "model.layers.";

  public static String layer(int i) {
    return "model.layers." + i + ".";
  }

  public static String inputNorm(int i) {
    return layer(i) + "input_layernorm.weight";
  }

  public static String postAttentionNorm(int i) {
    return layer(i) + "post_attention_layernorm.weight";
  }

  public static String qNorm(int i) {
    return layer(i) + "self_attn.q_norm.weight";
  }

  public static String kNorm(int i) {
    return layer(i) + "self_attn.k_norm.weight";
  }
}
