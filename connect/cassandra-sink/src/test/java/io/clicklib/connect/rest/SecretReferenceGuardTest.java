package io.clicklib.connect.rest;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import org.junit.jupiter.api.Test;

class SecretReferenceGuardTest {

    private static final String REFERENCE = "${file:/home/u/.clickstack/secrets/cassandra-sink.properties:password}";

    @Test
    void theSinksPasswordReferenceIsAcceptedWhereClicklibPutsIt() {
        assertEquals("", SecretReferenceGuard.refusal(
                "{\"name\": \"s\", \"config\": {\"topics\": \"t\", \"cassandra.password\": \"" + REFERENCE + "\"}}"));
        assertEquals("", SecretReferenceGuard.refusal(
                "{\"cassandra.password\":\"" + REFERENCE + "\",\"cassandra.keyspace\":\"k\"}"));
        assertEquals("", SecretReferenceGuard.refusal("{\"topics\": [\"a\", \"b\"], \"x\": 1, \"y\": null}"));
    }

    @Test
    void aReferenceAnywhereElseIsRefused() {
        for (String body : List.of(
                "{\"cassandra.keyspace\": \"" + REFERENCE + "\"}",
                "{\"name\": \"s\", \"config\": {\"cassandra.table\": \"" + REFERENCE + "\"}}",
                // After a password field, the next member is not the password's.
                "{\"cassandra.password\": \"" + REFERENCE + "\", \"topics\": \"" + REFERENCE + "\"}",
                "{\"topics\": [\"a\", \"" + REFERENCE + "\"]}",
                "{\"" + REFERENCE + "\": \"x\"}",
                // Another key of the same file, or another file, even in the password field.
                "{\"cassandra.password\": \"${file:/home/u/.clickstack/secrets/credentials.json:kafka}\"}",
                "{\"cassandra.password\": \"${env:PATH}\"}",
                "{\"cassandra.password\": \"x" + REFERENCE + "\"}",
                // Escapes are decoded first.
                "{\"cassandra.keyspace\": \"\\u0024{file:/s:password}\"}",
                "{\"cassandra.keyspace\": \"$\\u007bfile:/s:password}\"}")) {
            String reason = SecretReferenceGuard.refusal(body);
            assertTrue(reason.startsWith("a config provider reference"), body + " -> " + reason);
        }
    }

    @Test
    void aStringThatIsNotClosedIsRefused() {
        assertTrue(SecretReferenceGuard.refusal("{\"a\": \"b").startsWith("the request body is not JSON"));
        assertTrue(SecretReferenceGuard.refusal("{\"a\": \"\\q\"}").startsWith("the request body is not JSON"));
    }
}
