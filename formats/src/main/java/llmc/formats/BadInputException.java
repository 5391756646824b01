package llmc.formats;

/**
 * A user-caused error (bad file, bad argument): the CLI prints getMessage() as one line and exits
 * 2.
 */
public class BadInputException extends RuntimeException {

  public BadInputException(String message) {
    super(oneLine(message));
  }

  public BadInputException(String message, Throwable cause) {
    super(oneLine(message), cause);
  }

  /**
   * Names read from files may hold line breaks or control characters; the message must stay one
   * line.
   */
  static String oneLine(String message) {
    if (message == null) {
      return null;
    }
    StringBuilder out = new StringBuilder(message.length());
    for (int i = 0; i < message.length(); i++) {
      char c = message.charAt(i);
      out.append(Character.isISOControl(c) ? ' ' : c);
    }
    return out.toString();
  }
}
