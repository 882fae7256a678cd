package io.clicklib.connect.cassandra;

import com.datastax.oss.driver.api.core.CqlIdentifier;
import com.datastax.oss.driver.api.core.CqlSession;
import com.datastax.oss.driver.api.core.DefaultConsistencyLevel;
import com.datastax.oss.driver.api.core.config.DefaultDriverOption;
import com.datastax.oss.driver.api.core.config.DriverConfigLoader;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyStore;
import java.security.cert.Certificate;
import java.security.cert.CertificateFactory;
import java.time.Duration;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.stream.Collectors;
import org.apache.kafka.common.config.AbstractConfig;
import org.apache.kafka.common.config.ConfigDef;
import org.apache.kafka.common.config.ConfigDef.Importance;
import org.apache.kafka.common.config.ConfigDef.Type;
import javax.net.ssl.SSLContext;
import javax.net.ssl.TrustManagerFactory;
import org.apache.kafka.common.config.ConfigException;

/** The connector's settings, shared by the connector (validation) and its tasks. */
public final class CassandraSinkConfig extends AbstractConfig {

    public static final String CONTACT_POINTS = "cassandra.contact.points";
    public static final String PORT = "cassandra.port";
    public static final String LOCAL_DATACENTER = "cassandra.local.datacenter";
    public static final String KEYSPACE = "cassandra.keyspace";
    public static final String TABLE = "cassandra.table";
    public static final String CONSISTENCY = "cassandra.consistency";
    public static final String MAX_CONCURRENT_REQUESTS = "cassandra.max.concurrent.requests";
    public static final String MAPPING = "cassandra.mapping";
    public static final String TTL_SECONDS = "cassandra.ttl.seconds";
    public static final String USERNAME = "cassandra.username";
    public static final String PASSWORD = "cassandra.password";
    public static final String SSL_CA = "cassandra.ssl.ca";

    /** Cassandra rejects TTLs above 20 years. */
    static final int MAX_TTL_SECONDS = 630_720_000;

    // Serial levels only apply to lightweight transactions, which plain upserts are not.
    private static final String[] WRITE_CONSISTENCY_LEVELS = Arrays.stream(DefaultConsistencyLevel.values())
            .filter(level -> !level.isSerial())
            .map(Enum::name)
            .toArray(String[]::new);

    public static final ConfigDef CONFIG_DEF = new ConfigDef()
            .define(CONTACT_POINTS, Type.LIST, "127.0.0.1", CassandraSinkConfig::validateContactPoints,
                    Importance.HIGH,
                    "Comma-separated Cassandra nodes to connect to first, each 'host' or 'host:port' "
                            + "(IPv6 as '[addr]:port'); the driver discovers the rest of the cluster from them.")
            .define(PORT, Type.INT, 9042, ConfigDef.Range.between(1, 65535), Importance.MEDIUM,
                    "CQL native port used for contact points given without a port.")
            .define(LOCAL_DATACENTER, Type.STRING, "datacenter1", new ConfigDef.NonEmptyString(),
                    Importance.HIGH,
                    "Datacenter whose nodes receive the writes; must match the nodes' configured datacenter "
                            + "(see 'nodetool status').")
            .define(KEYSPACE, Type.STRING, ConfigDef.NO_DEFAULT_VALUE, new ConfigDef.NonEmptyString(),
                    Importance.HIGH, "Keyspace of the target table (CQL syntax: quote to keep case).")
            .define(TABLE, Type.STRING, ConfigDef.NO_DEFAULT_VALUE, new ConfigDef.NonEmptyString(),
                    Importance.HIGH,
                    "Table that every record of the connector's topics is upserted into; one table per "
                            + "connector (CQL syntax: quote to keep case).")
            .define(CONSISTENCY, Type.STRING, "LOCAL_ONE",
                    ConfigDef.CaseInsensitiveValidString.in(WRITE_CONSISTENCY_LEVELS), Importance.MEDIUM,
                    "Consistency level of the writes.")
            .define(MAX_CONCURRENT_REQUESTS, Type.INT, 128, ConfigDef.Range.atLeast(1), Importance.LOW,
                    "Most writes a task keeps in flight at once while it writes a batch of records.")
            .define(MAPPING, Type.STRING, "", CassandraSinkConfig::validateMapping, Importance.MEDIUM,
                    "Which record field feeds which column, as 'column=field,column2=field2'; only the "
                            + "listed columns are written, and they must include the whole primary key. "
                            + "Empty: every column of the table takes the top-level record field of the same "
                            + "name, matched case-insensitively.")
            .define(TTL_SECONDS, Type.INT, 0, ConfigDef.Range.between(0, MAX_TTL_SECONDS), Importance.LOW,
                    "Time to live of the written cells, in seconds; 0 writes without a TTL (the table's "
                            + "default_time_to_live still applies).")
            .define(USERNAME, Type.STRING, "", Importance.HIGH,
                    "Role the sink logs in to Cassandra as; empty: no login (a cluster without "
                            + "PasswordAuthenticator).")
            // A PASSWORD is shown as [hidden] wherever Connect logs or reports the config; give it
            // as ${file:path:key} so that the REST API shows only the reference.
            .define(PASSWORD, Type.PASSWORD, "", Importance.HIGH,
                    "Password of that role; best given through a config provider, like "
                            + "${file:/path/cassandra-sink.properties:password}.")
            .define(SSL_CA, Type.STRING, "", Importance.MEDIUM,
                    "A PEM file of the CA certificates that signed the nodes' certificates: the sink then "
                            + "speaks TLS and trusts only them. Empty: no TLS.");

