package io.clicklib.connect.cassandra;

import com.datastax.oss.driver.api.core.CqlSession;
import com.datastax.oss.driver.api.core.DriverException;
import com.datastax.oss.driver.api.core.cql.BoundStatement;
import com.datastax.oss.driver.api.core.cql.BoundStatementBuilder;
import com.datastax.oss.driver.api.core.cql.PreparedStatement;
import com.datastax.oss.driver.api.core.servererrors.FunctionFailureException;
import com.datastax.oss.driver.api.core.servererrors.InvalidQueryException;
import com.datastax.oss.driver.api.core.servererrors.ProtocolError;
import com.datastax.oss.driver.api.core.servererrors.QueryValidationException;
import com.datastax.oss.driver.api.core.type.codec.CodecNotFoundException;
import com.datastax.oss.driver.api.core.type.codec.TypeCodec;
import com.datastax.oss.driver.api.core.type.codec.registry.CodecRegistry;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.Semaphore;
import java.util.stream.Collectors;
import org.apache.kafka.connect.errors.ConnectException;
import org.apache.kafka.connect.errors.DataException;
import org.apache.kafka.connect.errors.RetriableException;
import org.apache.kafka.connect.sink.ErrantRecordReporter;
import org.apache.kafka.connect.sink.SinkRecord;
import org.apache.kafka.connect.sink.SinkTask;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Upserts each record of a batch into the configured table.
 *
 * <p>{@link #put} returns only once every write of the batch has succeeded or its record has been
 * handed to the errant record reporter. Connect commits offsets only for batches that put()
 * accepted, so a committed offset never covers an unwritten record, and {@link #flush} has
 * nothing left to do. A transient failure fails the whole batch with a {@link RetriableException};
 * Connect then redelivers it, which is safe because INSERTs are upserts.
 */
public class CassandraSinkTask extends SinkTask {

    private static final Logger log = LoggerFactory.getLogger(CassandraSinkTask.class);

    /** How long Connect waits before redelivering a batch after a transient failure. */
    private static final long RETRY_BACKOFF_MS = 1_000;

    private CassandraSinkConfig config;
    private CqlSession session;
    private PreparedStatement insert;
    private RecordMapper mapper;
    private List<TypeCodec<Object>> codecs;

    @Override
    public String version() {
        return Version.VERSION;
    }

    @Override
    public void start(Map<String, String> props) {
        config = new CassandraSinkConfig(props);
        try {
            connect();
        } catch (RetriableException e) {
            // Cassandra may simply not be up yet (e.g. the whole stack restarting); a failed task would
            // need a manual restart, so stay running and try again when records arrive.
            log.warn("{}; will retry when records arrive", e.getMessage());
        }
    }

    /** Opens the session and prepares the INSERT, unless that is already done. */
    private void connect() {
        if (session != null) {
            return;
        }
        CqlSession newSession;
        try {
            newSession = config.openSession();
        } catch (RuntimeException e) {
            throw new RetriableException("cannot connect to Cassandra at " + config.contactPointsDescription()
                    + ": " + e.getMessage(), e);
        }
        try {
            TargetTable table = TargetTable.resolve(newSession.getMetadata(), config);
            String cql = table.insertCql(config.ttlSeconds());
            insert = newSession.prepare(cql);
            mapper = new RecordMapper(table.columns());
            CodecRegistry registry = newSession.getContext().getCodecRegistry();
            // The converter produces each type's default Java class, so the default codecs fit.
            codecs = table.columns().stream()
                    .map(column -> registry.<Object>codecFor(column.type()))
                    .collect(Collectors.toList());
            log.info("Writing to {} ({}) at {}{}, at most {} writes in flight",
                    table.qualifiedName(),
                    table.columns().stream()
                            .map(c -> c.field().equals(c.column().asInternal())
                                    ? c.describe() : c.describe() + " <- " + c.field())
                            .collect(Collectors.joining(", ")),
                    config.consistency(),
                    config.ttlSeconds() > 0 ? ", TTL " + config.ttlSeconds() + " s" : "",
                    config.maxConcurrentRequests());
        } catch (TargetTable.InvalidTargetException e) {
            newSession.close();
            throw new ConnectException(e.getMessage());
        } catch (RuntimeException e) {
            newSession.close();
            if (classify(e) == Failure.TRANSIENT) {
                throw new RetriableException("cannot prepare the INSERT into " + config.qualifiedTable()
                        + ": " + e.getMessage(), e);
            }
            throw new ConnectException("cannot prepare the INSERT into " + config.qualifiedTable()
                    + ": " + e.getMessage(), e);
        }
        session = newSession;
    }

    @Override
    public void put(Collection<SinkRecord> records) {
        if (records.isEmpty()) {
            return;
        }
        try {
            connect();
        } catch (RetriableException e) {
            context.timeout(RETRY_BACKOFF_MS);
            throw e;
        }
        ErrantRecordReporter reporter = context.errantRecordReporter();
        List<Errant> errant = new ArrayList<>();

        // Map the whole batch before sending anything, so that without a reporter a bad record
        // stops the task before any write of its batch is in flight.
        List<SinkRecord> toWrite = new ArrayList<>(records.size());
        List<BoundStatement> statements = new ArrayList<>(records.size());
        for (SinkRecord record : records) {
            if (record.value() == null) {
                continue; // tombstone: nothing to upsert
            }
            try {
                statements.add(bind(record));
                toWrite.add(record);
            } catch (RecordMapper.RecordMappingException e) {
                DataException error = new DataException(describe(record) + ": " + e.getMessage());
                if (reporter == null) {
                    throw error;
                }
                errant.add(new Errant(record, error));
            }
        }

        // Wait for every write before judging any, so nothing of this batch is still in flight
        // when put() returns or throws.
        List<Throwable> failures = execute(statements).stream()
                .map(CassandraSinkTask::failure)
                .collect(Collectors.toList());

        RuntimeException transientError = null;
        int transientCount = 0;
        for (int i = 0; i < failures.size(); i++) {
            Throwable cause = failures.get(i);
            if (cause == null) {
                continue;
            }
            SinkRecord record = toWrite.get(i);
            String message = describe(record) + ": write to " + config.qualifiedTable() + " failed: " + cause;
            switch (classify(cause)) {
                case TRANSIENT -> {
                    transientCount++;
                    if (transientError == null) {
                        transientError = new RetriableException(message, cause);
                    }
                }
                case RECORD -> {
                    if (tableDropped()) {
                        throw new ConnectException(message + " (the table no longer exists)", cause);
                    }
                    errant.add(new Errant(record, new ConnectException(message, cause)));
                }
                case FATAL -> throw new ConnectException(message, cause);
            }
        }
        if (transientError != null) {
            // Report nothing yet: the redelivered batch will produce the same errant records again.
            log.warn("{} of {} writes to {} failed transiently; Connect will redeliver the batch. First: {}",
                    transientCount, failures.size(), config.qualifiedTable(), transientError.getMessage());
            context.timeout(RETRY_BACKOFF_MS);
            throw transientError;
        }
        for (Errant bad : errant) {
            if (reporter == null) {
                throw bad.error();
            }
            log.warn("Reporting errant record: {}", bad.error().getMessage());
            reporter.report(bad.record(), bad.error());
        }
        log.debug("Put {} records into {}, {} reported as errant", records.size(), config.qualifiedTable(),
                errant.size());
    }

    private BoundStatement bind(SinkRecord record) throws RecordMapper.RecordMappingException {
        Object[] values = mapper.values(record.value());
        // Upserts may be replayed freely, which lets the driver retry them after a lost connection.
        BoundStatementBuilder builder = insert.boundStatementBuilder().setIdempotence(true);
        for (int i = 0; i < values.length; i++) {
            if (values[i] == null) {
                continue; // left unset: the stored value, if any, is kept
            }
            try {
                builder.set(i, values[i], codecs.get(i));
            } catch (RuntimeException e) {
                throw new RecordMapper.RecordMappingException("column " + mapper.columns().get(i).describe()
                        + ": " + e.getMessage());
            }
        }
        return builder.build();
    }

    /** Sends all statements, keeping at most the configured number in flight. */
    private List<CompletableFuture<?>> execute(List<BoundStatement> statements) {
        Semaphore inFlight = new Semaphore(config.maxConcurrentRequests());
        List<CompletableFuture<?>> writes = new ArrayList<>(statements.size());
        for (BoundStatement statement : statements) {
            // Uninterruptible: every write ends within the driver's request timeout anyway.
            inFlight.acquireUninterruptibly();
            CompletableFuture<?> write;
            try {
                write = session.executeAsync(statement).toCompletableFuture();
            } catch (RuntimeException e) {
                write = CompletableFuture.failedFuture(e);
            }
            write.whenComplete((result, error) -> inFlight.release());
            writes.add(write);
        }
        return writes;
    }

    /** Waits for a write; returns why it failed, or null. */
    private static Throwable failure(CompletableFuture<?> write) {
        try {
            write.join();
            return null;
        } catch (CompletionException e) {
            return e.getCause() != null ? e.getCause() : e;
        } catch (RuntimeException e) {
            return e;
        }
    }

    private enum Failure {
        /** Worth retrying the batch: timeouts, unavailable replicas, lost connections, overload. */
        TRANSIENT,
        /** Cassandra refused this record's values; the others may well succeed. */
        RECORD,
        /** Every record would fail the same way (permissions, schema, protocol): stop the task. */
        FATAL
    }

    private static Failure classify(Throwable error) {
        if (error instanceof InvalidQueryException || error instanceof FunctionFailureException) {
            return Failure.RECORD;
        }
        if (error instanceof QueryValidationException
                || error instanceof ProtocolError
                || error instanceof CodecNotFoundException) {
            return Failure.FATAL;
        }
        return error instanceof DriverException ? Failure.TRANSIENT : Failure.FATAL;
    }

    /**
     * Cassandra answers writes to a dropped table with the same InvalidQueryException as bad
     * values; without this check every record would be sent to the dead letter queue.
     */
    private boolean tableDropped() {
        return session.getMetadata().getKeyspace(config.keyspace())
                .flatMap(keyspace -> keyspace.getTable(config.table()))
                .isEmpty();
    }

    private static String describe(SinkRecord record) {
        return "record topic=" + record.topic() + " partition=" + record.kafkaPartition()
                + " offset=" + record.kafkaOffset();
    }

    private record Errant(SinkRecord record, ConnectException error) {}

    @Override
    public void stop() {
        if (session != null) {
            session.close();
            session = null;
        }
    }
}
