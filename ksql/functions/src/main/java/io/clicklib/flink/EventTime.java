package io.clicklib.flink;

import org.apache.flink.table.functions.ScalarFunction;
import org.apache.flink.types.Row;

/**
 * The event time of one record of the valid events topic, for the watermark of the jobs that read
 * it: the record's {@code date} when it is a valid event, else 0.
 *
 * <p>Any Kafka client can write that topic, so a record there is checked again like a raw
 * message (same rules, same clock bound). A record that fails the check is dead-lettered by the
 * reading job; its event time of 0 (1970) can never move a watermark, which only ever follows the
 * highest time seen, so one bad record cannot make every later event late. The watermark needs a
 * value for every record (a NULL event time fails the job), hence 0 rather than NULL.
 */
public class EventTime extends ScalarFunction {

  public long eval(byte[] record, Long earliestMs, Long maxAheadMs) {
    Row checked =
        CheckClickEvent.check(
            record,
            earliestMs == null ? CheckClickEvent.EARLIEST_MS : earliestMs,
            maxAheadMs == null ? CheckClickEvent.MAX_AHEAD_MS : maxAheadMs,
            System.currentTimeMillis());
    return checked.getField(0) == null ? (Long) checked.getField(2) : 0L;
  }
}