    public CassandraSinkConfig(Map<String, String> props) {
        super(CONFIG_DEF, props);
    }

    List<InetSocketAddress> contactPoints() {
        int defaultPort = getInt(PORT);
        return getList(CONTACT_POINTS).stream()
                .map(entry -> parseContactPoint(entry, defaultPort))
                .map(hostAndPort -> new InetSocketAddress(hostAndPort.host(), hostAndPort.port()))
                .collect(Collectors.toList());
    }

    /** The contact points as a person would write them, for error messages. */
    String contactPointsDescription() {
        int defaultPort = getInt(PORT);
        return getList(CONTACT_POINTS).stream()
                .map(entry -> parseContactPoint(entry, defaultPort).toString())
                .collect(Collectors.joining(","));
    }

    String localDatacenter() {
        return getString(LOCAL_DATACENTER);
    }

    CqlIdentifier keyspace() {
        return CqlIdentifier.fromCql(getString(KEYSPACE).trim());
    }

    CqlIdentifier table() {
        return CqlIdentifier.fromCql(getString(TABLE).trim());
    }

    /** keyspace.table as it would appear in CQL. */
    String qualifiedTable() {
        return keyspace().asCql(true) + "." + table().asCql(true);
    }

    DefaultConsistencyLevel consistency() {
        return DefaultConsistencyLevel.valueOf(getString(CONSISTENCY).trim().toUpperCase(Locale.ROOT));
    }

    int maxConcurrentRequests() {
        return getInt(MAX_CONCURRENT_REQUESTS);
    }

    int ttlSeconds() {
        return getInt(TTL_SECONDS);
    }

    /** Explicit column-to-field mapping in the configured order; empty means "match by name". */
    Map<CqlIdentifier, String> mapping() {
        return parseMapping(getString(MAPPING));
    }

    /**
     * Opens a session on the configured cluster. The driver's own reference.conf and policies are
     * loaded through this plugin's class loader: under Connect's plugin isolation the thread's
     * context loader is not guaranteed to see the driver.
     */
    CqlSession openSession() {
        ClassLoader loader = CassandraSinkConfig.class.getClassLoader();
        DriverConfigLoader driverConfig = DriverConfigLoader.programmaticBuilder(loader)
                .withString(DefaultDriverOption.REQUEST_CONSISTENCY, consistency().name())
                // The default 2 s quiet period would make every validation and task stop wait for
                // nothing: all our requests have completed by the time a session is closed.
                .withDuration(DefaultDriverOption.NETTY_IO_SHUTDOWN_QUIET_PERIOD, Duration.ZERO)
                .withDuration(DefaultDriverOption.NETTY_ADMIN_SHUTDOWN_QUIET_PERIOD, Duration.ZERO)
                // After Cassandra restarts, try again within 2 s: the default backoff grows to 60 s,
                // and every batch waits for the session to find the node again.
                .withDuration(DefaultDriverOption.RECONNECTION_BASE_DELAY, Duration.ofMillis(500))
                .withDuration(DefaultDriverOption.RECONNECTION_MAX_DELAY, Duration.ofSeconds(2))
                .build();
        var builder = CqlSession.builder()
                .withClassLoader(loader)
                .withConfigLoader(driverConfig)
                .addContactPoints(contactPoints())
                .withLocalDatacenter(localDatacenter());
        String username = getString(USERNAME);
        if (!username.isEmpty()) {
            builder = builder.withAuthCredentials(username, getPassword(PASSWORD).value());
        }
        SSLContext tls = sslContext();
        if (tls != null) {
            builder = builder.withSslContext(tls);
        }
        return builder.build();
    }

