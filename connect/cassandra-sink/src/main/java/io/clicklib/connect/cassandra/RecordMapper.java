package io.clicklib.connect.cassandra;

import java.util.List;
import java.util.Map;
import org.apache.kafka.connect.data.Field;
import org.apache.kafka.connect.data.Struct;

/** Turns a record value (a JSON object as a Map, or a Struct) into the INSERT's bound values. */
final class RecordMapper {

    /** A record that cannot become a row; the message names the column and the reason. */
    static final class RecordMappingException extends Exception {
        RecordMappingException(String message) {
            super(message);
        }
    }

    private final List<ColumnMapping> columns;

    RecordMapper(List<ColumnMapping> columns) {
        this.columns = List.copyOf(columns);
    }

    List<ColumnMapping> columns() {
        return columns;
    }

    /**
     * The values for the INSERT, in column order. A null entry means "leave the column unset":
     * missing and null fields of non-key columns are not written at all, because binding null
     * would write a tombstone for every absent field, which Cassandra pays for on every read.
     */
    Object[] values(Object recordValue) throws RecordMappingException {
        Object[] values = new Object[columns.size()];
        for (int i = 0; i < values.length; i++) {
            ColumnMapping column = columns.get(i);
            Object raw = field(recordValue, column.field());
            if (raw == null) {
                if (column.primaryKey()) {
                    throw new RecordMappingException("column " + column.describe() + ": primary key field \""
                            + column.field() + "\" is missing or null");
                }
                continue;
            }
            try {
                values[i] = ValueConverter.convert(raw, column.type());
            } catch (ValueConverter.ConversionException e) {
                throw new RecordMappingException("column " + column.describe() + ": field \"" + column.field()
                        + "\": " + e.getMessage());
            }
        }
        return values;
    }

    private static Object field(Object recordValue, String name) throws RecordMappingException {
        if (recordValue instanceof Map<?, ?> map) {
            Object value = map.get(name);
            if (value != null || map.containsKey(name)) {
                return value;
            }
            for (Map.Entry<?, ?> entry : map.entrySet()) {
                if (entry.getKey() instanceof String key && key.equalsIgnoreCase(name)) {
                    return entry.getValue();
                }
            }
            return null;
        }
        if (recordValue instanceof Struct struct) {
            Field field = struct.schema().field(name);
            if (field == null) {
                field = struct.schema().fields().stream()
                        .filter(candidate -> candidate.name().equalsIgnoreCase(name))
                        .findFirst()
                        .orElse(null);
            }
            return field == null ? null : struct.get(field);
        }
        throw new RecordMappingException("record value is " + ValueConverter.describe(recordValue)
                + ", expected a JSON object (JsonConverter with schemas.enable=false) or a Struct");
    }
}
