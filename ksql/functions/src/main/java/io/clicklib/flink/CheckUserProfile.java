package io.clicklib.flink;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.util.Base64;
import org.apache.flink.table.annotation.DataTypeHint;
import org.apache.flink.table.annotation.FunctionHint;
import org.apache.flink.table.functions.ScalarFunction;
import org.apache.flink.types.Row;

/**
 * Checks one record of the compacted user profiles topic ({@code clickstream_users}: key user_id,
 * value a JSON profile) and returns why it is unusable (NULL when it is fine), the profile's typed
 * fields, and for an unusable one the value as text (or base64 when it is not UTF-8) for the
 * internal dead-letter topic.
 *
 * <p>Any Kafka client can write that topic; a record Flink's JSON format could not read would fail
 * the enrichment job on every restart. Read as bytes and checked here, a bad record is
 * dead-lettered and the job goes on. A record without a value (a tombstone) is a deletion: its
 * fields are all NULL, so the user's events are enriched with no profile. The JSON rules are the
 * event check's (CheckClickEvent): strict UTF-8, strict JSON, the same nesting limit, the last of
 * a repeated key wins, and a kept string may not hold half a surrogate pair.
 */
@FunctionHint(
    output =
        @DataTypeHint(
            "ROW<invalid_reason STRING, signup_date BIGINT, home_city STRING, segment STRING,"
                + " updated_at BIGINT, message_text STRING, message_base64 STRING>"))
public class CheckUserProfile extends ScalarFunction {

  static final String NO_KEY = "no key: a profile is keyed by its user_id";

  public Row eval(String key, byte[] profile) {
    return check(key, profile);
  }

  static Row check(String key, byte[] profile) {
    if (profile == null) {
      return key == null || key.isEmpty() ? invalid(NO_KEY, null, null) : invalid(null, null, null);
    }
    ByteBuffer bytes = ByteBuffer.wrap(profile);
    CharBuffer chars = CheckClickEvent.decodeUtf8(bytes);
    if (chars == null) {
      int offset = bytes.position();
      return invalid(
          CheckClickEvent.notUtf8Reason(profile[offset] & 0xFF, offset),
          null,
          Base64.getEncoder().encodeToString(profile));
    }
    char[] text = chars.array();
    int length = chars.position();
    String messageText = new String(text, 0, length);
    if (key == null || key.isEmpty()) {
      return invalid(NO_KEY, messageText, null);
    }
    Profile read;
    try (JsonParser parser = CheckClickEvent.JSON.createParser(text, 0, length)) {
      read = readProfile(parser);
    } catch (IOException e) {
      String reason =
          CheckClickEvent.nestedTooDeep(text, length)
              ? CheckClickEvent.TOO_DEEP
              : CheckClickEvent.MALFORMED_JSON;
      return invalid(reason, messageText, null);
    }
    String reason = read == null ? "not a JSON object" : read.reason();
    if (reason != null) {
      return invalid(reason, messageText, null);
    }
    return Row.of(null, read.signupDate, read.homeCity, read.segment, read.updatedAt, null, null);
  }

  /** The known fields of one profile as read; a field that is not of its type is named. */
  private static final class Profile {
    Long signupDate;
    String homeCity;
    String segment;
    Long updatedAt;
    String signupDateError;
    String homeCityError;
    String segmentError;
    String updatedAtError;

    /** The first field, in schema order, that is not of its type, or null. */
    String reason() {
      for (String error : new String[] {signupDateError, homeCityError, segmentError, updatedAtError}) {
        if (error != null) {
          return error;
        }
      }
      return null;
    }
  }

  /** The profile of one JSON text, or null when it is JSON but not an object; throws when not JSON. */
  private static Profile readProfile(JsonParser parser) throws IOException {
    JsonToken root = parser.nextToken();
    if (root == null) {
      throw new IOException("no JSON value");
    }
    Profile profile = null;
    if (root == JsonToken.START_OBJECT) {
      profile = new Profile();
      while (parser.nextToken() == JsonToken.FIELD_NAME) {
        String name = parser.currentName();
        JsonToken token = parser.nextToken();
        // Of a repeated key the last wins: each assignment resets the field and its error.
        switch (name) {
          case "signup_date":
            profile.signupDate = integer(parser, token);
            profile.signupDateError = typeError(name, token, profile.signupDate, "an integer");
            break;
          case "updated_at":
            profile.updatedAt = integer(parser, token);
            profile.updatedAtError = typeError(name, token, profile.updatedAt, "an integer");
            break;
          case "home_city":
            profile.homeCity = text(parser, token);
            profile.homeCityError = stringError(name, token, profile.homeCity);
            break;
          case "segment":
            profile.segment = text(parser, token);
            profile.segmentError = stringError(name, token, profile.segment);
            break;
          default:
            parser.skipChildren(); // still read through, so a syntax error in it is found
        }
      }
    } else {
      parser.skipChildren();
    }
    if (parser.nextToken() != null) {
      throw new IOException("content after the JSON value");
    }
    return profile;
  }

  private static Long integer(JsonParser parser, JsonToken token) throws IOException {
    if (token != JsonToken.VALUE_NUMBER_INT) {
      parser.skipChildren();
      return null;
    }
    return CheckClickEvent.integerValue(parser);
  }

  private static String text(JsonParser parser, JsonToken token) throws IOException {
    if (token != JsonToken.VALUE_STRING) {
      parser.skipChildren();
      return null;
    }
    return parser.getText();
  }

  private static String typeError(String field, JsonToken token, Object value, String expected) {
    return token == JsonToken.VALUE_NULL || value != null
        ? null
        : field + ": expected " + expected + " or null";
  }

  private static String stringError(String field, JsonToken token, String value) {
    if (value != null && CheckClickEvent.hasLoneSurrogate(value)) {
      return CheckClickEvent.loneSurrogateReason(field);
    }
    return typeError(field, token, value, "a string");
  }

  private static Row invalid(String reason, String messageText, String messageBase64) {
    return Row.of(reason, null, null, null, null, messageText, messageBase64);
  }
}
