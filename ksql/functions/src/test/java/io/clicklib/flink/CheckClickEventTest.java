package io.clicklib.flink;

import static org.junit.jupiter.api.Assertions.assertEquals;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
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

  @ParameterizedTest(name = "{0}")
  @MethodSource("vectors")
  void givesTheExpectedReason(JsonNode vector) {
    Row row = CheckClickEvent.check(vector.get("message").textValue());
    String expected = vector.get("reason").isNull() ? null : vector.get("reason").textValue();
    assertEquals(expected, row.getField(0), vector.get("note").textValue());
  }

  @Test
  void aValidEventComesOutTyped() {
    Row row =
        CheckClickEvent.check(
            "{\"event_id\":\"e\",\"date\":5,\"session_id\":\"s\",\"user_id\":null,\"event\":\"click\","
                + "\"page_type\":\"cart\",\"current_url\":\"u\",\"init_session\":false,\"status\":404}");
    assertEquals(null, row.getField(0));
    assertEquals("e", row.getField(1));
    assertEquals(5L, row.getField(2));
    assertEquals(null, row.getField(4));
    assertEquals(false, row.getField(11));
    assertEquals(404L, row.getField(17));
  }
}
