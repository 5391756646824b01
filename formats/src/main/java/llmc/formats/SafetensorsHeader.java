package llmc.formats;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The parsed and checked header of a safetensors file. Layout: u64 LE header length n | n bytes of
 * UTF-8 JSON | data block (tensors back to back, no holes).
 *
 * @param tensors in data-offset order
 * @param dataStart byte offset of the data block in the file (8 + n)
 */
record SafetensorsHeader(Map<String, String> metadata, List<TensorInfo> tensors, long dataStart) {

  static final long MAX_HEADER_BYTES = 100_000_000L;
  static final String METADATA_KEY = "__metadata__";

  /**
   * Checks every length and offset before trusting it; failures name {@code file} and the tensor.
   */
  static SafetensorsHeader parse(String file, MemorySegment mapping) {
    long fileSize = mapping.byteSize();
    if (fileSize < 8) {
      throw new BadInputException(
          file
              + ": file is "
              + fileSize
              + " bytes, too short for the 8-byte safetensors header length; it is truncated or not safetensors");
    }
    long headerLength = mapping.get(FloatCodec.I64, 0);
    if (headerLength < 0 || headerLength > fileSize - 8) {
      throw new BadInputException(
          file
              + ": header length "
              + Long.toUnsignedString(headerLength)
              + " is past the end of the file ("
              + fileSize
              + " bytes); it is truncated or not safetensors");
    }
    if (headerLength > MAX_HEADER_BYTES) {
      throw new BadInputException(
          file
              + ": header length "
              + headerLength
              + " exceeds the 100 MB limit; not a safetensors file");
    }
    ObjectNode root = parseJson(file, mapping.asSlice(8, headerLength).toArray(FloatCodec.I8));
    long dataSize = fileSize - 8 - headerLength;

    Map<String, String> metadata = new LinkedHashMap<>();
    List<TensorInfo> tensors = new ArrayList<>();
    for (Map.Entry<String, JsonNode> entry : root.properties()) {
      if (entry.getKey().equals(METADATA_KEY)) {
        readMetadata(file, entry.getValue(), metadata);
      } else {
        tensors.add(readEntry(file, entry.getKey(), entry.getValue(), dataSize));
      }
    }
    tensors.sort(
        Comparator.comparingLong(TensorInfo::begin)
            .thenComparingLong(TensorInfo::end)
            .thenComparing(TensorInfo::name));
    checkContiguous(file, tensors, dataSize);
    return new SafetensorsHeader(metadata, List.copyOf(tensors), 8 + headerLength);
  }

  private static ObjectNode parseJson(String file, byte[] header) {
    String text;
    try {
      text =
          StandardCharsets.UTF_8
              .newDecoder()
              .onMalformedInput(CodingErrorAction.REPORT)
              .onUnmappableCharacter(CodingErrorAction.REPORT)
              .decode(ByteBuffer.wrap(header))
              .toString();
    } catch (CharacterCodingException e) {
      throw new BadInputException(file + ": header is not valid UTF-8; not a safetensors file", e);
    }
    JsonNode root;
    try {
      root = Json.mapper().readTree(text);
    } catch (JsonProcessingException e) {
      String what = Json.describe(e);
      throw new BadInputException(
          file
              + ": header is not valid JSON"
              + (what.startsWith("Duplicate") ? " (duplicate tensor name): " : ": ")
              + what,
          e);
    }
    if (root == null || !root.isObject()) {
      throw new BadInputException(file + ": header is not a JSON object; not a safetensors file");
    }
    return (ObjectNode) root;
  }

  private static void readMetadata(String file, JsonNode node, Map<String, String> metadata) {
    if (!node.isObject()) {
      throw new BadInputException(file + ": " + METADATA_KEY + " is not a JSON object of strings");
    }
    for (Map.Entry<String, JsonNode> e : node.properties()) {
      if (!e.getValue().isTextual()) {
        throw new BadInputException(
            file
                + ": "
                + METADATA_KEY
                + " value for '"
                + e.getKey()
                + "' is "
                + e.getValue().getNodeType().toString().toLowerCase()
                + ", not a string");
      }
      metadata.put(e.getKey(), e.getValue().textValue());
    }
  }

