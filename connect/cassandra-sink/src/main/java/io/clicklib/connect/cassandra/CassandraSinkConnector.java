package io.clicklib.connect.cassandra;

import com.datastax.oss.driver.api.core.CqlSession;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Function;
import java.util.stream.Collectors;
import org.apache.kafka.common.config.Config;
import org.apache.kafka.common.config.ConfigDef;
import org.apache.kafka.common.config.ConfigValue;
import org.apache.kafka.connect.connector.Task;
import org.apache.kafka.connect.sink.SinkConnector;

/** Kafka Connect sink that upserts each record into one Cassandra table. */
public class CassandraSinkConnector extends SinkConnector {

    private Map<String, String> props;

    @Override
    public void start(Map<String, String> props) {
        new CassandraSinkConfig(props); // fail fast on a bad config; tasks parse their own copy
        this.props = new HashMap<>(props);
    }

    @Override
    public Class<? extends Task> taskClass() {
        return CassandraSinkTask.class;
    }

    @Override
    public List<Map<String, String>> taskConfigs(int maxTasks) {
        // Every task writes the same table; Connect spreads the topic partitions across them.
        List<Map<String, String>> configs = new ArrayList<>(maxTasks);
        for (int i = 0; i < maxTasks; i++) {
            configs.add(new HashMap<>(props));
        }
        return configs;
    }

    @Override
    public void stop() {
        // Nothing to release: the connector itself holds no session.
    }

    @Override
    public ConfigDef config() {
        return CassandraSinkConfig.CONFIG_DEF;
    }

    @Override
    public String version() {
        return Version.VERSION;
    }

    /**
     * Besides the syntax checks, checks the config against the live cluster, so that Connect's
     * {@code PUT /connectors/{name}/config} answers 400 with the reason instead of creating a
     * connector whose tasks then fail.
     */
    @Override
    public Config validate(Map<String, String> connectorConfigs) {
        Config result = super.validate(connectorConfigs);
        Map<String, ConfigValue> values = result.configValues().stream()
                .collect(Collectors.toMap(ConfigValue::name, Function.identity(), (a, b) -> a));
        boolean syntaxErrors = values.values().stream().anyMatch(value -> !value.errorMessages().isEmpty());
        if (syntaxErrors) {
            return result;
        }
        CassandraSinkConfig config = new CassandraSinkConfig(connectorConfigs);
        CqlSession session;
        try {
            session = config.openSession();
        } catch (RuntimeException e) {
            values.get(CassandraSinkConfig.CONTACT_POINTS).addErrorMessage("cannot connect to Cassandra at "
                    + config.contactPointsDescription() + " (" + CassandraSinkConfig.LOCAL_DATACENTER + "="
                    + config.localDatacenter() + "): " + e.getMessage());
            return result;
        }
        try (session) {
            TargetTable.resolve(session.getMetadata(), config);
        } catch (TargetTable.InvalidTargetException e) {
            values.get(e.configKey()).addErrorMessage(e.getMessage());
        }
        return result;
    }
}
