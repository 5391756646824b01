package llmc.formats.gguf;

import java.util.Arrays;

/**
 * One tensor of a GGUF file: its name, type, row-major {@code shape} (outermost first, a weight is
 * {@code [out, in]}) and {@code offset}, the start of its bytes relative to the data block.
 */
public record GgufTensorInfo(String name, GgmlType type, long[] shape, long offset) {

  public GgufTensorInfo {
    shape = shape.clone();
  }

  @Override
  public long[] shape() {
    return shape.clone();
  }

  /** The dims as GGUF stores them: {@code ne[0]} innermost, i.e. the shape reversed. */
  public long[] ne() {
    long[] ne = new long[shape.length];
    for (int i = 0; i < shape.length; i++) {
      ne[i] = shape[shape.length - 1 - i];
    }
    return ne;
  }

  /** Product of the shape. */
  public long numel() {
    long n = 1;
    for (long d : shape) {
      n *= d;
    }
    return n;
  }

  public long byteSize() {
    return type.byteSize(numel());
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof GgufTensorInfo t
        && name.equals(t.name)
        && type == t.type
        && Arrays.equals(shape, t.shape)
        && offset == t.offset;
  }

  @Override
  public int hashCode() {
    return (name.hashCode() * 31 + type.hashCode()) * 31
        + Arrays.hashCode(shape)
        + Long.hashCode(offset);
  }

  @Override
  public String toString() {
    return name + " " + type.ggmlName() + " " + Arrays.toString(shape) + " @" + offset;
  }
}
