package llmc.model;

import java.util.List;
import llmc.formats.BadInputException;
import llmc.formats.ModelConfig;

/**
 * The hyperparameters of a Llama-family decoder (Llama 2/3, Mistral, SmolLM, Qwen2, Qwen3), read
 * from {@code config.json}. Everything the runtimes need to know about the architecture is here.
 *
 * @param variant which member of the family (decides q/k norms and default biases)
 * @param hidden d_model
 * @param layers decoder layers
 * @param heads query heads
 * @param kvHeads key/value heads (GQA: heads % kvHeads == 0)
 * @param headDim per-head width (not always hidden / heads: Qwen3)
 * @param intermediate MLP width
 * @param vocab vocabulary size
 * @param contextLength max_position_embeddings
 * @param rmsNormEps RMSNorm epsilon
 * @param slidingWindow Mistral's attention window, 0 = none
 */
public record LlamaFamily(
    Variant variant,
    int hidden,
    int layers,
    int heads,
    int kvHeads,
    int headDim,
    int intermediate,
    int vocab,
    int contextLength,
    double rmsNormEps,
    Rope.Spec rope,
    boolean tiedEmbeddings,
    int slidingWindow) {

  /** The architectures the runtime accepts, by their Hugging Face class name. */
  public enum Variant {
    LLAMA("LlamaForCausalLM"),
    MISTRAL("MistralForCausalLM"),
    QWEN2("Qwen2ForCausalLM"),
    QWEN3("Qwen3ForCausalLM");

    public final String hfClass;

    Variant(String hfClass) {
      this.hfClass = hfClass;
    }

    /** Qwen3 normalises q and k per head (RMSNorm over head_dim) before RoPE. */
    public boolean hasQkNorm() {
      return this == QWEN3;
    }
  }

  public static List<String> supportedArchitectures() {
    return java.util.Arrays.stream(Variant.values()).map(v -> v.hfClass).toList();
  }

  /**
   * The family of a model folder, its config checked against its checkpoint: the decoder layers the
   * tensors name are exactly {@code 0 .. num_hidden_layers - 1}.
   */
  public static LlamaFamily of(llmc.formats.ModelFolder folder) {
    LlamaFamily family = from(folder.config());
    java.util.BitSet seen = new java.util.BitSet();
    java.util.regex.Pattern layer =
        java.util.regex.Pattern.compile("model\\.layers\\.(\\d{1,9})\\..*");
    for (String name : folder.checkpoint().names()) {
      java.util.regex.Matcher m = layer.matcher(name);
      if (m.matches()) {
        int index = Integer.parseInt(m.group(1));
        if (index >= family.layers()) {
          throw new BadInputException(
              folder.dir().resolve(llmc.formats.ModelFolder.CONFIG)
                  + ": num_hidden_layers is "
                  + family.layers()
                  + " but the checkpoint holds "
                  + name
                  + "; the config and the weights do not belong together");
        }
        seen.set(index);
      }
    }
    if (!family.tiedEmbeddings()
        && !folder.checkpoint().contains(TensorNames.LM_HEAD)
        && !folder.checkpoint().contains(TensorNames.LM_HEAD.replace(".weight", ".qweight"))) {
      throw new BadInputException(
          folder.dir().resolve(llmc.formats.ModelFolder.CONFIG)
              + ": tie_word_embeddings is false but the checkpoint has no "
              + TensorNames.LM_HEAD
              + "; set it to true if the output layer is the embedding, or add the tensor");
    }
    int missing = seen.nextClearBit(0);
    if (missing < family.layers()) {
      throw new BadInputException(
          folder.dir().resolve(llmc.formats.ModelFolder.CONFIG)
              + ": num_hidden_layers is "
              + family.layers()
              + " but the checkpoint holds no tensor of layer "
              + missing
              + " (model.layers."
              + missing
              + ".*); the config and the weights do not belong together");
    }
    return family;
  }

  public static LlamaFamily from(ModelConfig config) {
    Variant variant = null;
    for (Variant v : Variant.values()) {
      if (v.hfClass.equals(config.architecture())) {
        variant = v;
      }
    }
    if (variant == null) {
      throw new BadInputException(
          "config.json: architectures "
              + config.architectures()
              + " is not supported; llmc runs "
              + supportedArchitectures());
    }
    if (!"silu".equals(config.hiddenAct())) {
      throw new BadInputException(
          "config.json: hidden_act '"
              + config.hiddenAct()
              + "' is not supported; llmc runs the Llama family with hidden_act 'silu'");
    }
    int heads = config.numAttentionHeads();
    int kvHeads = config.numKeyValueHeads();
    if (kvHeads <= 0 || heads % kvHeads != 0) {
      throw new BadInputException(
          "config.json: num_attention_heads "
              + heads
              + " is not a multiple of num_key_value_heads "
              + kvHeads);
    }
    int headDim = config.headDim();
    if (headDim % 2 != 0) {
      throw new BadInputException("config.json: head_dim " + headDim + " must be even for RoPE");
    }
    Integer window = config.slidingWindow();
    boolean useWindow = window != null && window > 0 && variant == Variant.MISTRAL;
    return new LlamaFamily(
        variant,
        config.hiddenSize(),
        config.numHiddenLayers(),
        heads,
        kvHeads,
        headDim,
        config.intermediateSize(),
        config.vocabSize(),
        config.maxPositionEmbeddings(),
        config.rmsNormEps(),
        Rope.Spec.from(config, headDim),
        config.tieWordEmbeddings(),
        useWindow ? window : 0);
  }

  /** Query heads that share one key/value head. */
  public int groupSize() {
    return heads / kvHeads;
  }

  public int qWidth() {
    return heads * headDim;
  }

  public int kvWidth() {
    return kvHeads * headDim;
  }

  /** The default P1 window: min(context, 2048). */
  public int defaultSeqLen() {
    return Math.min(contextLength, 2048);
  }
}
