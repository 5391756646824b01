package llmc.formats;

import java.util.Arrays;

/**
 * One tensor of a safetensors file: row-major {@code shape}, bytes {@code [begin, end)} of the data
 * block (offsets relative to the end of the header).
 */
public record TensorInfo(String name, DType dtype, long[] shape, long begin, long end) {

  public TensorInfo {
    shape = shape.clone();
  }

  @Override
  public long[] shape() {
    return shape.clone();
  }

  public int rank() {
    return shape.length;
  }

  public long dim(int axis) {
    return shape[axis];
  }

  /** Product of the shape; 1 for a scalar. */
  public long numel() {
    long n = 1;
    for (long d : shape) {
      n *= d;
    }
    return n;
  }

  public long byteSize() {
    return end - begin;
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof TensorInfo t
        && name.equals(t.name)
        && dtype == t.dtype
        && Arrays.equals(shape, t.shape)
        && begin == t.begin
        && end == t.end;
  }

  @Override
  public int hashCode() {
    return (name.hashCode() * 31 + dtype.hashCode()) * 31
        + Arrays.hashCode(shape)
        + Long.hashCode(begin);
  }

  @Override
  public String toString() {
    return name + " " + dtype + " " + Arrays.toString(shape) + " [" + begin + ", " + end + ")";
  }
}
