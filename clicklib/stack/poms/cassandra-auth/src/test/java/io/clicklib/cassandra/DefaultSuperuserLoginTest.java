package io.clicklib.cassandra;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

class DefaultSuperuserLoginTest {

    private final DefaultSuperuserLogin authenticator =
            new DefaultSuperuserLogin("the-random-bootstrap-password".getBytes(StandardCharsets.UTF_8));

    private static byte[] token(String text) {
        return text.getBytes(StandardCharsets.UTF_8);
    }

    @Test
    void theDefaultSuperuserWithItsWellKnownPasswordIsRefused() {
        assertArrayEquals(token("\0cassandra\0not the bootstrap password"), authenticator.rewrite(token("\0cassandra\0cassandra")));
        assertArrayEquals(token("x\0cassandra\0not the bootstrap password"), authenticator.rewrite(token("x\0cassandra\0cassandra")));
        assertArrayEquals(token("\0cassandra\0not the bootstrap password"), authenticator.rewrite(token("\0cassandra\0")));
        // Split from the end, as Cassandra splits it: the user is the part before the last NUL.
        assertArrayEquals(token("\0bob\0cassandra\0not the bootstrap password"),
                authenticator.rewrite(token("\0bob\0cassandra\0cassandra")));
        assertEquals("not the bootstrap password", authenticator.translate(token("the-random-bootstrap-passwor")));
        assertEquals("not the bootstrap password", authenticator.translate(null));
    }

    @Test
    void theDefaultSuperuserWithTheBootstrapPasswordGetsItsStoredOne() {
        assertArrayEquals(token("\0cassandra\0cassandra"), authenticator.rewrite(token("\0cassandra\0the-random-bootstrap-password")));
    }

    @Test
    void everyOtherRoleAndEveryMalformedTokenIsLeftToCassandra() {
        for (String text : new String[] {"\0clicklib_admin\0cassandra", "\0cassandra\0bob\0cassandra", "cassandra", "", "\0"}) {
            assertArrayEquals(token(text), authenticator.rewrite(token(text)), text);
        }
    }
}
