package io.clicklib.connect.cassandra;

import com.datastax.oss.driver.api.core.CqlIdentifier;
import com.datastax.oss.driver.api.core.type.DataType;

/**
 * One column of the INSERT and the record field that feeds it.
 *
 * @param column the Cassandra column
 * @param type its CQL type
 * @param field the record field name, looked up exactly first and then case-insensitively
 * @param primaryKey whether the column is part of the primary key, so must always have a value
 */
record ColumnMapping(CqlIdentifier column, DataType type, String field, boolean primaryKey) {

    /** The column as it would appear in CQL, with its type, for messages. */
    String describe() {
        return column.asCql(true) + " (" + type.asCql(false, true) + ")";
    }
}
