package io.clicklib.connect.cassandra;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.datastax.oss.driver.api.core.CqlIdentifier;
import com.datastax.oss.driver.api.core.DefaultConsistencyLevel;
import io.clicklib.connect.cassandra.CassandraSinkConfig.HostAndPort;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;
import org.apache.kafka.common.config.ConfigException;
import org.apache.kafka.common.config.ConfigValue;
import org.apache.kafka.connect.sink.SinkConnector;
import org.junit.jupiter.api.Test;

class CassandraSinkConfigTest {

    private static Map<String, String> minimal() {
        Map<String, String> props = new HashMap<>();
        props.put(CassandraSinkConfig.KEYSPACE, "clickstream");
        props.put(CassandraSinkConfig.TABLE, "Events");
        return props;
    }

    @Test
    void thePasswordIsNeverShownInTheConfig() {
        Map<String, String> props = minimal();
        props.put(CassandraSinkConfig.USERNAME, "clicklib_sink");
        props.put(CassandraSinkConfig.PASSWORD, "s3cret-pw");
        CassandraSinkConfig config = new CassandraSinkConfig(props);
        assertEquals("s3cret-pw", config.getPassword(CassandraSinkConfig.PASSWORD).value());
        assertTrue(!config.values().toString().contains("s3cret-pw"));
        assertEquals(org.apache.kafka.common.config.ConfigDef.Type.PASSWORD,
                CassandraSinkConfig.CONFIG_DEF.configKeys().get(CassandraSinkConfig.PASSWORD).type);
    }

    @Test
    void aCaFileTurnsTlsOnAndABadOneIsNamed() throws Exception {
        Map<String, String> props = minimal();
        assertEquals(null, new CassandraSinkConfig(props).sslContext());
        props.put(CassandraSinkConfig.SSL_CA,
                java.nio.file.Path.of(getClass().getResource("/test-ca.pem").toURI()).toString());
        assertEquals("TLS", new CassandraSinkConfig(props).sslContext().getProtocol());
        props.put(CassandraSinkConfig.SSL_CA, "/no/such/ca.pem");
        ConfigException missing = assertThrows(ConfigException.class, () -> new CassandraSinkConfig(props).sslContext());
        assertTrue(missing.getMessage().contains(CassandraSinkConfig.SSL_CA));
    }

    @Test
    void defaults() {
        CassandraSinkConfig config = new CassandraSinkConfig(minimal());
        assertEquals("127.0.0.1:9042", config.contactPointsDescription());
        assertEquals("datacenter1", config.localDatacenter());
        assertEquals(DefaultConsistencyLevel.LOCAL_ONE, config.consistency());
        assertEquals(128, config.maxConcurrentRequests());
        assertEquals(0, config.ttlSeconds());
        assertTrue(config.mapping().isEmpty());
        // Unquoted CQL names are case-insensitive, as in cqlsh.
        assertEquals("clickstream.events", config.qualifiedTable());
    }

    @Test
    void contactPoints() {
        assertEquals(new HostAndPort("cassandra", 9042), CassandraSinkConfig.parseContactPoint(" cassandra ", 9042));
        assertEquals(new HostAndPort("10.0.0.1", 19042), CassandraSinkConfig.parseContactPoint("10.0.0.1:19042", 9042));
        assertEquals(new HostAndPort("::1", 9142), CassandraSinkConfig.parseContactPoint("[::1]:9142", 9042));
        assertEquals(new HostAndPort("::1", 9042), CassandraSinkConfig.parseContactPoint("::1", 9042));
        assertEquals("[::1]:9042", new HostAndPort("::1", 9042).toString());
        assertThrows(ConfigException.class, () -> CassandraSinkConfig.parseContactPoint("host:port", 9042));
        assertThrows(ConfigException.class, () -> CassandraSinkConfig.parseContactPoint("host:70000", 9042));

        Map<String, String> props = minimal();
        props.put(CassandraSinkConfig.CONTACT_POINTS, "a, b:9043");
        props.put(CassandraSinkConfig.PORT, "9142");
        assertEquals("a:9142,b:9043", new CassandraSinkConfig(props).contactPointsDescription());
    }

    @Test
    void mapping() {
        Map<CqlIdentifier, String> mapping =
                CassandraSinkConfig.parseMapping("user_id=userId, \"Page\"=page.url ,ts=event_time");
        assertEquals(List.of(CqlIdentifier.fromInternal("user_id"), CqlIdentifier.fromInternal("Page"),
                CqlIdentifier.fromInternal("ts")), List.copyOf(mapping.keySet()));
        assertEquals(List.of("userId", "page.url", "event_time"), List.copyOf(mapping.values()));
        assertThrows(ConfigException.class, () -> CassandraSinkConfig.parseMapping("a=b,c"));
        assertThrows(ConfigException.class, () -> CassandraSinkConfig.parseMapping("a=b,A=c"));
    }

    @Test
    void configDefReportsBadValuesPerKey() {
        Map<String, String> props = new HashMap<>();
        props.put(CassandraSinkConfig.CONSISTENCY, "serial");
        props.put(CassandraSinkConfig.MAPPING, "oops");
        props.put(CassandraSinkConfig.TTL_SECONDS, "-1");
        Map<String, List<String>> errors = CassandraSinkConfig.CONFIG_DEF.validate(props).stream()
                .collect(Collectors.toMap(ConfigValue::name, ConfigValue::errorMessages));
        assertEquals(1, errors.get(CassandraSinkConfig.KEYSPACE).size());
        assertEquals(1, errors.get(CassandraSinkConfig.TABLE).size());
        assertEquals(1, errors.get(CassandraSinkConfig.CONSISTENCY).size());
        assertEquals(1, errors.get(CassandraSinkConfig.MAPPING).size());
        assertEquals(1, errors.get(CassandraSinkConfig.TTL_SECONDS).size());
        assertTrue(errors.get(CassandraSinkConfig.CONTACT_POINTS).isEmpty());
    }

    @Test
    void connectorIsDiscoverableAndVersioned() throws Exception {
        String resource = "META-INF/services/" + SinkConnector.class.getName();
        try (BufferedReader reader = new BufferedReader(new InputStreamReader(
                getClass().getClassLoader().getResourceAsStream(resource), StandardCharsets.UTF_8))) {
            assertEquals(CassandraSinkConnector.class.getName(), reader.readLine().trim());
        }
        assertEquals("0.1.0", new CassandraSinkConnector().version());
    }
}
