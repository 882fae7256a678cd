package io.clicklib.connect.cassandra;

import com.datastax.oss.driver.api.core.type.ContainerType;
import com.datastax.oss.driver.api.core.type.DataType;
import com.datastax.oss.driver.api.core.type.DataTypes;
import com.datastax.oss.driver.api.core.type.ListType;
import com.datastax.oss.driver.api.core.type.MapType;
import com.datastax.oss.driver.api.core.type.SetType;
import java.math.BigDecimal;
import java.math.BigInteger;
import java.nio.ByteBuffer;
import java.time.Instant;
import java.time.LocalDate;
import java.time.LocalDateTime;
import java.time.LocalTime;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.time.format.DateTimeFormatterBuilder;
import java.time.format.DateTimeParseException;
import java.time.temporal.ChronoField;
import java.time.temporal.TemporalAccessor;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Collection;
import java.util.Date;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.UUID;
import java.util.function.Function;
import java.util.regex.Pattern;

/**
 * Converts a field value, as Kafka Connect hands it over (JSON via JsonConverter without schemas,
 * or a Struct field), into the Java type the Cassandra driver's default codec expects for a column.
 *
 * <p>Conversions never lose information silently: a fraction bound for an integer column, a number
 * out of the column's range or an unparseable string is an error that names the reason, so the
 * record can go to the dead letter queue instead of being written wrong.
 */
final class ValueConverter {

    /** Why a value does not fit its column; the message is meant for the person reading the DLQ. */
    static final class ConversionException extends RuntimeException {
        ConversionException(String message) {
            super(message);
        }
    }

    private static final Map<DataType, Function<Object, Object>> SCALARS = Map.ofEntries(
            Map.entry(DataTypes.TEXT, ValueConverter::toText),
            Map.entry(DataTypes.ASCII, ValueConverter::toAscii),
            Map.entry(DataTypes.BIGINT, value -> toWhole(value, "bigint", Long.MIN_VALUE, Long.MAX_VALUE)),
            Map.entry(DataTypes.INT, value -> (int) toWhole(value, "int", Integer.MIN_VALUE, Integer.MAX_VALUE)),
            Map.entry(DataTypes.SMALLINT, value -> (short) toWhole(value, "smallint", Short.MIN_VALUE, Short.MAX_VALUE)),
            Map.entry(DataTypes.TINYINT, value -> (byte) toWhole(value, "tinyint", Byte.MIN_VALUE, Byte.MAX_VALUE)),
            Map.entry(DataTypes.VARINT, ValueConverter::toVarint),
            Map.entry(DataTypes.DECIMAL, value -> toBigDecimal(value, "decimal")),
            Map.entry(DataTypes.DOUBLE, ValueConverter::toDouble),
            Map.entry(DataTypes.FLOAT, ValueConverter::toFloat),
            Map.entry(DataTypes.BOOLEAN, ValueConverter::toBoolean),
            Map.entry(DataTypes.TIMESTAMP, ValueConverter::toInstant),
            Map.entry(DataTypes.DATE, ValueConverter::toLocalDate),
            Map.entry(DataTypes.TIME, ValueConverter::toLocalTime),
            Map.entry(DataTypes.UUID, value -> toUuid(value, "uuid")),
            Map.entry(DataTypes.TIMEUUID, ValueConverter::toTimeUuid),
            Map.entry(DataTypes.BLOB, ValueConverter::toBlob));

    /**
     * ISO-8601 date-time with 'T' or a space between date and time, and an optional offset.
     * The space form is what Flink SQL's JSON format writes by default.
     */
    private static final DateTimeFormatter DATE_TIME = new DateTimeFormatterBuilder()
            .parseCaseInsensitive()
            .append(DateTimeFormatter.ISO_LOCAL_DATE)
            .optionalStart().appendLiteral('T').optionalEnd()
            .optionalStart().appendLiteral(' ').optionalEnd()
            .append(DateTimeFormatter.ISO_LOCAL_TIME)
            .optionalStart().appendOffsetId().optionalEnd()
            .toFormatter();

    private static final Pattern EPOCH_MILLIS = Pattern.compile("-?\\d+");

    private ValueConverter() {}

    /** Whether columns of this type can be written; checked once when the table is resolved. */
    static boolean supports(DataType type) {
        if (type instanceof ListType || type instanceof SetType) {
            return supports(((ContainerType) type).getElementType());
        }
        if (type instanceof MapType map) {
            return supports(map.getKeyType()) && supports(map.getValueType());
        }
        return SCALARS.containsKey(type);
    }

    /**
     * Converts a non-null value for a column of the given type.
     *
     * @throws ConversionException if the value cannot represent a value of that type
     */
    static Object convert(Object value, DataType type) {
        if (type instanceof ListType list) {
            return convertElements(value, type, list.getElementType(), new ArrayList<>());
        }
        if (type instanceof SetType set) {
            return convertElements(value, type, set.getElementType(), new LinkedHashSet<>());
        }
        if (type instanceof MapType mapType) {
            return convertMap(value, mapType);
        }
        Function<Object, Object> converter = SCALARS.get(type);
        if (converter == null) {
            throw new ConversionException("columns of type " + type.asCql(false, true) + " are not supported");
        }
        return converter.apply(value);
    }

