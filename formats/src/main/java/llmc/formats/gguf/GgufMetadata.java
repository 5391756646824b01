package llmc.formats.gguf;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import llmc.formats.BadInputException;

/**
 * The metadata key/value pairs of one GGUF file, in file order, with typed accessors. A missing key
 * or a value of another type is a BadInputException naming the file and the key.
 */
public final class GgufMetadata {

  /**
   * One value. Scalars: integers of every width as Long (unsigned ones zero-extended, u64 as its
   * raw 64 bits), Float, Double, Boolean, String. Arrays ({@code type} ARRAY): long[] for integer
   * elements, float[], double[], boolean[] or List of String.
   */
  record Value(GgufValueType type, GgufValueType elementType, Object value) {}

  private final String file;
  private final Map<String, Value> values;

  GgufMetadata(String file, LinkedHashMap<String, Value> values) {
    this.file = file;
    this.values = Collections.unmodifiableMap(values);
  }

  /** In file order. */
  public Set<String> keys() {
    return values.keySet();
  }

  public boolean contains(String key) {
    return values.containsKey(key);
  }

  /** The value's type; ARRAY for arrays. */
  public GgufValueType type(String key) {
    return get(key).type();
  }

  /** The element type of an array. */
  public GgufValueType elementType(String key) {
    Value v = get(key);
    if (v.type() != GgufValueType.ARRAY) {
      throw wrongType(key, v, "an array");
    }
    return v.elementType();
  }

  /**
   * The value as read: Long (any integer type), Float, Double, Boolean, String, or for arrays a
   * copy as long[], float[], double[], boolean[] or an unmodifiable List of String.
   */
  public Object value(String key) {
    Object value = get(key).value();
    return switch (value) {
      case long[] a -> a.clone();
      case float[] a -> a.clone();
      case double[] a -> a.clone();
      case boolean[] a -> a.clone();
      default -> value;
    };
  }

  public String string(String key) {
    return (String) scalar(key, GgufValueType.STRING);
  }

  /** Any integer type (u8 to i64) as a long; a u64 of 2^63 or more is refused. */
  public long integer(String key) {
    Value v = get(key);
    if (!v.type().isInteger()) {
      throw wrongType(key, v, "an integer");
    }
    long value = (Long) v.value();
    if (v.type() == GgufValueType.U64 && value < 0) {
      throw new BadInputException(
          file
              + ": metadata key '"
              + key
              + "' holds u64 "
              + Long.toUnsignedString(value)
              + ", more than llmc can use (at most "
              + Long.MAX_VALUE
              + ")");
    }
    return value;
  }

  public float f32(String key) {
    return (Float) scalar(key, GgufValueType.F32);
  }

  public boolean bool(String key) {
    return (Boolean) scalar(key, GgufValueType.BOOL);
  }

  /** An array of strings (tokenizer tokens, merges). */
  @SuppressWarnings("unchecked")
  public List<String> strings(String key) {
    return (List<String>) array(key, GgufValueType.STRING);
  }

  /** An array of f32 (tokenizer scores). */
  public float[] floats(String key) {
    return ((float[]) array(key, GgufValueType.F32)).clone();
  }

  /** An array of any integer type (token types) whose values all fit an int. */
  public int[] ints(String key) {
    Value v = get(key);
    if (v.type() != GgufValueType.ARRAY || !v.elementType().isInteger()) {
      throw wrongType(key, v, "an array of integers");
    }
    long[] longs = (long[]) v.value();
    int[] ints = new int[longs.length];
    for (int i = 0; i < longs.length; i++) {
      boolean unsigned64 = v.elementType() == GgufValueType.U64 && longs[i] < 0;
      if (unsigned64 || longs[i] != (int) longs[i]) {
        throw new BadInputException(
            file
                + ": metadata key '"
                + key
                + "' element "
                + i
                + " ("
                + (unsigned64 ? Long.toUnsignedString(longs[i]) : longs[i])
                + ") does not fit an int");
      }
      ints[i] = (int) longs[i];
    }
    return ints;
  }

  private Object scalar(String key, GgufValueType type) {
    Value v = get(key);
    if (v.type() != type) {
      throw wrongType(key, v, type.label());
    }
    return v.value();
  }

  private Object array(String key, GgufValueType elementType) {
    Value v = get(key);
    if (v.type() != GgufValueType.ARRAY || v.elementType() != elementType) {
      throw wrongType(key, v, "an array of " + elementType.label());
    }
    return v.value();
  }

  private Value get(String key) {
    Value v = values.get(key);
    if (v == null) {
      throw new BadInputException(file + ": metadata key '" + key + "' is missing");
    }
    return v;
  }

  private BadInputException wrongType(String key, Value v, String expected) {
    String actual =
        v.type() == GgufValueType.ARRAY
            ? "an array of " + v.elementType().label()
            : v.type().label();
    return new BadInputException(
        file + ": metadata key '" + key + "' is " + actual + ", expected " + expected);
  }
}
