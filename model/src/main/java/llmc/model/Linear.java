package llmc.model;

/**
 * The seven linear layers of a Llama-family decoder layer. Weights are {@code [out, in]}. Layers
 * that read the same activation share an {@link Input}: q, k and v read the normed residual, gate
 * and up read the normed residual after attention, so a layer has four distinct inputs.
 */
public enum Linear {
  Q("self_attn.q_proj", Input.ATTN_IN),
  K("self_attn.k_proj", Input.ATTN_IN),
  V("self_attn.v_proj", Input.ATTN_IN),
  O("self_attn.o_proj", Input.ATTN_OUT),
  GATE("mlp.gate_proj", Input.MLP_IN),
  UP("mlp.up_proj", Input.MLP_IN),
  DOWN("mlp.down_proj", Input.MLP_OUT);

  /** The activation a linear layer reads, in the order a layer produces them. */
  public enum Input {
    ATTN_IN,
    ATTN_OUT,
    MLP_IN,
    MLP_OUT;

    /** The linear layers that read this activation, in order. */
    public java.util.List<Linear> readers() {
      return java.util.Arrays.stream(Linear.values()).filter(l -> l.input == this).toList();
    }

    public int width(LlamaFamily f) {
      return switch (this) {
        case ATTN_IN, MLP_IN -> f.hidden();
        case ATTN_OUT -> f.qWidth();
        case MLP_OUT -> f.intermediate();
      };
    }
  }

  /** Path below {@code model.layers.i.}, as Hugging Face names it. */
  public final String path;

  public final Input input;

  Linear(String path, Input input) {
    this.path = path;
    this.input = input;
  }

  public int inFeatures(LlamaFamily f) {
    return input.width(f);
  }

  public int outFeatures(LlamaFamily f) {
    return switch (this) {
      case Q -> f.qWidth();
      case K, V -> f.kvWidth();
      case O, DOWN -> f.hidden();
      case GATE, UP -> f.intermediate();
    };
  }

  /** The module's name in layer {@code layer}, e.g. {@code model.layers.3.mlp.down_proj}. */
  public String moduleName(int layer) {
    return TensorNames.layer(layer) + path;
  }

  public String weightName(int layer) {
    return TensorNames.layer(layer) + path + ".weight";
  }

  public String biasName(int layer) {
    return TensorNames.layer(layer) + path + ".bias";
  }
}
