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

  /** The clock the vectors are checked at, unless a vector names its own ("now"). */
  static final long VECTOR_NOW = 1_767_225_600_000L;

  @ParameterizedTest(name = "{0}")
  @MethodSource("vectors")
  void givesTheExpectedReason(JsonNode vector) {
    long now = vector.has("now") ? vector.get("now").longValue() : VECTOR_NOW;
    Row row =
        CheckClickEvent.check(
            vector.get("message").textValue(),
            CheckClickEvent.EARLIEST_MS,
            CheckClickEvent.MAX_AHEAD_MS,
            now);
    String expected = vector.get("reason").isNull() ? null : vector.get("reason").textValue();
    assertEquals(expected, row.getField(0), vector.get("note").textValue());
  }

  @Test
  void aValidEventComesOutTyped() {
    Row row =
        CheckClickEvent.check(
            "{\"event_id\":\"e\",\"date\":1767225600005,\"session_id\":\"s\",\"user_id\":null,\"event\":\"click\","
                + "\"page_type\":\"cart\",\"current_url\":\"u\",\"init_session\":false,\"status\":404}",
            CheckClickEvent.EARLIEST_MS,
            CheckClickEvent.MAX_AHEAD_MS,
            VECTOR_NOW);
    assertEquals(null, row.getField(0));
    assertEquals("e", row.getField(1));
    assertEquals(1767225600005L, row.getField(2));
    assertEquals(null, row.getField(4));
    assertEquals(false, row.getField(11));
    assertEquals(404L, row.getField(17));
  }
}
