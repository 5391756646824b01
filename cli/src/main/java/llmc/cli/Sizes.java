package llmc.cli;

/** Byte counts for people: 1,044,984 bytes -> "1.04 MB" (decimal units, as disks are sold). */
final class Sizes {
  private Sizes() {}

  static String human(long bytes) {
    String[] units = {"B", "kB", "MB", "GB", "TB"};
    double value = bytes;
    int unit = 0;
    while (value >= 1000 && unit < units.length - 1) {
      value /= 1000;
      unit++;
    }
    return unit == 0 ? bytes + " B" : String.format("%.2f %s", value, units[unit]);
  }
}
