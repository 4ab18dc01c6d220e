use crate::KafkaError;
use rdkafka::ClientConfig;
use rdkafka::consumer::StreamConsumer;
use rdkafka::producer::FutureProducer;

/// An idempotent producer: `acks=all`, retries without reordering, murmur2.
pub fn producer(brokers: &str, client_id: &str) -> Result<FutureProducer, KafkaError> {
    Ok(producer_config(brokers, client_id).create()?)
}

/// The settings of [`producer`], for producers with their own context.
/// `message.timeout.ms=0`: the client retries a record until it is delivered
/// or refused for good; it never gives up on a timeout.
pub fn producer_config(brokers: &str, client_id: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", brokers)
        .set("client.id", client_id)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("partitioner", "murmur2_random")
        .set("linger.ms", "5")
        .set("message.timeout.ms", "0")
        .set("queue.buffering.max.messages", "100000")
        .set("queue.buffering.max.kbytes", "65536");
    config
}

/// A consumer that starts from the earliest offset, never auto-commits (a
/// projection stores its offsets with its data) and fetches with short waits.
pub fn consumer(brokers: &str, group_id: &str) -> Result<StreamConsumer, KafkaError> {
    Ok(consumer_config(brokers, group_id).create()?)
}

/// The settings of [`consumer`], for consumers with their own context (a
/// consumer group member with rebalance callbacks). Partitions are shared
/// with `cooperative-sticky` assignment: a rebalance moves only the
/// partitions that change owner.
pub fn consumer_config(brokers: &str, group_id: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", brokers)
        .set("group.id", group_id)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("fetch.wait.max.ms", "5")
        .set("fetch.min.bytes", "1")
        .set("enable.partition.eof", "false")
        .set("partition.assignment.strategy", "cooperative-sticky");
    config
}

/// A consumer that only reads metadata and watermarks.
pub fn metadata_client(brokers: &str) -> Result<rdkafka::consumer::BaseConsumer, KafkaError> {
    Ok(ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "sluice-metadata")
        .set("enable.auto.commit", "false")
        .create()?)
}
