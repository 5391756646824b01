package llmc.formats;

import java.util.ArrayList;
import java.util.List;
import java.util.function.UnaryOperator;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A setting with a value llmc cannot use. The message names settings as the library calls them
 * ({@code groupSize}, {@code calibration.nsamples}); a front end that calls them otherwise (the
 * command line's {@code --group-size}) renders the same message with its own names through {@link
 * #message(UnaryOperator)}.
 *
 * <p>The template marks each setting as {@code {name}} and takes the values as {@code %s}
 * arguments: the markers are replaced before the values go in, so a value (a path, a regular
 * expression) is never read as a marker.
 */
public final class InvalidSettingException extends BadInputException {
  private static final Pattern MARKER = Pattern.compile("\\{([A-Za-z][A-Za-z0-9.]*)\\}");

  private final String template;
  private final Object[] values;

  public InvalidSettingException(String template, Object... values) {
    super(render(template, values, UnaryOperator.identity()));
    this.template = template;
    this.values = values.clone();
  }

  /** The message with every setting named by {@code names}. */
  public String message(UnaryOperator<String> names) {
    return oneLine(render(template, values, names));
  }

  /** The settings the message names, in order. */
  public List<String> settings() {
    List<String> names = new ArrayList<>();
    Matcher m = MARKER.matcher(template);
    while (m.find()) {
      names.add(m.group(1));
    }
    return names;
  }

  private static String render(String template, Object[] values, UnaryOperator<String> names) {
    Matcher m = MARKER.matcher(template);
    StringBuilder named = new StringBuilder();
    while (m.find()) {
      m.appendReplacement(
          named, Matcher.quoteReplacement(names.apply(m.group(1)).replace("%", "%%")));
    }
    m.appendTail(named);
    return String.format(named.toString(), values);
  }
}
