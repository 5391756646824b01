package llmc.model.kernels;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;

/**
 * Moves float32 values between DJL arrays and Java arrays with one copy and no garbage: reads go
 * through the tensor's own memory (made contiguous first if it is a strided view), writes go into a
 * fresh tensor's memory.
 */
public final class Tensors {
  private Tensors() {}

  /**
   * Copies {@code x}'s values (row-major) into {@code into}, which must hold {@code x.size()}
   * floats.
   */
  public static void read(NDArray x, float[] into) {
    if (x.getDataType() != DataType.FLOAT32) {
      throw new IllegalArgumentException("expected a float32 array, got " + x.getDataType());
    }
    int count = Math.toIntExact(x.size());
    x.toByteBuffer(true).asFloatBuffer().get(into, 0, count);
  }

  /**
   * A new float32 array of {@code shape} in {@code manager} holding {@code values[0 ..
   * shape.size())}.
   */
  public static NDArray create(NDManager manager, float[] values, Shape shape) {
    NDArray out = manager.create(shape, DataType.FLOAT32);
    out.toByteBuffer(true).asFloatBuffer().put(values, 0, Math.toIntExact(shape.size()));
    return out;
  }

  /**
   * A float32 scalar (0-d) in {@code manager}, in memory PyTorch owns. Use it instead of DJL's
   * {@code mul(Number)}, {@code div(Number)}, {@code maximum(Number)} on anything autograd records:
   * those make the scalar from a Java direct buffer (no copy) and close it at once, while the
   * backward still reads it; after a GC frees the buffer, the gradient reads freed memory.
   */
  public static NDArray scalar(NDManager manager, float value) {
    return create(manager, new float[] {value}, new Shape());
  }
}