    private static <C extends Collection<Object>> C convertElements(
            Object value, DataType type, DataType elementType, C target) {
        if (!(value instanceof Collection<?> elements)) {
            throw mismatch(value, type.asCql(false, true) + " (a JSON array)");
        }
        for (Object element : elements) {
            if (element == null) {
                throw new ConversionException("null element in " + describe(value)
                        + ": Cassandra collections cannot hold nulls");
            }
            target.add(convert(element, elementType));
        }
        return target;
    }

    private static Map<Object, Object> convertMap(Object value, MapType type) {
        if (!(value instanceof Map<?, ?> entries)) {
            throw mismatch(value, type.asCql(false, true) + " (a JSON object)");
        }
        Map<Object, Object> converted = new LinkedHashMap<>();
        for (Map.Entry<?, ?> entry : entries.entrySet()) {
            if (entry.getKey() == null || entry.getValue() == null) {
                throw new ConversionException("null key or value in " + describe(value)
                        + ": Cassandra maps cannot hold nulls");
            }
            converted.put(convert(entry.getKey(), type.getKeyType()), convert(entry.getValue(), type.getValueType()));
        }
        return converted;
    }

    private static String toText(Object value) {
        if (value instanceof CharSequence || value instanceof Boolean || value instanceof Character) {
            return value.toString();
        }
        if (value instanceof BigDecimal decimal) {
            return decimal.toPlainString();
        }
        if (value instanceof Number) {
            return value.toString();
        }
        throw mismatch(value, "text");
    }

    private static String toAscii(Object value) {
        String text = toText(value);
        for (int i = 0; i < text.length(); i++) {
            if (text.charAt(i) > 0x7F) {
                throw new ConversionException(describe(value) + " has non-ASCII characters for an ascii column");
            }
        }
        return text;
    }

    /** The exact decimal value of a number or numeric string; doubles go through their shortest form. */
    private static BigDecimal toBigDecimal(Object value, String typeName) {
        if (value instanceof BigDecimal decimal) {
            return decimal;
        }
        if (value instanceof Long || value instanceof Integer || value instanceof Short || value instanceof Byte) {
            return BigDecimal.valueOf(((Number) value).longValue());
        }
        if (value instanceof BigInteger integer) {
            return new BigDecimal(integer);
        }
        if (value instanceof Double || value instanceof Float) {
            double number = ((Number) value).doubleValue();
            if (!Double.isFinite(number)) {
                throw new ConversionException(value + " cannot be stored as " + typeName);
            }
            // Float.toString keeps 0.1f as 0.1 instead of its binary expansion 0.100000001490116...
            return value instanceof Float ? new BigDecimal(value.toString()) : BigDecimal.valueOf(number);
        }
        if (value instanceof CharSequence text) {
            try {
                return new BigDecimal(text.toString().trim());
            } catch (NumberFormatException e) {
                throw new ConversionException("cannot parse " + describe(value) + " as " + typeName);
            }
        }
        throw mismatch(value, typeName);
    }

    private static BigInteger toWholeNumber(Object value, String typeName) {
        if (value instanceof Long || value instanceof Integer || value instanceof Short || value instanceof Byte) {
            return BigInteger.valueOf(((Number) value).longValue());
        }
        BigDecimal decimal = toBigDecimal(value, typeName);
        try {
            return decimal.toBigIntegerExact();
        } catch (ArithmeticException e) {
            throw new ConversionException(describe(value) + " is not a whole number, as " + typeName + " needs");
        }
    }

    private static long toWhole(Object value, String typeName, long min, long max) {
        BigInteger whole = toWholeNumber(value, typeName);
        if (whole.bitLength() > 63 || whole.longValue() < min || whole.longValue() > max) {
            throw new ConversionException(describe(value) + " is out of range for " + typeName
                    + " (" + min + " to " + max + ")");
        }
        return whole.longValue();
    }

    private static BigInteger toVarint(Object value) {
        return toWholeNumber(value, "varint");
    }

    private static double toDouble(Object value) {
        if (value instanceof Number number && !(value instanceof BigDecimal) && !(value instanceof BigInteger)) {
            return number.doubleValue();
        }
        double number = toBigDecimal(value, "double").doubleValue();
        if (Double.isInfinite(number)) {
            throw new ConversionException(describe(value) + " is out of range for double");
        }
        return number;
    }

    private static float toFloat(Object value) {
        double number = toDouble(value);
        float narrowed = (float) number;
        if (Float.isInfinite(narrowed) && !Double.isInfinite(number)) {
            throw new ConversionException(describe(value) + " is out of range for float");
        }
        return narrowed;
    }

    private static boolean toBoolean(Object value) {
        if (value instanceof Boolean bool) {
            return bool;
        }
        if (value instanceof CharSequence text) {
            String word = text.toString().trim();
            if (word.equalsIgnoreCase("true")) {
                return true;
            }
            if (word.equalsIgnoreCase("false")) {
                return false;
            }
            throw new ConversionException("cannot parse " + describe(value) + " as boolean (true or false)");
        }
        throw mismatch(value, "boolean");
    }

