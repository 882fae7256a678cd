package io.clicklib.connect.cassandra;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.datastax.oss.driver.api.core.type.DataType;
import com.datastax.oss.driver.api.core.type.DataTypes;
import io.clicklib.connect.cassandra.ValueConverter.ConversionException;
import java.math.BigDecimal;
import java.math.BigInteger;
import java.nio.ByteBuffer;
import java.time.Instant;
import java.time.LocalDate;
import java.time.LocalTime;
import java.util.Arrays;
import java.util.Date;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.UUID;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class ValueConverterTest {

    private static Object convert(Object value, DataType type) {
        return ValueConverter.convert(value, type);
    }

    private static String error(Object value, DataType type) {
        return assertThrows(ConversionException.class, () -> convert(value, type)).getMessage();
    }

    @Test
    void text() {
        assertEquals("abc", convert("abc", DataTypes.TEXT));
        assertEquals("42", convert(42L, DataTypes.TEXT));
        assertEquals("true", convert(true, DataTypes.TEXT));
        assertEquals("100", convert(new BigDecimal("1E+2"), DataTypes.TEXT));
        assertTrue(error(Map.of("a", 1), DataTypes.TEXT).contains("a JSON object"));
        assertEquals("plain", convert("plain", DataTypes.ASCII));
        assertTrue(error("café", DataTypes.ASCII).contains("non-ASCII"));
    }

    @Test
    void wholeNumbersFromEveryJsonNumberType() {
        assertEquals(7, convert(7, DataTypes.INT));
        assertEquals(7, convert(7L, DataTypes.INT));
        assertEquals(7, convert(7.0, DataTypes.INT));
        assertEquals(7, convert(new BigDecimal("7.000"), DataTypes.INT));
        assertEquals(7, convert(" 7 ", DataTypes.INT));
        assertEquals(9_007_199_254_740_993L, convert(new BigDecimal("9007199254740993"), DataTypes.BIGINT));
        assertEquals(1_700_000_000_000L, convert(1.7e12, DataTypes.BIGINT));
        assertEquals((short) -3, convert(-3, DataTypes.SMALLINT));
        assertEquals((byte) 127, convert(127L, DataTypes.TINYINT));
        assertEquals(new BigInteger("123456789012345678901234567890"),
                convert(new BigDecimal("123456789012345678901234567890"), DataTypes.VARINT));
    }

    @Test
    void wholeNumbersRejectFractionsOverflowAndText() {
        assertTrue(error(1.5, DataTypes.INT).contains("not a whole number"));
        assertTrue(error(new BigDecimal("2.25"), DataTypes.BIGINT).contains("not a whole number"));
        assertTrue(error(3_000_000_000L, DataTypes.INT).contains("out of range for int"));
        assertTrue(error(128, DataTypes.TINYINT).contains("out of range for tinyint"));
        assertTrue(error(1e19, DataTypes.BIGINT).contains("out of range for bigint"));
        assertTrue(error(Double.NaN, DataTypes.INT).contains("cannot be stored"));
        assertTrue(error("twelve", DataTypes.INT).contains("cannot parse \"twelve\""));
        assertTrue(error(true, DataTypes.INT).contains("expected int"));
    }

    @Test
    void floatingPointAndDecimal() {
        assertEquals(1.5, convert(1.5, DataTypes.DOUBLE));
        assertEquals(3.0, convert(3, DataTypes.DOUBLE));
        assertEquals(0.25, convert("0.25", DataTypes.DOUBLE));
        assertEquals(0.1f, convert(0.1, DataTypes.FLOAT));
        assertTrue(error(1e300, DataTypes.FLOAT).contains("out of range for float"));
        // Doubles become decimals through their shortest form, not their binary expansion.
        assertEquals(new BigDecimal("0.1"), convert(0.1, DataTypes.DECIMAL));
        assertEquals(new BigDecimal("12"), convert(12, DataTypes.DECIMAL));
        assertEquals(new BigDecimal("12.3400"), convert(new BigDecimal("12.3400"), DataTypes.DECIMAL));
    }

    @Test
    void booleans() {
        assertEquals(true, convert(true, DataTypes.BOOLEAN));
        assertEquals(false, convert("FALSE", DataTypes.BOOLEAN));
        assertTrue(error("yes", DataTypes.BOOLEAN).contains("cannot parse"));
        assertTrue(error(1, DataTypes.BOOLEAN).contains("expected boolean"));
    }

    @Test
    void timestamps() {
        Instant instant = Instant.parse("2024-05-01T12:30:00.123Z");
        assertEquals(instant, convert(instant.toEpochMilli(), DataTypes.TIMESTAMP));
        assertEquals(instant, convert((double) instant.toEpochMilli(), DataTypes.TIMESTAMP));
        assertEquals(instant, convert(String.valueOf(instant.toEpochMilli()), DataTypes.TIMESTAMP));
        assertEquals(instant, convert("2024-05-01T12:30:00.123Z", DataTypes.TIMESTAMP));
        assertEquals(instant, convert("2024-05-01T14:30:00.123+02:00", DataTypes.TIMESTAMP));
        // Flink SQL's JSON format: space separator, no zone (taken as UTC).
        assertEquals(instant, convert("2024-05-01 12:30:00.123", DataTypes.TIMESTAMP));
        assertEquals(instant, convert(Date.from(instant), DataTypes.TIMESTAMP));
        assertTrue(error("yesterday", DataTypes.TIMESTAMP).contains("ISO-8601"));
        assertTrue(error(1.5, DataTypes.TIMESTAMP).contains("not a whole number"));
    }

    @Test
    void datesAndTimes() {
        assertEquals(LocalDate.of(2024, 5, 1), convert("2024-05-01", DataTypes.DATE));
        assertEquals(LocalDate.of(2024, 5, 1),
                convert(Date.from(Instant.parse("2024-05-01T00:00:00Z")), DataTypes.DATE));
        assertTrue(error("05/01/2024", DataTypes.DATE).contains("cannot parse"));
        assertTrue(error(19844, DataTypes.DATE).contains("expected date"));
        assertEquals(LocalTime.of(12, 30, 1), convert("12:30:01", DataTypes.TIME));
    }

    @Test
    void uuids() {
        String random = "123e4567-e89b-42d3-a456-426614174000";
        String timeBased = "c2f0b7a0-07b2-11ef-9262-0242ac120002";
        assertEquals(UUID.fromString(random), convert(random, DataTypes.UUID));
        assertEquals(UUID.fromString(timeBased), convert(timeBased, DataTypes.TIMEUUID));
        assertTrue(error(random, DataTypes.TIMEUUID).contains("version 4"));
        assertTrue(error("1-2-3-4-5", DataTypes.UUID).contains("cannot parse"));
        assertTrue(error(42, DataTypes.UUID).contains("expected uuid"));
    }

    @Test
    void blobs() {
        assertEquals(ByteBuffer.wrap(new byte[] {1, 2, 3}), convert("AQID", DataTypes.BLOB));
        assertEquals(ByteBuffer.wrap(new byte[] {4}), convert(new byte[] {4}, DataTypes.BLOB));
        assertTrue(error("not base64!", DataTypes.BLOB).contains("base64"));
    }

    @Test
    void collections() {
        assertEquals(Set.of("a", "b"), convert(List.of("a", "b", "a"), DataTypes.setOf(DataTypes.TEXT)));
        assertEquals(List.of("x", "y"), convert(List.of("x", "y"), DataTypes.listOf(DataTypes.TEXT)));
        assertEquals(List.of(1, 2), convert(List.of(1L, 2.0), DataTypes.frozenListOf(DataTypes.INT)));
        Map<String, Object> json = new LinkedHashMap<>();
        json.put("utm_source", "mail");
        json.put("n", 3);
        assertEquals(Map.of("utm_source", "mail", "n", "3"),
                convert(json, DataTypes.mapOf(DataTypes.TEXT, DataTypes.TEXT)));
        assertEquals(Map.of(1, "one"), convert(Map.of("1", "one"), DataTypes.mapOf(DataTypes.INT, DataTypes.TEXT)));

        assertTrue(error("a", DataTypes.setOf(DataTypes.TEXT)).contains("a JSON array"));
        assertTrue(error(Arrays.asList("a", null), DataTypes.listOf(DataTypes.TEXT)).contains("null element"));
        assertTrue(error(List.of(1.5), DataTypes.setOf(DataTypes.INT)).contains("not a whole number"));
        assertTrue(error(List.of(), DataTypes.mapOf(DataTypes.TEXT, DataTypes.TEXT)).contains("a JSON object"));
    }

    @ParameterizedTest
    @ValueSource(strings = {"text", "int", "bigint", "timestamp", "uuid", "timeuuid", "boolean", "decimal"})
    void supportsCommonTypes(String name) throws Exception {
        DataType type = (DataType) DataTypes.class.getField(name.toUpperCase()).get(null);
        assertTrue(ValueConverter.supports(type));
    }

    @Test
    void unsupportedTypes() {
        assertFalse(ValueConverter.supports(DataTypes.COUNTER));
        assertFalse(ValueConverter.supports(DataTypes.DURATION));
        assertFalse(ValueConverter.supports(DataTypes.setOf(DataTypes.DURATION)));
        assertTrue(ValueConverter.supports(DataTypes.mapOf(DataTypes.TEXT, DataTypes.listOf(DataTypes.INT))));
        assertTrue(error(1, DataTypes.DURATION).contains("not supported"));
    }
}
