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

  public static synchronized NDManager newManager() {
    configure(0);
    started = true;
    return Engine.getEngine("PyTorch").newBaseManager();
  }
}