    private static Instant toInstant(Object value) {
        if (value instanceof Instant instant) {
            return instant;
        }
        if (value instanceof Date date) {
            return date.toInstant();
        }
        if (value instanceof Number) {
            return Instant.ofEpochMilli(toWhole(value, "timestamp (epoch milliseconds)", Long.MIN_VALUE, Long.MAX_VALUE));
        }
        if (value instanceof CharSequence chars) {
            String text = chars.toString().trim();
            if (EPOCH_MILLIS.matcher(text).matches()) {
                return Instant.ofEpochMilli(toWhole(text, "timestamp (epoch milliseconds)", Long.MIN_VALUE, Long.MAX_VALUE));
            }
            try {
                TemporalAccessor parsed = DATE_TIME.parse(text);
                // Without an offset the time is taken as UTC, the zone Flink SQL writes TIMESTAMP in.
                return parsed.isSupported(ChronoField.OFFSET_SECONDS)
                        ? OffsetDateTime.from(parsed).toInstant()
                        : LocalDateTime.from(parsed).toInstant(ZoneOffset.UTC);
            } catch (DateTimeParseException e) {
                throw new ConversionException("cannot parse " + describe(value)
                        + " as timestamp (expected epoch milliseconds or ISO-8601 like 2024-05-01T12:30:00Z)");
            }
        }
        throw mismatch(value, "timestamp");
    }

    private static LocalDate toLocalDate(Object value) {
        if (value instanceof LocalDate date) {
            return date;
        }
        if (value instanceof Date date) {
            return LocalDate.ofInstant(date.toInstant(), ZoneOffset.UTC);
        }
        if (value instanceof CharSequence text) {
            try {
                return LocalDate.parse(text.toString().trim());
            } catch (DateTimeParseException e) {
                throw new ConversionException("cannot parse " + describe(value) + " as date (expected 2024-05-01)");
            }
        }
        throw mismatch(value, "date (an ISO-8601 string like 2024-05-01)");
    }

    private static LocalTime toLocalTime(Object value) {
        if (value instanceof LocalTime time) {
            return time;
        }
        if (value instanceof Date date) {
            // Connect's Time logical type: milliseconds since midnight carried in a Date.
            return LocalTime.ofNanoOfDay(Math.floorMod(date.getTime(), 86_400_000L) * 1_000_000L);
        }
        if (value instanceof CharSequence text) {
            try {
                return LocalTime.parse(text.toString().trim());
            } catch (DateTimeParseException e) {
                throw new ConversionException("cannot parse " + describe(value) + " as time (expected 12:30:00.000)");
            }
        }
        throw mismatch(value, "time (an ISO-8601 string like 12:30:00)");
    }

    private static UUID toUuid(Object value, String typeName) {
        if (value instanceof UUID uuid) {
            return uuid;
        }
        if (value instanceof CharSequence text) {
            String trimmed = text.toString().trim();
            // UUID.fromString accepts shortened groups such as 1-2-3-4-5; Cassandra's text form does not.
            if (trimmed.length() == 36) {
                try {
                    return UUID.fromString(trimmed);
                } catch (IllegalArgumentException e) {
                    // fall through to the error below
                }
            }
            throw new ConversionException("cannot parse " + describe(value) + " as " + typeName);
        }
        throw mismatch(value, typeName + " (a string)");
    }

    private static UUID toTimeUuid(Object value) {
        UUID uuid = toUuid(value, "timeuuid");
        if (uuid.version() != 1) {
            throw new ConversionException(describe(value) + " is a version " + uuid.version()
                    + " UUID; timeuuid needs version 1");
        }
        return uuid;
    }

    private static ByteBuffer toBlob(Object value) {
        if (value instanceof ByteBuffer buffer) {
            return buffer.duplicate();
        }
        if (value instanceof byte[] bytes) {
            return ByteBuffer.wrap(bytes);
        }
        if (value instanceof CharSequence text) {
            // JSON has no bytes; base64 is how Kafka's JsonConverter writes them.
            try {
                return ByteBuffer.wrap(Base64.getDecoder().decode(text.toString().trim()));
            } catch (IllegalArgumentException e) {
                throw new ConversionException("cannot decode " + describe(value) + " as base64 for a blob column");
            }
        }
        throw mismatch(value, "blob (a base64 string)");
    }

    private static ConversionException mismatch(Object value, String expected) {
        return new ConversionException("expected " + expected + ", got " + describe(value));
    }

    /** A short, readable rendering of a value for error messages (records may be large). */
    static String describe(Object value) {
        if (value instanceof CharSequence text) {
            String shown = text.length() > 60 ? text.subSequence(0, 57) + "..." : text.toString();
            return "\"" + shown + "\"";
        }
        if (value instanceof Map<?, ?>) {
            return "a JSON object";
        }
        if (value instanceof List<?> || value instanceof Set<?>) {
            return "a JSON array";
        }
        if (value instanceof Number || value instanceof Boolean) {
            return value.toString();
        }
        return "a " + value.getClass().getSimpleName();
    }
}
