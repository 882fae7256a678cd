package io.clicklib.flink;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Base64;
import java.util.stream.Stream;
import org.apache.flink.types.Row;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/** The same vectors as tests/unit/test_event_vectors.py: Java and Python agree on every message. */
class CheckClickEventTest {

  private static final Path VECTORS = Path.of("..", "..", "tests", "vectors", "events.jsonl");
  private static final ObjectMapper JSON = new ObjectMapper();

  static Stream<JsonNode> vectors() throws IOException {
    return Files.readAllLines(VECTORS).stream()
        .filter(line -> !line.isBlank())
        .map(
            line -> {
              try {
                return JSON.readTree(line);
              } catch (IOException e) {
                throw new IllegalStateException(e);
              }
            });
  }

  /** The clock the vectors are checked at, unless a vector names its own ("now"). */
  static final long VECTOR_NOW = 1_767_225_600_000L;

  /**
   * A vector's message as the bytes of a Kafka record's value: "message" is text (UTF-8 encoded
   * here) or null for a record without a value, "message_base64" holds bytes that are not text.
   */
  static byte[] messageOf(JsonNode vector) {
    if (vector.has("message_base64")) {
      return Base64.getDecoder().decode(vector.get("message_base64").textValue());
    }
    JsonNode message = vector.get("message");
    return message.isNull() ? null : message.textValue().getBytes(StandardCharsets.UTF_8);
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("vectors")
  void givesTheExpectedReason(JsonNode vector) {
    long now = vector.has("now") ? vector.get("now").longValue() : VECTOR_NOW;
    Row row =
        CheckClickEvent.check(
            messageOf(vector),
            CheckClickEvent.EARLIEST_MS,
            CheckClickEvent.MAX_AHEAD_MS,
            now);
    String expected = vector.get("reason").isNull() ? null : vector.get("reason").textValue();
    assertEquals(expected, row.getField(0), vector.get("note").textValue());
  }

  private static final String VALID =
      "{\"event_id\":\"e\",\"date\":1767225600005,\"session_id\":\"s\",\"user_id\":null,\"event\":\"click\","
          + "\"page_type\":\"cart\",\"current_url\":\"u\",\"init_session\":false,\"status\":404}";

  private static Row check(byte[] message) {
    return CheckClickEvent.check(
        message, CheckClickEvent.EARLIEST_MS, CheckClickEvent.MAX_AHEAD_MS, VECTOR_NOW);
  }

  @Test
  void aValidEventComesOutTyped() {
    Row row = check(VALID.getBytes(StandardCharsets.UTF_8));
    assertEquals(20, row.getArity());
    assertEquals(null, row.getField(0));
    assertEquals("e", row.getField(1));
    assertEquals(1767225600005L, row.getField(2));
    assertEquals(null, row.getField(4));
    assertEquals(false, row.getField(11));
    assertEquals(404L, row.getField(17));
    assertNull(row.getField(18), "a valid event carries no message text");
    assertNull(row.getField(19), "nor base64");
  }

  @Test
  void anInvalidMessageComesOutAsText() {
    String message = VALID.replace("404", "\"x\"") + " \u00e9";
    Row row = check(message.getBytes(StandardCharsets.UTF_8));
    assertEquals("malformed JSON", row.getField(0));
    assertEquals(message, row.getField(18));
    assertNull(row.getField(19));
    for (int field = 1; field <= 17; field++) {
      assertNull(row.getField(field));
    }
  }

  @Test
  void bytesThatAreNotUtf8ComeOutAsBase64() {
    byte[] message = {'{', '"', 'a', '"', ':', '"', (byte) 0xC3, '"', '}'};
    Row row = check(message);
    assertEquals("not UTF-8 text: byte 0xC3 at offset 6", row.getField(0));
    assertNull(row.getField(18));
    assertEquals("eyJhIjoiwyJ9", row.getField(19));
  }

  @Test
  void aRecordWithoutAValueHasNeitherTextNorBytes() {
    Row row = check(null);
    assertEquals(CheckClickEvent.NO_MESSAGE, row.getField(0));
    assertNull(row.getField(18));
    assertNull(row.getField(19));
  }

  @Test
  void noLengthLimitOfJacksonApplies() {
    // Longer than Jackson's default limits: a string of 20 million chars, a name of 50,000, a
    // number of 1,000 digits; Python accepts them all (tests/unit/test_events.py).
    String huge = "x".repeat(20_000_001);
    String name = "n".repeat(50_001);
    String number = "9".repeat(100_000);
    String message =
        VALID.replace(
            "\"status\":404",
            "\"status\":404,\"s\":\"" + huge + "\",\"" + name + "\":1,\"n\":" + number + ",\"f\":-" + number
                + ".5e-" + number);
    assertNull(check(message.getBytes(StandardCharsets.UTF_8)).getField(0));
  }
}
