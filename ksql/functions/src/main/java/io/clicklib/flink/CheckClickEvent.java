package io.clicklib.flink;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.List;
import java.util.Locale;
import org.apache.flink.table.annotation.DataTypeHint;
import org.apache.flink.table.annotation.FunctionHint;
import org.apache.flink.table.functions.TableFunction;
import org.apache.flink.types.Row;

/**
 * Checks one raw clickstream message against the event schema and emits one row: the reason it
 * is invalid (NULL when valid) and, for a valid event, its typed fields.
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
                + " status BIGINT>"))
public class CheckClickEvent extends TableFunction<Row> {

  static final List<String> REQUIRED_STRINGS = List.of("session_id", "event", "page_type", "current_url");
  static final List<String> OPTIONAL_STRINGS =
      List.of(
          "user_id", "referrer", "partner_id", "partner_name", "user_agent", "ip", "city", "country",
          "language");
  private static final long INTEGER_LIMIT = 1_000_000_000_000_000_000L; // 10^18: at most 18 digits

  // Strict like Python's json.loads: no content after the value; NaN and Infinity are rejected
  // by default, and of a repeated key the last value wins, as in Python.
  private static final ObjectMapper JSON =
      JsonMapper.builder().enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS).build();

  /** A plausible event time by default: not before 2000-01-01, at most an hour ahead. */
  static final long EARLIEST_MS = 946_684_800_000L;

  static final long MAX_AHEAD_MS = 3_600_000L;

  private static final String[] SPAN_UNITS = {"years", "days", "hours", "minutes"};
  private static final long[] SPAN_SIZES = {31_556_952_000L, 86_400_000L, 3_600_000L, 60_000L};

  /**
   * Checks a message at the time of the check: {@code earliestMs} and {@code maxAheadMs} bound the
   * event time (the pipeline passes them from settings).
   */
  public void eval(String message, Long earliestMs, Long maxAheadMs) {
    collect(
        check(
            message,
            earliestMs == null ? EARLIEST_MS : earliestMs,
            maxAheadMs == null ? MAX_AHEAD_MS : maxAheadMs,
            System.currentTimeMillis()));
  }

  /** The output row for one message checked at {@code nowMs}; a static seam for the unit tests. */
  static Row check(String message, long earliestMs, long maxAheadMs, long nowMs) {
    JsonNode root;
    try {
      root = message == null ? null : JSON.readTree(message);
    } catch (JsonProcessingException | StackOverflowError e) {
      root = null;
    }
    String reason = reason(root, earliestMs, maxAheadMs, nowMs);
    if (reason != null) {
      return Row.of(reason, null, null, null, null, null, null, null, null, null, null, null, null,
          null, null, null, null, null);
    }
    return Row.of(
        null,
        root.get("event_id").textValue(),
        root.get("date").longValue(),
        text(root, "session_id"),
        text(root, "user_id"),
        text(root, "event"),
        text(root, "page_type"),
        text(root, "current_url"),
        text(root, "referrer"),
        text(root, "partner_id"),
        text(root, "partner_name"),
        root.get("init_session").booleanValue(),
        text(root, "user_agent"),
        text(root, "ip"),
        text(root, "city"),
        text(root, "country"),
        text(root, "language"),
        root.get("status").longValue());
  }

  /** The first rule a parsed message breaks, or null; a null root means it did not parse. */
  static String reason(JsonNode root, long earliestMs, long maxAheadMs, long nowMs) {
    if (root == null || root.isMissingNode()) {
      return "malformed JSON";
    }
    if (!root.isObject()) {
      return "not a JSON object";
    }
    JsonNode eventId = root.get("event_id");
    if (eventId == null || !eventId.isTextual() || eventId.textValue().isEmpty()) {
      return "event_id: expected a non-empty string";
    }
    if (!isInteger(root.get("date"))) {
      return "date: expected an integer (epoch milliseconds)";
    }
    String implausible = dateReason(root.get("date").longValue(), earliestMs, maxAheadMs, nowMs);
    if (implausible != null) {
      return implausible;
    }
    for (String field : REQUIRED_STRINGS) {
      JsonNode value = root.get(field);
      if (value == null || !value.isTextual()) {
        return field + ": expected a string";
      }
    }
    JsonNode initSession = root.get("init_session");
    if (initSession == null || !initSession.isBoolean()) {
      return "init_session: expected a boolean";
    }
    if (!isInteger(root.get("status"))) {
      return "status: expected an integer";
    }
    for (String field : OPTIONAL_STRINGS) {
      JsonNode value = root.get(field);
      if (value != null && !value.isNull() && !value.isTextual()) {
        return field + ": expected a string or null";
      }
    }
    return null;
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

  private static boolean isInteger(JsonNode value) {
    return value != null
        && value.isIntegralNumber()
        && value.canConvertToLong()
        && value.longValue() > -INTEGER_LIMIT
        && value.longValue() < INTEGER_LIMIT;
  }

  private static String text(JsonNode root, String field) {
    JsonNode value = root.get(field);
    return value == null || value.isNull() ? null : value.textValue();
  }
}
