package io.clicklib.flink;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.core.StreamReadConstraints;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CoderResult;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.Base64;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import org.apache.flink.table.annotation.DataTypeHint;
import org.apache.flink.table.annotation.FunctionHint;
import org.apache.flink.table.functions.TableFunction;
import org.apache.flink.types.Row;

/**
 * Checks one raw clickstream message, the bytes of a Kafka record's value, against the event
 * schema and emits one row: the reason it is invalid (NULL when valid), for a valid event its
 * typed fields, and for an invalid one the message as text (or as base64 when it is not UTF-8)
 * for the dead-letter topic.
 *
 * <p>The rules, their order and their reason texts are those of {@code
 * clicklib.events.invalid_reason} in Python; both are tested against the shared vectors in {@code
 * tests/vectors/events.jsonl}. Parsing each message once here replaces some thirty JSON path
 * evaluations per message in SQL, which dominated the pipeline's CPU (see the README).
 */
@FunctionHint(
    output =
        @DataTypeHint(
            "ROW<invalid_reason STRING, event_id STRING, `date` BIGINT, session_id STRING,"
                + " user_id STRING, event STRING, page_type STRING, current_url STRING,"
                + " referrer STRING, partner_id STRING, partner_name STRING, init_session BOOLEAN,"
                + " user_agent STRING, ip STRING, city STRING, country STRING, `language` STRING,"
                + " status BIGINT, message_text STRING, message_base64 STRING>"))
public class CheckClickEvent extends TableFunction<Row> {

  /** The event's fields in the order of the output row's columns 1 to 17. */
  static final List<String> FIELDS =
      List.of(
          "event_id", "date", "session_id", "user_id", "event", "page_type", "current_url",
          "referrer", "partner_id", "partner_name", "init_session", "user_agent", "ip", "city",
          "country", "language", "status");

  static final List<String> REQUIRED_STRINGS = List.of("session_id", "event", "page_type", "current_url");
  static final List<String> OPTIONAL_STRINGS =
      List.of(
          "user_id", "referrer", "partner_id", "partner_name", "user_agent", "ip", "city", "country",
          "language");

  /**
   * How deeply arrays and objects may nest, the event itself being level 1: clicklib.events'
   * MAX_DEPTH, which keeps Python's recursive parser well inside its recursion limit.
   */
  static final int MAX_DEPTH = 500;

  static final String NO_MESSAGE = "no message: the Kafka record has no value";
  static final String MALFORMED_JSON = "malformed JSON";
  static final String TOO_DEEP = "nested deeper than " + MAX_DEPTH + " levels";

  private static final int COLUMNS = 1 + FIELDS.size() + 2;
  private static final int MESSAGE_TEXT = COLUMNS - 2;
  private static final int MESSAGE_BASE64 = COLUMNS - 1;
  private static final Map<String, Integer> FIELD_INDEX = new HashMap<>();

  static {
    for (int i = 0; i < FIELDS.size(); i++) {
      FIELD_INDEX.put(FIELDS.get(i), i);
    }
  }

  private static final int EVENT_ID = FIELDS.indexOf("event_id");
  private static final int DATE = FIELDS.indexOf("date");
  private static final int INIT_SESSION = FIELDS.indexOf("init_session");
  private static final int STATUS = FIELDS.indexOf("status");
  private static final int[] REQUIRED_STRING_INDEXES =
      REQUIRED_STRINGS.stream().mapToInt(FIELDS::indexOf).toArray();
  private static final int[] OPTIONAL_STRING_INDEXES =
      OPTIONAL_STRINGS.stream().mapToInt(FIELDS::indexOf).toArray();

  private static final int INTEGER_DIGITS = 18; // fits a BIGINT with room to spare, as in Python

  /** A known field's value that is JSON null. */
  private static final Object JSON_NULL = new Object();

  /** A known field's value of no use to any rule: an array, an object, a float, a long integer. */
  private static final Object OTHER = new Object();