  private static TensorInfo readEntry(String file, String name, JsonNode node, long dataSize) {
    String where = file + ": tensor '" + name + "'";
    if (!node.isObject()) {
      throw new BadInputException(where + ": entry is not a JSON object");
    }
    JsonNode dtypeNode = node.get("dtype");
    if (dtypeNode == null || !dtypeNode.isTextual()) {
      throw new BadInputException(where + ": missing \"dtype\" string");
    }
    DType dtype;
    try {
      dtype = DType.fromSafetensors(dtypeNode.textValue());
    } catch (BadInputException e) {
      throw new BadInputException(where + ": " + e.getMessage());
    }
    long[] shape = longArray(where, node.get("shape"), "shape", -1);
    long[] offsets = longArray(where, node.get("data_offsets"), "data_offsets", 2);
    long begin = offsets[0];
    long end = offsets[1];
    if (begin > end) {
      throw new BadInputException(
          where + ": data_offsets [" + begin + ", " + end + "] begin after end");
    }
    if (end > dataSize) {
      throw new BadInputException(
          where
              + ": data_offsets ["
              + begin
              + ", "
              + end
              + "] are outside the data block of "
              + dataSize
              + " bytes; the file is truncated");
    }
    long needed;
    try {
      long numel = 1;
      for (long d : shape) {
        numel = Math.multiplyExact(numel, d);
      }
      needed = Math.multiplyExact(numel, dtype.byteSize());
    } catch (ArithmeticException e) {
      throw new BadInputException(
          where + ": shape " + Arrays.toString(shape) + " overflows 64 bits");
    }
    if (end - begin != needed) {
      throw new BadInputException(
          where
              + ": data_offsets ["
              + begin
              + ", "
              + end
              + "] hold "
              + (end - begin)
              + " bytes but "
              + dtype
              + " "
              + Arrays.toString(shape)
              + " needs "
              + needed);
    }
    return new TensorInfo(name, dtype, shape, begin, end);
  }

  /** A JSON array of non-negative integers that fit a long; {@code length} -1 means any. */
  private static long[] longArray(String where, JsonNode node, String key, int length) {
    if (node == null || !node.isArray() || (length >= 0 && node.size() != length)) {
      throw new BadInputException(
          where
              + ": missing \""
              + key
              + "\" array"
              + (length >= 0 ? " of " + length + " integers" : " of integers"));
    }
    long[] values = new long[node.size()];
    for (int i = 0; i < values.length; i++) {
      JsonNode v = node.get(i);
      if (!v.isIntegralNumber() || !v.canConvertToLong() || v.longValue() < 0) {
        throw new BadInputException(
            where + ": \"" + key + "\" holds " + v + ", not a non-negative 64-bit integer");
      }
      values[i] = v.longValue();
    }
    return values;
  }

  /** Sorted tensors must tile [0, dataSize) exactly. */
  private static void checkContiguous(String file, List<TensorInfo> sorted, long dataSize) {
    long expected = 0;
    TensorInfo previous = null;
    for (TensorInfo t : sorted) {
      if (t.begin() < expected) {
        throw new BadInputException(
            file
                + ": tensor '"
                + t.name()
                + "' ["
                + t.begin()
                + ", "
                + t.end()
                + ") overlaps tensor '"
                + previous.name()
                + "' ["
                + previous.begin()
                + ", "
                + previous.end()
                + ")");
      }
      if (t.begin() > expected) {
        throw new BadInputException(
            file
                + ": "
                + (t.begin() - expected)
                + " unused bytes at ["
                + expected
                + ", "
                + t.begin()
                + ") before tensor '"
                + t.name()
                + "'"
                + (previous == null
                    ? "; data must start at offset 0"
                    : " (a hole after '" + previous.name() + "')"));
      }
      expected = t.end();
      previous = t;
    }
    if (expected != dataSize) {
      throw new BadInputException(
          file
              + ": "
              + (dataSize - expected)
              + " bytes after the last tensor"
              + (previous == null ? "" : " '" + previous.name() + "'")
              + "; the file is corrupt or was appended to");
    }
  }
}
