package llmc.distill;

/**
 * The learning-rate schedule: linear warm-up from 0 over {@code warmup} steps, then cosine decay to
 * {@code floor} of the peak at the last step, or constant.
 */
public record LearningRate(double peak, int steps, int warmup, Schedule schedule, double floor) {

  public enum Schedule {
    COSINE,
    CONSTANT
  }

  /** The rate of step {@code step} (0-based). */
  public double at(int step) {
    if (step < warmup) {
      return peak * (step + 1) / warmup;
    }
    if (schedule == Schedule.CONSTANT) {
      return peak;
    }
    int decaySteps = Math.max(1, steps - warmup);
    double progress = Math.min(1.0, (double) (step - warmup) / decaySteps);
    double cosine = 0.5 * (1 + Math.cos(Math.PI * progress));
    return peak * (floor + (1 - floor) * cosine);
  }
}
