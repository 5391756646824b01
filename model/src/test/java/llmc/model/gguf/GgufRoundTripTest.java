package llmc.model.gguf;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDManager;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import llmc.formats.BadInputException;
import llmc.formats.ModelFolder;
import llmc.formats.gguf.GgmlBlocks;
import llmc.formats.gguf.GgmlType;
import llmc.model.Linear;
import llmc.model.LlamaFamily;
import llmc.model.LlamaRuntime;
import llmc.model.LoadedModel;
import llmc.model.TensorNames;
import llmc.model.Weights;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * stories260K written by {@link GgufModelWriter} and read back by {@link GgufWeights}: the runtime
 * gives the folder's logits from the F32 file (so the q/k row interleaving is undone exactly),
 * Q8_0's own rounding from the Q8_0 file, and clearly other logits from a file whose q/k rows were
 * never interleaved.
 */
class GgufRoundTripTest {
  @TempDir static Path dir;

  static Path stories;
  static LlamaFamily family;
  static Weights original;
  static ModelFolder folder;
  static Path f32;
  static Path q80;

  /** Three windows of 48 random token ids (the same for every model). */
  static int[][] windows;

  @BeforeAll
  static void export() {
    stories =
        Path.of(System.getProperty("llmc.root", ".."))
            .toAbsolutePath()
            .normalize()
            .resolve("samples/models/stories260K");
    folder = ModelFolder.open(stories);
    family = LlamaFamily.from(folder.config());
    original = Weights.of(folder.checkpoint());
    f32 = write("stories-f32.gguf", GgmlType.F32, true);
    q80 = write("stories-q8_0.gguf", GgmlType.Q8_0, true);
    SplittableRandom random = new SplittableRandom(7);
    windows = new int[3][];
    for (int b = 0; b < windows.length; b++) {
      windows[b] = random.ints(48, 0, family.vocab()).toArray();
      windows[b][0] = 1; // BOS, as P1 windows start
    }
  }

  @AfterAll
  static void closeFolder() {
    folder.close();
  }

  /**
   * The model as {@code type}; {@code interleave} false writes q and k in Hugging Face row order
   * (wrong for GGUF).
   */
  static Path write(String name, GgmlType type, boolean interleave) {
    Path out = dir.resolve(name);
    List<GgufModelWriter.Tensor> plan = new ArrayList<>();
    for (GgufModelWriter.Tensor t :
        GgufModelWriter.plan(family, original, folder.checkpoint().names(), type, null)) {
      plan.add(
          interleave
              ? t
              : new GgufModelWriter.Tensor(
                  t.hfName(),
                  t.ggufName(),
                  t.type(),
                  t.rows(),
                  t.cols(),
                  t.vector(),
                  null,
                  t.fallback()));
    }
    try (GgufModelWriter w =
        new GgufModelWriter(out, false, family, "stories260K", type, plan, g -> {})) {
      for (GgufModelWriter.Tensor t : w.tensors()) {
        w.writeFloats(t.hfName(), original.floats(t.hfName()));
      }
      return w.finish();
    }
  }

  static float[] logits(LlamaFamily f, Weights weights) {
    try (LlamaRuntime runtime = new LlamaRuntime(f, weights, true);
        NDManager scope = runtime.manager().newSubManager()) {
      return runtime.forward(scope, windows).toFloatArray();
    }
  }

  static float[] logits(Path gguf) {
    try (GgufWeights weights = GgufWeights.open(gguf)) {
      return logits(weights.family(), weights);
    }
  }

  static double maxAbsDiff(float[] a, float[] b) {
    assertEquals(a.length, b.length);
    double max = 0;
    for (int i = 0; i < a.length; i++) {
      max = Math.max(max, Math.abs(a[i] - b[i]));
    }
    return max;
  }

  /** {@code w} rounded as llama.cpp's Q8_0 rounds it (blocks of 32 along each row). */
  static float[] roundQ8(float[] w) {
    MemorySegment blocks = Arena.ofAuto().allocate(GgmlType.Q8_0.byteSize(w.length));
    GgmlBlocks.encode(GgmlType.Q8_0, w, 0, w.length, blocks);
    float[] out = new float[w.length];
    GgmlBlocks.decode(GgmlType.Q8_0, blocks, out, 0, w.length);
    return out;
  }

  @Test
  void f32FileReadsAsTheFolder() {
    try (GgufWeights gguf = GgufWeights.open(f32)) {
      LlamaFamily f = gguf.family();
      assertEquals(family.hidden(), f.hidden());
      assertEquals(family.layers(), f.layers());
      assertEquals(family.heads(), f.heads());
      assertEquals(family.kvHeads(), f.kvHeads());
      assertEquals(family.headDim(), f.headDim());
      assertEquals(family.intermediate(), f.intermediate());
      assertEquals(family.vocab(), f.vocab());
      assertEquals(family.contextLength(), f.contextLength());
      assertEquals((float) family.rmsNormEps(), (float) f.rmsNormEps());
      assertEquals(family.rope().theta(), f.rope().theta());
      assertTrue(f.tiedEmbeddings(), "stories260K is tied: the file has no output.weight");
      assertFalse(gguf.contains(TensorNames.LM_HEAD));
      assertEquals(2 + 9 * family.layers(), gguf.names().size());
      for (String name : gguf.names()) {
        assertArrayEquals(original.shape(name), gguf.shape(name), name);
        assertArrayEquals(original.floats(name), gguf.floats(name), name); // q and k too: exact
      }
    }
  }