  // Strict like Python's json.loads (Jackson's defaults: no comments, NaN, single quotes or
  // leading zeros). Python has no limit on the length of numbers, names, strings or documents,
  // so neither has this parser: Jackson's own (1,000 digits, 50,000 chars of a name, 20 million
  // of a string) would call a message malformed that Python accepts. The raw topic's message
  // size bounds them all. Nesting has the one explicit limit, checked the same way on both sides.
  // Field names are not canonicalized: Jackson's symbol table would keep up to 12,000 unknown
  // names of unbounded length alive between messages (for some 7 % of a valid event's check).
  static final JsonFactory JSON =
      JsonFactory.builder()
          .disable(JsonFactory.Feature.CANONICALIZE_FIELD_NAMES)
          .streamReadConstraints(
              StreamReadConstraints.builder()
                  .maxNestingDepth(MAX_DEPTH)
                  .maxNumberLength(Integer.MAX_VALUE)
                  .maxNameLength(Integer.MAX_VALUE)
                  .maxStringLength(Integer.MAX_VALUE)
                  .maxDocumentLength(-1)
                  .maxTokenCount(-1)
                  .build())
          .build();

  /** A plausible event time by default: not before 2000-01-01, at most an hour ahead. */
  static final long EARLIEST_MS = 946_684_800_000L;

  static final long MAX_AHEAD_MS = 3_600_000L;

  private static final String[] SPAN_UNITS = {"years", "days", "hours", "minutes"};
  private static final long[] SPAN_SIZES = {31_556_952_000L, 86_400_000L, 3_600_000L, 60_000L};

  /**
   * Checks a message (the raw bytes of a Kafka record's value, null for a record without one) at
   * the time of the check: {@code earliestMs} and {@code maxAheadMs} bound the event time (the
   * pipeline passes them from settings).
   */
  public void eval(byte[] message, Long earliestMs, Long maxAheadMs) {
    collect(
        check(
            message,
            earliestMs == null ? EARLIEST_MS : earliestMs,
            maxAheadMs == null ? MAX_AHEAD_MS : maxAheadMs,
            System.currentTimeMillis()));
  }

  /** The output row for one message checked at {@code nowMs}; a static seam for the unit tests. */
  static Row check(byte[] message, long earliestMs, long maxAheadMs, long nowMs) {
    if (message == null) {
      return invalid(NO_MESSAGE, null, null);
    }
    // Decoded strictly (a new decoder reports malformed input, never replaces it) before parsing,
    // as Python does: Flink's raw STRING would have replaced bytes that are not UTF-8 with U+FFFD
    // in silence, and Jackson reading bytes would skip a byte order mark that Python's parser
    // refuses. The one copy a valid event pays for: UTF-8 never needs more chars than bytes, so
    // the buffer cannot overflow, and the parser reads the chars where they are.
    ByteBuffer bytes = ByteBuffer.wrap(message);
    CharBuffer chars = decodeUtf8(bytes);
    if (chars == null) {
      int offset = bytes.position();
      return invalid(
          notUtf8Reason(message[offset] & 0xFF, offset),
          null,
          Base64.getEncoder().encodeToString(message));
    }
    char[] text = chars.array();
    int length = chars.position();
    Object[] values;
    try (JsonParser parser = JSON.createParser(text, 0, length)) {
      values = readMessage(parser);
    } catch (IOException e) {
      return invalid(
          nestedTooDeep(text, length) ? TOO_DEEP : MALFORMED_JSON, new String(text, 0, length), null);
    }
    String reason = values == null ? "not a JSON object" : reason(values, earliestMs, maxAheadMs, nowMs);
    if (reason != null) {
      return invalid(reason, new String(text, 0, length), null);
    }
    Object[] columns = new Object[COLUMNS];
    for (int i = 0; i < FIELDS.size(); i++) {
      columns[1 + i] = values[i] == JSON_NULL ? null : values[i];
    }
    return Row.of(columns);
  }

  /**
   * The chars of bytes that are UTF-8 text (their count is the buffer's position), or null when
   * they are not; the bytes' position is then the first byte of the first ill-formed sequence,
   * Python's error start.
   */
  static CharBuffer decodeUtf8(ByteBuffer bytes) {
    CharBuffer chars = CharBuffer.allocate(bytes.remaining());
    CoderResult decoded = StandardCharsets.UTF_8.newDecoder().decode(bytes, chars, true);
    return decoded.isError() ? null : chars;
  }

