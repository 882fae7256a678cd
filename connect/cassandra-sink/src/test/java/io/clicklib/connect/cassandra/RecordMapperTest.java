package io.clicklib.connect.cassandra;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.datastax.oss.driver.api.core.CqlIdentifier;
import com.datastax.oss.driver.api.core.type.DataTypes;
import io.clicklib.connect.cassandra.RecordMapper.RecordMappingException;
import java.time.Instant;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.apache.kafka.connect.data.Schema;
import org.apache.kafka.connect.data.SchemaBuilder;
import org.apache.kafka.connect.data.Struct;
import org.junit.jupiter.api.Test;

class RecordMapperTest {

    private static ColumnMapping column(String name, com.datastax.oss.driver.api.core.type.DataType type,
            String field, boolean key) {
        return new ColumnMapping(CqlIdentifier.fromCql(name), type, field, key);
    }

    private final RecordMapper mapper = new RecordMapper(List.of(
            column("user_id", DataTypes.TEXT, "user_id", true),
            column("event_time", DataTypes.TIMESTAMP, "event_time", true),
            column("page", DataTypes.TEXT, "page", false),
            column("tags", DataTypes.setOf(DataTypes.TEXT), "tags", false)));

    @Test
    void mapsJsonObjectsCaseInsensitively() throws Exception {
        Map<String, Object> value = Map.of(
                "User_Id", "u1", "event_time", 1_714_566_600_000L, "PAGE", "/home", "tags", List.of("a"));
        assertArrayEquals(new Object[] {"u1", Instant.ofEpochMilli(1_714_566_600_000L), "/home", Set.of("a")},
                mapper.values(value));
    }

    @Test
    void missingAndNullFieldsOfOtherColumnsStayUnset() throws Exception {
        Map<String, Object> value = new HashMap<>();
        value.put("user_id", "u1");
        value.put("event_time", "2024-05-01T12:30:00Z");
        value.put("page", null);
        Object[] values = mapper.values(value);
        assertEquals(null, values[2]);
        assertEquals(null, values[3]);
    }

    @Test
    void keyColumnsMustHaveValues() {
        Map<String, Object> value = new HashMap<>();
        value.put("user_id", null);
        value.put("event_time", 1L);
        String message = assertThrows(RecordMappingException.class, () -> mapper.values(value)).getMessage();
        assertTrue(message.contains("user_id"), message);
        assertTrue(message.contains("primary key"), message);
    }

    @Test
    void conversionErrorsNameTheColumn() {
        String message = assertThrows(RecordMappingException.class,
                () -> mapper.values(Map.of("user_id", "u1", "event_time", "soon"))).getMessage();
        assertTrue(message.startsWith("column event_time (timestamp): field \"event_time\": cannot parse"), message);
    }

    @Test
    void rejectsValuesThatAreNotObjects() {
        String message = assertThrows(RecordMappingException.class, () -> mapper.values("plain text")).getMessage();
        assertTrue(message.contains("expected a JSON object"), message);
    }

    @Test
    void mapsStructs() throws Exception {
        Schema schema = SchemaBuilder.struct()
                .field("USER_ID", Schema.STRING_SCHEMA)
                .field("event_time", Schema.INT64_SCHEMA)
                .field("page", Schema.OPTIONAL_STRING_SCHEMA)
                .build();
        Struct struct = new Struct(schema).put("USER_ID", "u2").put("event_time", 5L);
        assertArrayEquals(new Object[] {"u2", Instant.ofEpochMilli(5L), null, null}, mapper.values(struct));
    }
}
