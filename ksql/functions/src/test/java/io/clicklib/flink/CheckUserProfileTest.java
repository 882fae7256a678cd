package io.clicklib.flink;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import java.nio.charset.StandardCharsets;
import org.apache.flink.types.Row;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** A profile record is usable, a deletion, or dead-lettered with a reason; never an exception. */
class CheckUserProfileTest {

  private static Row check(String key, String value) {
    return CheckUserProfile.check(key, value == null ? null : value.getBytes(StandardCharsets.UTF_8));
  }

  @Test
  void aProfileComesOutTyped() {
    Row row =
        check("u1", "{\"user_id\":\"u1\",\"signup_date\":1700000000000,\"home_city\":\"Lyon\","
            + "\"segment\":\"casual\",\"updated_at\":1700000000001,\"extra\":[1,{\"a\":null}]}");
    assertNull(row.getField(0));
    assertEquals(1700000000000L, row.getField(1));
    assertEquals("Lyon", row.getField(2));
    assertEquals("casual", row.getField(3));
    assertEquals(1700000000001L, row.getField(4));
    assertNull(row.getField(5));
  }

  @Test
  void aTombstoneDeletesTheProfile() {
    Row row = check("u1", null);
    assertNull(row.getField(0));
    assertNull(row.getField(1));
    assertNull(row.getField(2));
  }

  @Test
  void missingAndNullFieldsAreFine() {
    assertNull(check("u1", "{}").getField(0));
    assertNull(check("u1", "{\"home_city\":null,\"signup_date\":null}").getField(0));
  }

  @ParameterizedTest
  @CsvSource(
      delimiter = '|',
      value = {
        "{\"signup_date\":\"yesterday\"}|signup_date: expected an integer or null",
        "{\"signup_date\":1.5}|signup_date: expected an integer or null",
        "{\"signup_date\":1234567890123456789}|signup_date: expected an integer or null",
        "{\"updated_at\":true}|updated_at: expected an integer or null",
        "{\"home_city\":5}|home_city: expected a string or null",
        "{\"segment\":[\"a\"]}|segment: expected a string or null",
        "{\"segment\":\"\\ud800\"}|segment: not valid Unicode (a lone surrogate)",
        "{\"home_city\":5,\"home_city\":\"Lyon\"}|",
        "{\"home_city\":\"Lyon\",\"home_city\":5}|home_city: expected a string or null",
        "{truncated|malformed JSON",
        "{} trailing|malformed JSON",
        "''|malformed JSON",
        "[1,2]|not a JSON object",
      })
  void aBadProfileIsNamed(String value, String reason) {
    String message = "''".equals(value) ? "" : value;
    Row row = check("u1", message);
    assertEquals(reason, row.getField(0), value);
    if (reason != null) {
      assertEquals(message, row.getField(5));
    }
  }

  @Test
  void tooDeep() {
    String deep = "{\"x\":" + "[".repeat(600) + "]".repeat(600) + "}";
    assertEquals(CheckClickEvent.TOO_DEEP, check("u1", deep).getField(0));
  }

  @Test
  void bytesThatAreNotTextAreKeptAsBase64() {
    Row row = CheckUserProfile.check("u1", new byte[] {'{', (byte) 0xC3, '(', '}'});
    assertEquals("not UTF-8 text: byte 0xC3 at offset 1", row.getField(0));
    assertNull(row.getField(5));
    assertEquals("e8MofQ==", row.getField(6));
  }

  @Test
  void aProfileWithoutAKeyIsRefused() {
    assertEquals(CheckUserProfile.NO_KEY, check(null, "{}").getField(0));
    assertEquals(CheckUserProfile.NO_KEY, check("", "{}").getField(0));
    assertEquals(CheckUserProfile.NO_KEY, check(null, null).getField(0));
  }

  @Test
  void eventTimeIsTheDateOfAValidEventElseZero() {
    String valid =
        "{\"event_id\":\"e\",\"date\":" + System.currentTimeMillis() + ",\"session_id\":\"s\","
            + "\"event\":\"click\",\"page_type\":\"cart\",\"current_url\":\"u\","
            + "\"init_session\":false,\"status\":200}";
    EventTime eventTime = new EventTime();
    long date = Long.parseLong(valid.replaceAll(".*\"date\":(\\d+).*", "$1"));
    assertEquals(date, eventTime.eval(valid.getBytes(StandardCharsets.UTF_8), null, null));
    String microseconds = valid.replace("\"date\":" + date, "\"date\":" + date * 1000);
    assertEquals(0L, eventTime.eval(microseconds.getBytes(StandardCharsets.UTF_8), null, null));
    assertEquals(0L, eventTime.eval("not json".getBytes(StandardCharsets.UTF_8), null, null));
    assertEquals(0L, eventTime.eval(null, null, null));
  }
}