  private static Row invalid(String reason, String messageText, String messageBase64) {
    Object[] columns = new Object[COLUMNS];
    columns[0] = reason;
    columns[MESSAGE_TEXT] = messageText;
    columns[MESSAGE_BASE64] = messageBase64;
    return Row.of(columns);
  }

  static String notUtf8Reason(int value, int offset) {
    return String.format(Locale.ROOT, "not UTF-8 text: byte 0x%02X at offset %d", value, offset);
  }

  /**
   * The values of the known fields of one JSON text, by their index in FIELDS (null when absent),
   * or null when the text is JSON but not an object; throws when it is not one JSON value. The
   * whole text is read, so that malformed JSON anywhere wins over every rule, as in Python.
   */
  private static Object[] readMessage(JsonParser parser) throws IOException {
    JsonToken root = parser.nextToken();
    if (root == null) {
      throw new IOException("no JSON value");
    }
    Object[] values = null;
    if (root == JsonToken.START_OBJECT) {
      values = new Object[FIELDS.size()];
      while (parser.nextToken() == JsonToken.FIELD_NAME) {
        Integer index = FIELD_INDEX.get(parser.currentName());
        JsonToken token = parser.nextToken();
        if (index == null) {
          parser.skipChildren(); // still read through, so a syntax error in it is found
        } else {
          values[index] = value(parser, token); // of a repeated key the last wins, as in Python
        }
      }
    } else {
      parser.skipChildren();
    }
    if (parser.nextToken() != null) {
      throw new IOException("content after the JSON value");
    }
    return values;
  }

  private static Object value(JsonParser parser, JsonToken token) throws IOException {
    switch (token) {
      case VALUE_STRING:
        return parser.getText();
      case VALUE_NUMBER_INT:
        Long integer = integerValue(parser);
        return integer != null ? integer : OTHER;
      case VALUE_TRUE:
        return Boolean.TRUE;
      case VALUE_FALSE:
        return Boolean.FALSE;
      case VALUE_NULL:
        return JSON_NULL;
      default:
        parser.skipChildren();
        return OTHER;
    }
  }

  /**
   * The current integer token's value, or null when it has more than INTEGER_DIGITS digits. The
   * digits are counted before any conversion: a long literal costs nothing, and fails the integer
   * rules as it does in Python.
   */
  static Long integerValue(JsonParser parser) throws IOException {
    int digits = parser.getTextLength();
    if (parser.getTextCharacters()[parser.getTextOffset()] == '-') {
      digits--;
    }
    return digits <= INTEGER_DIGITS ? parser.getLongValue() : null;
  }

  /** The first rule that the known fields of a JSON object break, or null. */
  static String reason(Object[] values, long earliestMs, long maxAheadMs, long nowMs) {
    Object eventId = values[EVENT_ID];
    if (!(eventId instanceof String) || ((String) eventId).isEmpty()) {
      return "event_id: expected a non-empty string";
    }
    if (hasLoneSurrogate((String) eventId)) {
      return loneSurrogateReason("event_id");
    }
    Object date = values[DATE];
    if (!(date instanceof Long)) {
      return "date: expected an integer (epoch milliseconds)";
    }
    String implausible = dateReason((Long) date, earliestMs, maxAheadMs, nowMs);
    if (implausible != null) {
      return implausible;
    }
    for (int i = 0; i < REQUIRED_STRING_INDEXES.length; i++) {
      Object value = values[REQUIRED_STRING_INDEXES[i]];
      if (!(value instanceof String)) {
        return REQUIRED_STRINGS.get(i) + ": expected a string";
      }
      if (hasLoneSurrogate((String) value)) {
        return loneSurrogateReason(REQUIRED_STRINGS.get(i));
      }
    }
    if (!(values[INIT_SESSION] instanceof Boolean)) {
      return "init_session: expected a boolean";
    }
    if (!(values[STATUS] instanceof Long)) {
      return "status: expected an integer";
    }
    for (int i = 0; i < OPTIONAL_STRING_INDEXES.length; i++) {
      Object value = values[OPTIONAL_STRING_INDEXES[i]];
      if (value == null || value == JSON_NULL) {
        continue;
      }
      if (!(value instanceof String)) {
        return OPTIONAL_STRINGS.get(i) + ": expected a string or null";
      }
      if (hasLoneSurrogate((String) value)) {
        return loneSurrogateReason(OPTIONAL_STRINGS.get(i));
      }
    }
    return null;
  }

