package io.clicklib.connect.rest;

import jakarta.ws.rs.container.ContainerRequestContext;
import jakarta.ws.rs.container.ContainerRequestFilter;
import jakarta.ws.rs.container.PreMatching;
import jakarta.ws.rs.core.Response;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.Set;
import java.util.regex.Pattern;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Refuses a request body that references a config provider ({@code ${provider:path:key}})
 * anywhere but as the value of a password field.
 *
 * <p>The worker resolves such references before it validates or starts a connector, and it
 * echoes the resolved value of every field that is not a password: in the validation answer, in
 * error messages, in a task's status. A reference placed in, say, {@code cassandra.keyspace} would
 * hand the sink's password (the one file the secure profile's provider may read) to whoever sent
 * it. A password field is shown as {@code [hidden]}, so a reference is accepted there, and only
 * in the form clicklib writes: {@code ${file:<path>:password}}.
 *
 * <p>Every string in the JSON body is looked at, keys included, after its escapes are decoded: a
 * {@code \u0024{} is a reference too.
 */
@PreMatching
public final class SecretReferenceGuard implements ContainerRequestFilter {

    /** The fields whose value may be a reference: Connect hides their values. */
    static final Set<String> PASSWORD_FIELDS = Set.of("cassandra.password");
    static final Pattern PASSWORD_REFERENCE = Pattern.compile("\\$\\{file:[^${}]+:password\\}");
    /** Connect's bodies are connector configs: this is far above any. */
    static final int MAX_BODY = 16 * 1024 * 1024;

    private static final Logger log = LoggerFactory.getLogger(SecretReferenceGuard.class);

    @Override
    public void filter(ContainerRequestContext request) throws IOException {
        if (!request.hasEntity()) {
            return;
        }
        byte[] body;
        try (InputStream in = request.getEntityStream()) {
            body = in.readNBytes(MAX_BODY + 1);
        }
        String reason = body.length > MAX_BODY
                ? "the request body is over " + (MAX_BODY >> 20) + " MiB"
                : refusal(new String(body, StandardCharsets.UTF_8));
        if (reason.isEmpty()) {
            request.setEntityStream(new ByteArrayInputStream(body));
            return;
        }
        log.info("refused {} {}: {}", request.getMethod(), request.getUriInfo().getRequestUri().getRawPath(), reason);
        request.abortWith(Response.status(Response.Status.BAD_REQUEST)
                .type("text/plain; charset=utf-8")
                .entity(reason + "\n")
                .build());
    }

    /** Why a JSON body may not reach the worker, or "" when it may. */
    static String refusal(String json) {
        String key = null;
        int i = 0;
        while (i < json.length()) {
            char c = json.charAt(i);
            if (c != '"') {
                if (c == ',' || c == '{' || c == '[') {
                    // A new member or element: a string that follows is no longer the last key's value,
                    // unless it is an element of an array under that key.
                    if (c != '[') {
                        key = null;
                    }
                }
                i++;
                continue;
            }
            StringBuilder text = new StringBuilder();
            i = readString(json, i + 1, text);
            if (i < 0) {
                return "the request body is not JSON: a string is not closed or has a bad escape";
            }
            int next = i;
            while (next < json.length() && Character.isWhitespace(json.charAt(next))) {
                next++;
            }
            boolean isKey = next < json.length() && json.charAt(next) == ':';
            String value = text.toString();
            if (value.contains("${")) {
                boolean allowed = !isKey && key != null && PASSWORD_FIELDS.contains(key)
                        && PASSWORD_REFERENCE.matcher(value).matches();
                if (!allowed) {
                    String where = isKey ? "a key" : key == null ? "a value" : "the value of " + key;
                    return "a config provider reference (${...}) is allowed only as the value of "
                            + String.join(", ", PASSWORD_FIELDS) + ", not in " + where
                            + ": the worker would resolve it and show the secret it names";
                }
            }
            key = isKey ? value : key;
        }
        return "";
    }

    /** Reads a JSON string from just after its opening quote into {@code out}; returns the index after
     * its closing quote, or -1 if it is malformed. */
    private static int readString(String json, int start, StringBuilder out) {
        int i = start;
        while (i < json.length()) {
            char c = json.charAt(i);
            if (c == '"') {
                return i + 1;
            }
            if (c != '\\') {
                out.append(c);
                i++;
                continue;
            }
            if (i + 1 >= json.length()) {
                return -1;
            }
            char escaped = json.charAt(i + 1);
            switch (escaped) {
                case '"', '\\', '/' -> out.append(escaped);
                case 'b' -> out.append('\b');
                case 'f' -> out.append('\f');
                case 'n' -> out.append('\n');
                case 'r' -> out.append('\r');
                case 't' -> out.append('\t');
                case 'u' -> {
                    if (i + 6 > json.length()) {
                        return -1;
                    }
                    try {
                        out.append((char) Integer.parseInt(json.substring(i + 2, i + 6), 16));
                    } catch (NumberFormatException e) {
                        return -1;
                    }
                    i += 4;
                }
                default -> {
                    return -1;
                }
            }
            i += 2;
        }
        return -1;
    }
}