    /** A TLS context trusting the CA certificates of the configured PEM file; null without one. */
    SSLContext sslContext() {
        String path = getString(SSL_CA);
        if (path.isEmpty()) {
            return null;
        }
        try (InputStream pem = Files.newInputStream(Path.of(path))) {
            KeyStore trusted = KeyStore.getInstance(KeyStore.getDefaultType());
            trusted.load(null, null);
            int index = 0;
            for (Certificate certificate : CertificateFactory.getInstance("X.509").generateCertificates(pem)) {
                trusted.setCertificateEntry("ca-" + index++, certificate);
            }
            if (index == 0) {
                throw new ConfigException(SSL_CA, path, "holds no PEM certificate");
            }
            TrustManagerFactory trust = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
            trust.init(trusted);
            SSLContext context = SSLContext.getInstance("TLS");
            context.init(null, trust.getTrustManagers(), null);
            return context;
        } catch (IOException | GeneralSecurityException e) {
            throw new ConfigException(SSL_CA, path, "cannot be read as PEM certificates: " + e.getMessage());
        }
    }

    record HostAndPort(String host, int port) {
        @Override
        public String toString() {
            return (host.contains(":") ? "[" + host + "]" : host) + ":" + port;
        }
    }

    static HostAndPort parseContactPoint(String entry, int defaultPort) {
        String value = entry.trim();
        String host;
        String port = null;
        if (value.startsWith("[")) {
            int end = value.indexOf(']');
            if (end < 0) {
                throw new ConfigException(CONTACT_POINTS, entry, "unclosed '[' in IPv6 address");
            }
            host = value.substring(1, end);
            String rest = value.substring(end + 1);
            if (!rest.isEmpty()) {
                if (!rest.startsWith(":")) {
                    throw new ConfigException(CONTACT_POINTS, entry, "expected ':port' after ']'");
                }
                port = rest.substring(1);
            }
        } else if (value.indexOf(':') >= 0 && value.indexOf(':') == value.lastIndexOf(':')) {
            host = value.substring(0, value.indexOf(':'));
            port = value.substring(value.indexOf(':') + 1);
        } else {
            // No colon, or a bare IPv6 address (several colons) that cannot carry a port.
            host = value;
        }
        if (host.isEmpty()) {
            throw new ConfigException(CONTACT_POINTS, entry, "empty host");
        }
        if (port == null) {
            return new HostAndPort(host, defaultPort);
        }
        try {
            int number = Integer.parseInt(port);
            if (number < 1 || number > 65535) {
                throw new NumberFormatException();
            }
            return new HostAndPort(host, number);
        } catch (NumberFormatException e) {
            throw new ConfigException(CONTACT_POINTS, entry, "port must be a number from 1 to 65535");
        }
    }

    static Map<CqlIdentifier, String> parseMapping(String value) {
        Map<CqlIdentifier, String> mapping = new LinkedHashMap<>();
        if (value == null || value.isBlank()) {
            return mapping;
        }
        for (String entry : value.split(",")) {
            int equals = entry.indexOf('=');
            String column = equals < 0 ? "" : entry.substring(0, equals).trim();
            String field = equals < 0 ? "" : entry.substring(equals + 1).trim();
            if (column.isEmpty() || field.isEmpty()) {
                throw new ConfigException(MAPPING, value,
                        "entry '" + entry.trim() + "' is not of the form column=field");
            }
            CqlIdentifier id;
            try {
                id = CqlIdentifier.fromCql(column);
            } catch (IllegalArgumentException e) {
                throw new ConfigException(MAPPING, value, "'" + column + "' is not a valid column name");
            }
            if (mapping.put(id, field) != null) {
                throw new ConfigException(MAPPING, value, "column " + column + " is mapped twice");
            }
        }
        return mapping;
    }

    private static void validateContactPoints(String name, Object value) {
        @SuppressWarnings("unchecked")
        List<String> entries = value == null ? List.of() : (List<String>) value;
        if (entries.isEmpty()) {
            throw new ConfigException(name, value, "at least one contact point is needed");
        }
        entries.forEach(entry -> parseContactPoint(entry, 9042));
    }

    private static void validateMapping(String name, Object value) {
        parseMapping((String) value);
    }
}
