package io.clicklib.flink;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.BufferedReader;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Base64;
import java.util.List;
import java.util.Objects;
import org.apache.flink.types.Row;
import org.junit.jupiter.api.Test;

/**
 * Java's verdict on every message of a differential corpus equals Python's: the corpus comes from
 * tests/vectors/differential.py, named by the environment variable CLICKLIB_DIFFERENTIAL (the test
 * is skipped without it). Also checks the dead-letter columns: the text of an invalid message that
 * is UTF-8, the base64 of one that is not.
 */
class CheckClickEventDifferentialTest {

  private static final int SHOWN = 40;

  @Test
  void javaAgreesWithPythonOnEveryMessage() throws IOException {
    String corpus = System.getenv("CLICKLIB_DIFFERENTIAL");
    assumeTrue(corpus != null && !corpus.isEmpty(), "CLICKLIB_DIFFERENTIAL names no corpus");
    // The corpus holds long lines: no length limit on reading it.
    ObjectMapper json = new ObjectMapper();
    json.getFactory()
        .setStreamReadConstraints(
            com.fasterxml.jackson.core.StreamReadConstraints.builder()
                .maxStringLength(Integer.MAX_VALUE)
                .build());
    List<String> mismatches = new ArrayList<>();
    int count = 0;
    try (BufferedReader lines = Files.newBufferedReader(Path.of(corpus), StandardCharsets.UTF_8)) {
      for (String line = lines.readLine(); line != null; line = lines.readLine()) {
        JsonNode vector = json.readTree(line);
        byte[] message = CheckClickEventTest.messageOf(vector);
        String expected = vector.get("reason").isNull() ? null : vector.get("reason").textValue();
        Row row =
            CheckClickEvent.check(
                message,
                CheckClickEvent.EARLIEST_MS,
                CheckClickEvent.MAX_AHEAD_MS,
                CheckClickEventTest.VECTOR_NOW);
        count++;
        String problem = null;
        if (!Objects.equals(expected, row.getField(0))) {
          problem = "Python " + expected + " | Java " + row.getField(0);
        } else {
          problem = deadLetterProblem(message, row);
        }
        if (problem != null) {
          mismatches.add(vector.get("note").textValue() + ": " + problem
              + (message != null && message.length < 300 ? " | " + Arrays.toString(message) : ""));
        }
      }
    }
    System.out.println("differential: " + count + " messages, " + mismatches.size() + " mismatches");
    mismatches.stream().limit(SHOWN).forEach(System.out::println);
    assertEquals(0, mismatches.size(), "mismatches of " + count + " messages");
  }

  /** What is wrong with the message_text and message_base64 columns, or null. */
  private static String deadLetterProblem(byte[] message, Row row) {
    boolean valid = row.getField(0) == null;
    boolean notUtf8 = !valid && ((String) row.getField(0)).startsWith("not UTF-8 text");
    String text =
        valid || notUtf8 || message == null ? null : new String(message, StandardCharsets.UTF_8);
    String base64 = notUtf8 ? Base64.getEncoder().encodeToString(message) : null;
    if (!Objects.equals(text, row.getField(18))) {
      return "message_text " + row.getField(18);
    }
    if (!Objects.equals(base64, row.getField(19))) {
      return "message_base64 " + row.getField(19);
    }
    return null;
  }
}
