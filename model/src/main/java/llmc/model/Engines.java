package llmc.model;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDManager;

/** DJL's PyTorch engine, set up offline with a chosen number of threads, before first use. */
public final class Engines {
  private static boolean started;

  private Engines() {}

  /**
   * Must be called before anything touches DJL. {@code threads <= 0} keeps PyTorch's default (one
   * per physical core).
   */
  public static synchronized void configure(int threads) {
    int most = MAX_THREADS_PER_PROCESSOR * Runtime.getRuntime().availableProcessors();
    if (threads < 0 || threads > most) {
      throw new llmc.formats.InvalidSettingException(
          "{threads} %s: give 1 to %s on this machine (%s per processor; more only slow the work),"
              + " or 0 for one per core",
          threads, most, MAX_THREADS_PER_PROCESSOR);
    }
    if (started) {
      return;
    }
    // Never download: the native library comes from the pytorch-native-cpu jar on the class path.
    System.setProperty("ai.djl.offline", "true");
    System.setProperty("offline", "true");
    System.setProperty("ai.djl.pytorch.graph_optimizer", "false");
    llmc.model.kernels.Parallel.configure(threads);
    if (threads > 0) {
      System.setProperty("ai.djl.pytorch.num_threads", Integer.toString(threads));
      System.setProperty("ai.djl.pytorch.num_interop_threads", "1");
    }
  }

  /** More compute threads than this per processor are refused. */
  public static final int MAX_THREADS_PER_PROCESSOR = 8;

  public static synchronized NDManager newManager() {
    configure(0);
    started = true;
    return Engine.getEngine("PyTorch").newBaseManager();
  }
}
