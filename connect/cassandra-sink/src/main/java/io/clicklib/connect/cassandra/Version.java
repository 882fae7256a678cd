package io.clicklib.connect.cassandra;

import java.io.IOException;
import java.io.InputStream;
import java.util.Properties;

/** The plugin version, taken from the pom at build time so Connect's plugin listing shows it. */
final class Version {

    static final String VERSION = load();

    private Version() {}

    private static String load() {
        Properties props = new Properties();
        try (InputStream in = Version.class.getResourceAsStream("version.properties")) {
            if (in != null) {
                props.load(in);
            }
        } catch (IOException e) {
            // An unreadable resource only costs us the version string.
        }
        return props.getProperty("version", "unknown");
    }
}
