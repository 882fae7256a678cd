package io.clicklib.flink;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.table.catalog.DataTypeFactory;
import org.apache.flink.table.catalog.UnresolvedIdentifier;
import org.apache.flink.table.types.AbstractDataType;
import org.apache.flink.table.types.DataType;
import org.apache.flink.table.types.extraction.TypeInferenceExtractor;
import org.apache.flink.table.types.inference.TypeInference;
import org.apache.flink.table.types.logical.LogicalType;
import org.apache.flink.table.types.logical.utils.LogicalTypeParser;
import org.apache.flink.table.types.utils.TypeConversions;
import org.junit.jupiter.api.Test;

/**
 * The function's signature as Flink's planner infers it from the class: what
 * ksql/02_validated_events.sql calls, with the raw topic read as BYTES.
 */
class CheckClickEventSignatureTest {

  @Test
  void takesTheRawBytesAndEmitsTheDeadLetterColumnsLast() {
    TypeInference inference = TypeInferenceExtractor.forTableFunction(new Types(), CheckClickEvent.class);
    assertEquals(
        "[message => BYTES, earliestMs => BIGINT, maxAheadMs => BIGINT]",
        inference.getStaticArguments().orElseThrow().toString());
    // An explicit output type (the function hint's) needs no call to infer it from.
    assertEquals(
        "ROW<`invalid_reason` STRING, `event_id` STRING, `date` BIGINT, `session_id` STRING,"
            + " `user_id` STRING, `event` STRING, `page_type` STRING, `current_url` STRING,"
            + " `referrer` STRING, `partner_id` STRING, `partner_name` STRING,"
            + " `init_session` BOOLEAN, `user_agent` STRING, `ip` STRING, `city` STRING,"
            + " `country` STRING, `language` STRING, `status` BIGINT, `message_text` STRING,"
            + " `message_base64` STRING>",
        inference.getOutputTypeStrategy().inferType(null).orElseThrow().toString());
  }

  /** Just enough of a catalog's type factory to read the function's type hints. */
  private static final class Types implements DataTypeFactory {
    @Override
    public DataType createDataType(AbstractDataType<?> type) {
      if (type instanceof DataType) {
        return (DataType) type;
      }
      throw new UnsupportedOperationException(type.toString());
    }

    @Override
    public DataType createDataType(String name) {
      return TypeConversions.fromLogicalToDataType(createLogicalType(name));
    }

    @Override
    public DataType createDataType(UnresolvedIdentifier identifier) {
      throw new UnsupportedOperationException(identifier.toString());
    }

    @Override
    public <T> DataType createDataType(Class<T> clazz) {
      throw new UnsupportedOperationException(clazz.toString());
    }

    @Override
    public <T> DataType createDataType(TypeInformation<T> typeInfo) {
      throw new UnsupportedOperationException(typeInfo.toString());
    }

    @Override
    public <T> DataType createRawDataType(Class<T> clazz) {
      throw new UnsupportedOperationException(clazz.toString());
    }

    @Override
    public <T> DataType createRawDataType(TypeInformation<T> typeInfo) {
      throw new UnsupportedOperationException(typeInfo.toString());
    }

    @Override
    public LogicalType createLogicalType(String name) {
      return LogicalTypeParser.parse(name, getClass().getClassLoader());
    }

    @Override
    public LogicalType createLogicalType(UnresolvedIdentifier identifier) {
      throw new UnsupportedOperationException(identifier.toString());
    }
  }
}