  @Test
  void qRowsComeBackInHuggingFaceOrderExactly() {
    try (GgufWeights gguf = GgufWeights.open(f32)) {
      for (int layer = 0; layer < family.layers(); layer++) {
        for (Linear linear : new Linear[] {Linear.Q, Linear.K}) {
          String name = linear.weightName(layer);
          float[] expected = original.floats(name);
          assertArrayEquals(expected, gguf.floats(name), name);
          // The file itself holds them interleaved: GGUF row 1 is Hugging Face row headDim / 2.
          float[] stored = gguf.file().floats(LlamaGguf.ggufName(name));
          int cols = family.hidden();
          int half = family.headDim() / 2;
          assertArrayEquals(
              Arrays.copyOfRange(expected, half * cols, (half + 1) * cols),
              Arrays.copyOfRange(stored, cols, 2 * cols),
              name);
          assertFalse(Arrays.equals(expected, stored), name + " is stored permuted");
          // rows() puts each row back too.
          assertArrayEquals(
              Arrays.copyOfRange(expected, 3 * cols, 8 * cols), gguf.rows(name, 3, 5), name);
        }
      }
    }
  }

  @Test
  void f32LogitsEqualTheFolderWithin1e5() {
    float[] expected = logits(family, original);
    float[] got = logits(f32);
    double diff = maxAbsDiff(expected, got);
    assertTrue(diff <= 1e-5, "max |logit diff| = " + diff);
  }

  @Test
  void q8LogitsAreQ8RoundingOfTheFolder() {
    // Exact reading: the Q8_0 file runs as the folder with its matrices rounded to Q8_0 (in Hugging
    // Face order)
    // where the plan puts Q8_0, and to F16 where it falls back (down_proj: in_features 172 is no
    // multiple of 32).
    float[] got = logits(q80);
    Weights rounded =
        new Weights() {
          @Override
          public boolean contains(String name) {
            return original.contains(name);
          }

          @Override
          public long[] shape(String name) {
            return original.shape(name);
          }

          @Override
          public float[] floats(String name) {
            float[] w = original.floats(name);
            if (w.length == family.hidden()) {
              return w; // norms: F32
            }
            if (name.endsWith("down_proj.weight")) {
              float[] half = new float[w.length];
              for (int i = 0; i < w.length; i++) {
                half[i] = Float.float16ToFloat(Float.floatToFloat16(w[i]));
              }
              return half;
            }
            return roundQ8(w);
          }
        };
    double exact = maxAbsDiff(logits(family, rounded), got);
    float[] reference = logits(family, original);
    double quantization = maxAbsDiff(reference, got);
    double sumSq = 0;
    int agree = 0;
    int positions = reference.length / family.vocab();
    for (int p = 0; p < positions; p++) {
      agree += argmax(reference, p) == argmax(got, p) ? 1 : 0;
    }
    double range = 0;
    for (int i = 0; i < reference.length; i++) {
      range = Math.max(range, Math.abs(reference[i]));
      sumSq += (reference[i] - got[i]) * (double) (reference[i] - got[i]);
    }
    double rms = Math.sqrt(sumSq / reference.length);
    assertTrue(exact <= 1e-5, "Q8_0 file vs Q8_0-rounded weights: " + exact);
    // What Q8_0 itself costs (measured: max 0.351, rms 0.046 on logits up to 18.3; 138 of 144 top-1
    // tokens agree, the
    // others near-ties of random tokens): each weight moves by at most half a step, 1/254 of its
    // block's largest,
    // and five layers of a 64-wide model amplify that to a few hundredths rms. The bounds leave
    // 2-3x room for other
    // kernels' rounding and stay far below what a wrong q/k row order does (max 11.5, see below).
    assertTrue(quantization < 1.0, "Q8_0 file vs float folder: max " + quantization);
    assertTrue(rms < 0.1, "Q8_0 file vs float folder: rms " + rms);
    assertTrue(quantization > 0, "Q8_0 must round something");
  }

  static int argmax(float[] logits, int position) {
    int v = family.vocab();
    int best = 0;
    for (int i = 1; i < v; i++) {
      if (logits[position * v + i] > logits[position * v + best]) {
        best = i;
      }
    }
    return best;
  }

  @Test
  void withoutTheInterleavingTheLogitsAreWrong() {
    // A file whose q/k rows were written in Hugging Face order: GgufWeights un-interleaves rows
    // that never were.
    Path plain = write("stories-f32-not-interleaved.gguf", GgmlType.F32, false);
    double diff = maxAbsDiff(logits(family, original), logits(plain));
    assertTrue(diff > 1.0, "the permutation must matter: max |logit diff| = " + diff);
  }

