package llmc.formats.quant;

/**
 * GPTQ's two zero-point conventions, named by the {@code "checkpoint_format"} value of their
 * config.
 */
public enum CheckpointFormat {
  /** {@code qzeros} holds {@code z - 1}; readers add 1. What most readers expect. */
  V1("gptq", -1),
  /** {@code qzeros} holds {@code z} itself (GPTQModel's internal format). */
  V2("gptq_v2", 0);

  private final String configValue;
  private final int storedZeroOffset;

  CheckpointFormat(String configValue, int storedZeroOffset) {
    this.configValue = configValue;
    this.storedZeroOffset = storedZeroOffset;
  }

  /** The {@code "checkpoint_format"} value. */
  public String configValue() {
    return configValue;
  }

  /** Stored zero = z + this offset (before masking to the bit width). */
  int storedZeroOffset() {
    return storedZeroOffset;
  }

  /** The format whose config value is {@code value}, or null. */
  public static CheckpointFormat fromConfigValue(String value) {
    for (CheckpointFormat format : values()) {
      if (format.configValue.equals(value)) {
        return format;
      }
    }
    return null;
  }
}
