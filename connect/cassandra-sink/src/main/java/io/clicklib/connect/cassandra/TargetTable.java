package io.clicklib.connect.cassandra;

import com.datastax.oss.driver.api.core.CqlIdentifier;
import com.datastax.oss.driver.api.core.metadata.Metadata;
import com.datastax.oss.driver.api.core.metadata.Node;
import com.datastax.oss.driver.api.core.metadata.schema.ColumnMetadata;
import com.datastax.oss.driver.api.core.metadata.schema.KeyspaceMetadata;
import com.datastax.oss.driver.api.core.metadata.schema.TableMetadata;
import com.datastax.oss.driver.api.core.type.DataTypes;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.TreeSet;
import java.util.stream.Collectors;

/**
 * The configured table as found in the cluster's schema, with the columns the connector writes.
 * Resolved the same way by {@link CassandraSinkConnector#validate} and by each task's start, so a
 * config that passes validation is one the tasks can run.
 */
final class TargetTable {

    /** The configuration does not fit the cluster; {@link #configKey()} is the setting to fix. */
    static final class InvalidTargetException extends Exception {
        private final String configKey;

        InvalidTargetException(String configKey, String message) {
            super(message);
            this.configKey = configKey;
        }

        String configKey() {
            return configKey;
        }
    }

    private final String qualifiedName;
    private final List<ColumnMapping> columns;

    private TargetTable(String qualifiedName, List<ColumnMapping> columns) {
        this.qualifiedName = qualifiedName;
        this.columns = List.copyOf(columns);
    }

    static TargetTable resolve(Metadata metadata, CassandraSinkConfig config) throws InvalidTargetException {
        checkDatacenter(metadata, config);
        String where = " in Cassandra at " + config.contactPointsDescription();
        KeyspaceMetadata keyspace = metadata.getKeyspace(config.keyspace())
                .orElseThrow(() -> new InvalidTargetException(CassandraSinkConfig.KEYSPACE,
                        "keyspace " + config.keyspace().asCql(true) + " does not exist" + where
                                + "; create it (clicklib applies cassandra/schema.cql) or fix "
                                + CassandraSinkConfig.KEYSPACE));
        TableMetadata table = keyspace.getTable(config.table())
                .orElseThrow(() -> new InvalidTargetException(CassandraSinkConfig.TABLE,
                        "table " + config.qualifiedTable() + " does not exist" + where
                                + "; create it (clicklib applies cassandra/schema.cql) or fix "
                                + CassandraSinkConfig.TABLE));

        Set<CqlIdentifier> primaryKey = table.getPrimaryKey().stream()
                .map(ColumnMetadata::getName)
                .collect(Collectors.toSet());
        if (table.getColumns().values().stream().anyMatch(c -> c.getType().equals(DataTypes.COUNTER))) {
            throw new InvalidTargetException(CassandraSinkConfig.TABLE, "table " + config.qualifiedTable()
                    + " has counter columns, which cannot be written with INSERT");
        }

        Map<CqlIdentifier, String> mapping = config.mapping();
        List<ColumnMapping> columns = new ArrayList<>();
        if (mapping.isEmpty()) {
            for (ColumnMetadata column : table.getColumns().values()) {
                columns.add(new ColumnMapping(column.getName(), column.getType(), column.getName().asInternal(),
                        primaryKey.contains(column.getName())));
            }
        } else {
            for (Map.Entry<CqlIdentifier, String> entry : mapping.entrySet()) {
                ColumnMetadata column = table.getColumn(entry.getKey())
                        .orElseThrow(() -> new InvalidTargetException(CassandraSinkConfig.MAPPING,
                                "column " + entry.getKey().asCql(true) + " does not exist in table "
                                        + config.qualifiedTable() + " (its columns: "
                                        + names(table.getColumns().keySet()) + ")"));
                columns.add(new ColumnMapping(column.getName(), column.getType(), entry.getValue(),
                        primaryKey.contains(column.getName())));
            }
            Set<CqlIdentifier> unmappedKey = new LinkedHashSet<>(primaryKey);
            unmappedKey.removeAll(mapping.keySet());
            if (!unmappedKey.isEmpty()) {
                throw new InvalidTargetException(CassandraSinkConfig.MAPPING, "the mapping leaves out primary key "
                        + "column(s) " + names(unmappedKey) + " of " + config.qualifiedTable()
                        + "; every primary key column needs a field");
            }
        }

        List<String> unsupported = columns.stream()
                .filter(column -> !ValueConverter.supports(column.type()))
                .map(ColumnMapping::describe)
                .collect(Collectors.toList());
        if (!unsupported.isEmpty()) {
            throw new InvalidTargetException(mapping.isEmpty() ? CassandraSinkConfig.TABLE : CassandraSinkConfig.MAPPING,
                    "cannot write column(s) of unsupported type: " + String.join(", ", unsupported)
                            + (mapping.isEmpty() ? "; list the other columns in " + CassandraSinkConfig.MAPPING : ""));
        }
        return new TargetTable(config.qualifiedTable(), columns);
    }

    /**
     * With a local datacenter no node belongs to, the driver connects but then has no node to send
     * requests to; say so up front rather than failing every write.
     */
    private static void checkDatacenter(Metadata metadata, CassandraSinkConfig config) throws InvalidTargetException {
        Set<String> datacenters = metadata.getNodes().values().stream()
                .map(Node::getDatacenter)
                .filter(Objects::nonNull)
                .collect(Collectors.toCollection(TreeSet::new));
        if (!datacenters.isEmpty() && !datacenters.contains(config.localDatacenter())) {
            throw new InvalidTargetException(CassandraSinkConfig.LOCAL_DATACENTER, "no node of Cassandra at "
                    + config.contactPointsDescription() + " is in datacenter '" + config.localDatacenter()
                    + "'; the cluster has " + String.join(", ", datacenters));
        }
    }

    String qualifiedName() {
        return qualifiedName;
    }

    List<ColumnMapping> columns() {
        return columns;
    }

    /** The upsert every record becomes; columns left unset by a record keep their stored value. */
    String insertCql(int ttlSeconds) {
        String names = columns.stream().map(c -> c.column().asCql(true)).collect(Collectors.joining(", "));
        String markers = columns.stream().map(c -> "?").collect(Collectors.joining(", "));
        String ttl = ttlSeconds > 0 ? " USING TTL " + ttlSeconds : "";
        return "INSERT INTO " + qualifiedName + " (" + names + ") VALUES (" + markers + ")" + ttl;
    }

    private static String names(Set<CqlIdentifier> ids) {
        return ids.stream().map(id -> id.asCql(true)).collect(Collectors.joining(", "));
    }
}
