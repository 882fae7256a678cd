package io.clicklib.cassandra;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.util.Arrays;

/** How the default superuser's login is translated (BootstrapPasswordAuthenticator): pure logic. */
final class DefaultSuperuserLogin {

    /** CassandraRoleManager's default superuser, and the password it is made with. */
    static final String NAME = "cassandra";
    static final String STORED_PASSWORD = "cassandra";
    /** What a wrong bootstrap password becomes: never the default superuser's stored one. */
    static final String REFUSED = "not the bootstrap password";

    private final byte[] bootstrapPassword;

    DefaultSuperuserLogin(byte[] bootstrapPassword) {
        this.bootstrapPassword = bootstrapPassword.clone();
    }

    /** The password Cassandra is to check for the default superuser, given the one the client sent. */
    String translate(byte[] given) {
        return given != null && MessageDigest.isEqual(bootstrapPassword, given) ? STORED_PASSWORD : REFUSED;
    }

    /**
     * A SASL PLAIN token ({@code [authzid] NUL user NUL password}) with the default superuser's
     * password translated; any other token as it is. It is split as Cassandra splits it, from the
     * end, so that both see the same user.
     */
    byte[] rewrite(byte[] token) {
        int passwordNul = lastNul(token, token.length - 1);
        if (passwordNul < 0) {
            return token;
        }
        int userNul = lastNul(token, passwordNul - 1);
        byte[] user = Arrays.copyOfRange(token, userNul + 1, passwordNul);
        if (!Arrays.equals(user, NAME.getBytes(StandardCharsets.UTF_8))) {
            return token;
        }
        byte[] password = translate(Arrays.copyOfRange(token, passwordNul + 1, token.length)).getBytes(StandardCharsets.UTF_8);
        byte[] rewritten = Arrays.copyOf(token, passwordNul + 1 + password.length);
        System.arraycopy(password, 0, rewritten, passwordNul + 1, password.length);
        return rewritten;
    }

    private static int lastNul(byte[] bytes, int from) {
        for (int i = from; i >= 0; i--) {
            if (bytes[i] == 0) {
                return i;
            }
        }
        return -1;
    }

}