  static String loneSurrogateReason(String field) {
    return field + ": not valid Unicode (a lone surrogate)";
  }

  /**
   * Whether a kept string holds half a surrogate pair (only an escape in the JSON can make one, as
   * strict decoding refused the bytes): UTF-8 has no encoding for it, so Flink's JSON writer would
   * fail on the valid topic, and fail again on every restart. An escaped pair is one code point
   * and fine, as in Python, whose parser joins it into one.
   */
  static boolean hasLoneSurrogate(String value) {
    for (int i = 0; i < value.length(); i++) {
      char c = value.charAt(i);
      if (Character.isHighSurrogate(c)
          && i + 1 < value.length()
          && Character.isLowSurrogate(value.charAt(i + 1))) {
        i++;
      } else if (Character.isSurrogate(c)) {
        return true;
      }
    }
    return false;
  }

  /**
   * Whether more than MAX_DEPTH arrays and objects are open at once somewhere in a text that did
   * not parse: the count of clicklib.events._nested_too_deep, which Python makes before parsing.
   * Brackets inside strings (up to a closing quote that is not escaped, or to the end) do not
   * count, and a closing bracket closes whatever is open. A text that parses nests at most
   * MAX_DEPTH deep (Jackson's limit), and for valid JSON both counts are its nesting depth.
   */
  static boolean nestedTooDeep(char[] text, int length) {
    int depth = 0;
    boolean inString = false;
    for (int i = 0; i < length; i++) {
      char c = text[i];
      if (inString) {
        if (c == '\\') {
          i++;
        } else if (c == '"') {
          inString = false;
        }
      } else if (c == '"') {
        inString = true;
      } else if (c == '[' || c == '{') {
        if (++depth > MAX_DEPTH) {
          return true;
        }
      } else if (c == ']' || c == '}') {
        depth--;
      }
    }
    return false;
  }

  /**
   * Why a date is not a plausible event time, or null: the words of clicklib.events.DateRule, for
   * the same date and clock. Dates in seconds, microseconds or nanoseconds are named as such.
   */
  static String dateReason(long date, long earliestMs, long maxAheadMs, long nowMs) {
    long latest = nowMs + maxAheadMs;
    if (date < earliestMs) {
      String day = Instant.ofEpochMilli(earliestMs).atZone(ZoneOffset.UTC).toLocalDate().toString();
      boolean seconds = date >= -Math.floorDiv(-earliestMs, 1000) && date <= Math.floorDiv(latest, 1000);
      return "date " + date + " is before " + day + ": "
          + (seconds ? "milliseconds expected, this looks like seconds" : "epoch milliseconds expected");
    }
    if (date > latest) {
      String ahead = span(date - nowMs);
      String[] units = {"microseconds", "nanoseconds"};
      long[] factors = {1_000L, 1_000_000L};
      for (int i = 0; i < units.length; i++) {
        long scaled = Math.floorDiv(date, factors[i]);
        if (scaled >= earliestMs && scaled <= latest) {
          return "date " + date + " is " + ahead
              + " ahead of the clock: milliseconds expected, this looks like " + units[i];
        }
      }
      return "date " + date + " is " + ahead + " ahead of the clock; at most " + span(maxAheadMs)
          + " ahead is accepted";
    }
    return null;
  }

  /** A positive duration in words, in the largest unit that gives at least 2 ("55,946 years"). */
  static String span(long ms) {
    for (int i = 0; i < SPAN_UNITS.length; i++) {
      if (ms >= 2 * SPAN_SIZES[i]) {
        return String.format(Locale.ROOT, "%,d %s", ms / SPAN_SIZES[i], SPAN_UNITS[i]);
      }
    }
    return String.format(Locale.ROOT, "%,d seconds", ms / 1000);
  }
}
