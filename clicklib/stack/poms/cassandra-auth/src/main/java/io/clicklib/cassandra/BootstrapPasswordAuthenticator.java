package io.clicklib.cassandra;

import java.io.IOException;
import java.net.InetAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import org.apache.cassandra.auth.AuthenticatedUser;
import org.apache.cassandra.auth.PasswordAuthenticator;
import org.apache.cassandra.exceptions.AuthenticationException;

/**
 * Cassandra's password authenticator, except that the default superuser does not take its
 * well-known password.
 *
 * <p>On its first start a node with logins on makes the role {@code cassandra} with the password
 * {@code cassandra}, and until someone replaces it, anyone who reaches the port can log in with
 * it and make a superuser of their own. clicklib replaces it on the first {@code stack up}
 * (access.py), but the port answers before that. With this authenticator the role
 * {@code cassandra} logs in only with the password in the file named by the system property
 * {@value #PASSWORD_FILE_PROPERTY} (random, private to the stack's owner); the literal
 * {@code cassandra} is refused like any other wrong password. Every other role is checked by
 * Cassandra as usual.
 */
public class BootstrapPasswordAuthenticator extends PasswordAuthenticator {

    public static final String PASSWORD_FILE_PROPERTY = "clicklib.cassandra.bootstrap-password-file";

    private final DefaultSuperuserLogin defaultSuperuser;

    public BootstrapPasswordAuthenticator() {
        defaultSuperuser = new DefaultSuperuserLogin(readPassword(System.getProperty(PASSWORD_FILE_PROPERTY)));
    }

    private static byte[] readPassword(String file) {
        if (file == null || file.isEmpty()) {
            throw new IllegalStateException("set -D" + PASSWORD_FILE_PROPERTY + " to the file holding the bootstrap password");
        }
        try {
            byte[] text = Files.readAllBytes(Path.of(file));
            String password = new String(text, StandardCharsets.UTF_8).strip();
            if (password.length() < 16) {
                throw new IllegalStateException("the bootstrap password in " + file + " is shorter than 16 characters");
            }
            return password.getBytes(StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new IllegalStateException("cannot read the bootstrap password file " + file + ": " + e.getMessage(), e);
        }
    }

    @Override
    public AuthenticatedUser legacyAuthenticate(Map<String, String> credentials) throws AuthenticationException {
        if (!DefaultSuperuserLogin.NAME.equals(credentials.get(USERNAME_KEY))) {
            return super.legacyAuthenticate(credentials);
        }
        Map<String, String> translated = new HashMap<>(credentials);
        String given = credentials.get(PASSWORD_KEY);
        translated.put(PASSWORD_KEY, defaultSuperuser.translate(given == null ? null : given.getBytes(StandardCharsets.UTF_8)));
        return super.legacyAuthenticate(translated);
    }

    @Override
    public SaslNegotiator newSaslNegotiator(InetAddress clientAddress) {
        SaslNegotiator plain = super.newSaslNegotiator(clientAddress);
        return new SaslNegotiator() {
            @Override
            public byte[] evaluateResponse(byte[] token) throws AuthenticationException {
                return plain.evaluateResponse(defaultSuperuser.rewrite(token));
            }

            @Override
            public boolean isComplete() {
                return plain.isComplete();
            }

            @Override
            public AuthenticatedUser getAuthenticatedUser() throws AuthenticationException {
                return plain.getAuthenticatedUser();
            }
        };
    }
}