  @Test
  void embeddingRowsDecodeOnlyTheirBlocks() {
    try (GgufWeights gguf = GgufWeights.open(q80)) {
      assertEquals(GgmlType.Q8_0, gguf.info(TensorNames.EMBED).type());
      float[] all = gguf.floats(TensorNames.EMBED);
      int h = family.hidden();
      assertArrayEquals(
          Arrays.copyOfRange(all, 17 * h, 20 * h), gguf.rows(TensorNames.EMBED, 17, 3));
      assertArrayEquals(
          Arrays.copyOfRange(all, (family.vocab() - 1) * h, family.vocab() * h),
          gguf.rows(TensorNames.EMBED, family.vocab() - 1, 1));
      assertEquals(GgmlType.F16, gguf.info("model.layers.0.mlp.down_proj.weight").type());
    }
  }

  @Test
  void nameMappingRoundTrips() {
    for (String hf : LlamaGguf.writeOrder(family).keySet()) {
      String gguf = LlamaGguf.ggufName(hf);
      assertEquals(hf, LlamaGguf.hfName(gguf), gguf);
    }
    assertEquals("token_embd.weight", LlamaGguf.ggufName(TensorNames.EMBED));
    assertEquals("output.weight", LlamaGguf.ggufName(TensorNames.LM_HEAD));
    assertEquals(
        "blk.12.attn_q.weight", LlamaGguf.ggufName("model.layers.12.self_attn.q_proj.weight"));
    assertEquals("model.layers.3.mlp.down_proj.weight", LlamaGguf.hfName("blk.3.ffn_down.weight"));
    assertNull(LlamaGguf.hfName("rope_freqs.weight"));
    assertNull(LlamaGguf.hfName("blk.x.attn_q.weight"));
    assertNull(LlamaGguf.ggufName("model.layers.0.self_attn.q_norm.weight"));
  }

  @Test
  void interleavedRowOrderOfTwoHeadsOfFour() {
    // Per head of 4 rows: GGUF rows (0, 1, 2, 3) are Hugging Face rows (0, 2, 1, 3).
    assertArrayEquals(new int[] {0, 2, 1, 3, 4, 6, 5, 7}, LlamaGguf.interleavedRowOrder(2, 4));
    int[] order = LlamaGguf.interleavedRowOrder(3, 8);
    int[] inverse = LlamaGguf.inverse(order);
    for (int i = 0; i < order.length; i++) {
      assertEquals(i, inverse[order[i]]);
    }
  }

  /**
   * Without llama.vocab_size the vocabulary is the token count, held to the same 1 to 2^24 (a file
   * with no tokens and a token_embd of 0 rows used to open as a model of 0 tokens). The file is the
   * regression input of LlamaGgufFuzzTest.
   */
  @Test
  void vocabularyFromAnEmptyTokenListIsRefused() throws IOException {
    Path file = dir.resolve("no-tokens.gguf");
    Files.copy(
        Path.of(
            "src/test/resources/llmc/model/gguf/LlamaGgufFuzzTestInputs/family",
            "regression-vocab-from-no-tokens"),
        file);
    BadInputException e = assertThrows(BadInputException.class, () -> LoadedModel.open(file));
    assertTrue(
        e.getMessage()
            .startsWith(file + ": no llama.vocab_size, and tokenizer.ggml.tokens holds 0 tokens"),
        e.getMessage());
  }

  @Test
  void unknownTensorIsRefusedNamingIt() {
    Path out = dir.resolve("extra-tensor.gguf");
    List<GgufModelWriter.Tensor> plan =
        new ArrayList<>(
            GgufModelWriter.plan(
                family, original, folder.checkpoint().names(), GgmlType.F32, null));
    plan.add(
        new GgufModelWriter.Tensor(
            "rope_freqs", "rope_freqs.weight", GgmlType.F32, 1, 4, true, null, null));
    try (GgufModelWriter w =
        new GgufModelWriter(out, false, family, "extra", GgmlType.F32, plan, g -> {})) {
      for (GgufModelWriter.Tensor t : w.tensors()) {
        w.writeFloats(
            t.hfName(),
            t.hfName().equals("rope_freqs") ? new float[4] : original.floats(t.hfName()));
      }
      w.finish();
    }
    BadInputException e = assertThrows(BadInputException.class, () -> GgufWeights.open(out));
    assertTrue(e.getMessage().startsWith(out + ": tensor 'rope_freqs.weight'"), e.getMessage());
  }

  @Test
  void loadedModelReadsTheTokenizerFromTheOriginalFolder() {
    try (LoadedModel model = LoadedModel.open(f32)) {
      assertTrue(model.isGguf());
      assertNull(model.folder);
      BadInputException e = assertThrows(BadInputException.class, model::tokenizer);
      assertEquals(
          f32
              + ": llmc reads the tokenizer of a GGUF file from the original model folder; set"
              + " tokenizer to it",
          e.getMessage());
    }
    try (LoadedModel model = LoadedModel.open(f32, stories)) {
      assertEquals(1, model.tokenizer().encodeDocument("Once")[0]);
      assertTrue(model.family.tiedEmbeddings());
    }
  }
}
