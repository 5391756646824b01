package llmc.model;

import com.fasterxml.jackson.databind.node.ObjectNode;
import llmc.formats.Checkpoint;
import llmc.formats.DType;
import llmc.formats.ModelFolder;
import llmc.formats.TensorInfo;
import llmc.formats.quant.QuantizedCheckpoint;
import llmc.model.kernels.WeightMatrix;

/**
 * Where a runtime gets its parameters from, by Hugging Face name, as float32. A checkpoint is one
 * source; a compression pipeline layers its replaced matrices over it.
 */
public interface Weights {
  boolean contains(String name);

  /** Shape as stored, e.g. {@code [out, in]} for a linear weight. */
  long[] shape(String name);

  /** The values converted to float32, row-major. */
  float[] floats(String name);

  /**
   * A 2-D weight {@code [out][in]} in the most compact form the matrix kernels read exactly: here
   * its float32 values; a BF16 checkpoint gives its stored BF16 values.
   */
  default WeightMatrix matrix(String name) {
    long[] shape = shape(name);
    return new WeightMatrix.F32(floats(name), (int) shape[0], (int) shape[1]);
  }

  /**
   * How the runtime quantizes the input of the linear layer whose weight is {@code name} (a W8A8 or
   * FP8-dynamic checkpoint's per-token activations), or null: its input is used as it is.
   */
  default llmc.formats.quant.InputQuantization inputQuantization(String name) {
    return null;
  }

  /**
   * How layer {@code layer}'s key/value cache is quantized (a checkpoint with a {@code
   * kv_cache_scheme}), or null: keys and values are kept as computed.
   */
  default llmc.formats.quant.KvCacheQuantization kvCacheQuantization(int layer) {
    return null;
  }

  /** The rows {@code [fromRow, fromRow + rows)} of a 2-D tensor, row-major (embedding lookups). */
  default float[] rows(String name, long fromRow, int rows) {
    float[] all = floats(name);
    int width = (int) shape(name)[1];
    float[] out = new float[rows * width];
    System.arraycopy(all, (int) (fromRow * width), out, 0, out.length);
    return out;
  }

  /**
   * The weights of a model folder: a quantized folder (GPTQ, compressed-tensors; its config has a
   * {@code quantization_config}) is read dequantized, and a 2:4-sparse compressed-tensors folder (a
   * {@code sparsity_config} of format {@code sparse-24-bitmask} inside {@code quantization_config},
   * with or without quantization) is read with its compressed layers made dense again, so every
   * output of llmc can be run and measured. Layers such a folder stores densely (its ignored ones)
   * are read as they are.
   */
  static Weights of(ModelFolder folder) {
    if (!folder.config().json().has("quantization_config")) {
      return of(folder.checkpoint());
    }
    QuantizedCheckpoint quantized =
        QuantizedCheckpoint.open(
            folder.checkpoint(), (ObjectNode) folder.config().json().get("quantization_config"));
    Weights stored = of(folder.checkpoint());
    return new Weights() {
      @Override
      public float[] rows(String name, long fromRow, int rows) {
        // Embedding lookups: stored tensors are read row by row, not dequantized whole.
        return stored.contains(name)
            ? stored.rows(name, fromRow, rows)
            : Weights.super.rows(name, fromRow, rows);
      }

      @Override
      public WeightMatrix matrix(String name) {
        // a quantized matrix stays its codes (one byte a weight), dequantized by the kernels
        var q = quantized.quantizedWeight(name);
        if (q != null) {
          return new WeightMatrix.Codes(q);
        }
        return stored.contains(name) ? stored.matrix(name) : Weights.super.matrix(name);
      }

      @Override
      public llmc.formats.quant.InputQuantization inputQuantization(String name) {
        return quantized.inputQuantization(name);
      }

      @Override
      public llmc.formats.quant.KvCacheQuantization kvCacheQuantization(int layer) {
        return kvCache(folder, stored, layer);
      }

      @Override
      public boolean contains(String name) {
        return quantized.contains(name);
      }

      @Override
      public long[] shape(String name) {
        return quantized.shape(name);
      }

      @Override
      public float[] floats(String name) {
        return quantized.floats(name);
      }
    };
  }

  /** Layer {@code layer}'s KV cache scheme from a folder's {@code kv_cache_scheme}, or null. */
  private static llmc.formats.quant.KvCacheQuantization kvCache(
      ModelFolder folder, Weights stored, int layer) {
    var qc = folder.config().json().get("quantization_config");
    String where = folder.dir().resolve(ModelFolder.CONFIG) + ": quantization_config";
    var type =
        llmc.formats.quant.KvCacheQuantization.parse(
            qc == null ? null : qc.get("kv_cache_scheme"), where);
    if (type == null) {
      return null;
    }
    if (type == llmc.formats.quant.KvCacheQuantization.Type.INT8_DYNAMIC) {
      return llmc.formats.quant.KvCacheQuantization.int8Dynamic();
    }
    String k = TensorNames.layer(layer) + llmc.formats.quant.KvCacheQuantization.KEY_SCALE;
    String v = TensorNames.layer(layer) + llmc.formats.quant.KvCacheQuantization.VALUE_SCALE;
    if (!stored.contains(k) || !stored.contains(v)) {
      throw new llmc.formats.BadInputException(
          folder.dir()
              + ": the kv_cache_scheme is static FP8 but layer "
              + layer
              + " has no "
              + k
              + " and "
              + v);
    }
    float ks = stored.floats(k)[0];
    float vs = stored.floats(v)[0];
    if (!(ks > 0 && vs > 0 && Float.isFinite(ks) && Float.isFinite(vs))) {
      throw new llmc.formats.BadInputException(
          folder.dir() + ": " + k + " and " + v + " must be positive and finite");
    }
    return new llmc.formats.quant.KvCacheQuantization(
        llmc.formats.quant.KvCacheQuantization.Type.FP8_STATIC, ks, vs);
  }

  static Weights of(Checkpoint checkpoint) {
    return new Weights() {
      @Override
      public boolean contains(String name) {
        return checkpoint.contains(name);
      }

      @Override
      public long[] shape(String name) {
        return checkpoint.info(name).shape();
      }

      @Override
      public float[] floats(String name) {
        return checkpoint.floats(name);
      }

      @Override
      public WeightMatrix matrix(String name) {
        TensorInfo info = checkpoint.info(name);
        if (info.dtype() != DType.BF16 || info.shape().length != 2) {
          return Weights.super.matrix(name);
        }
        return new WeightMatrix.Bf16(
            checkpoint.fileOf(name).bf16(name), (int) info.shape()[0], (int) info.shape()[1]);
      }

      @Override
      public float[] rows(String name, long fromRow, int rows) {
        int width = (int) shape(name)[1];
        float[] out = new float[rows * width];
        checkpoint.fileOf(name).readFloats(name, fromRow * width, out, 0, out.length);
        // the rows' pages (and those the kernel mapped around them) leave this process: token
        // lookups touch a few rows each of an embedding of 0.8 GB
        long bytes = checkpoint.info(name).dtype().byteSize();
        checkpoint.bytes(name).asSlice(fromRow * width * bytes, out.length * bytes).unload();
        return out;
      }
    };
  }
}
