//! Consumer groups as the broker reports them: which exist (ListGroups) and
//! what each committed (OffsetFetch), and the broker time of a record (for
//! time lag). Blocking: call from `spawn_blocking` in async code.

use crate::KafkaError;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use std::time::{Duration, Instant};

const TIMEOUT: Duration = Duration::from_secs(10);

/// The consumer groups every broker of the cluster knows, asked with
/// ListGroups (v0) over the Kafka protocol. librdkafka's own group listing
/// also sends DescribeGroups, which some brokers (tansu 0.6) do not answer;
/// ListGroups alone is enough to know the names.
pub fn list_groups(consumer: &BaseConsumer) -> Result<Vec<String>, KafkaError> {
    let metadata = consumer.fetch_metadata(None, TIMEOUT)?;
    let mut groups = std::collections::BTreeSet::new();
    let (mut answered, mut last_error) = (0, None);
    for broker in metadata.brokers() {
        let address = format!("{}:{}", broker.host(), broker.port());
        // One broker down must not hide the groups the others coordinate.
        match list_groups_of(&address) {
            Ok(listed) => {
                answered += 1;
                groups.extend(listed);
            }
            Err(e) => last_error = Some(format!("ListGroups to {address}: {e}")),
        }
    }
    match (answered, last_error) {
        (0, Some(reason)) => Err(KafkaError::Groups(reason)),
        _ => Ok(groups.into_iter().collect()),
    }
}

/// ListGroups v0 to one broker: request header (api key 16, version 0,
/// correlation id, client id), no body; answer: error code, then
/// (group id, protocol type) pairs.
fn list_groups_of(address: &str) -> std::io::Result<Vec<String>> {
    use std::io::{Error, Read, Write};
    let addr = std::net::ToSocketAddrs::to_socket_addrs(address)?.next().ok_or_else(|| Error::other("no address"))?;
    let mut stream = std::net::TcpStream::connect_timeout(&addr, TIMEOUT)?;
    // A broker that trickles bytes is cut off by the read time-outs; the
    // answer's size is capped below.
    stream.set_read_timeout(Some(TIMEOUT))?;
    stream.set_write_timeout(Some(TIMEOUT))?;
    const CLIENT_ID: &[u8] = b"sluice-lag";
    let mut request = Vec::new();
    request.extend_from_slice(&16i16.to_be_bytes());
    request.extend_from_slice(&0i16.to_be_bytes());
    request.extend_from_slice(&1i32.to_be_bytes());
    request.extend_from_slice(&(CLIENT_ID.len() as i16).to_be_bytes());
    request.extend_from_slice(CLIENT_ID);
    let mut framed = (request.len() as i32).to_be_bytes().to_vec();
    framed.extend_from_slice(&request);
    stream.write_all(&framed)?;
    let mut size = [0u8; 4];
    stream.read_exact(&mut size)?;
    let size = usize::try_from(i32::from_be_bytes(size)).map_err(|_| Error::other("negative size"))?;
    if size > 4 << 20 {
        return Err(Error::other("answer too large"));
    }
    let mut answer = vec![0u8; size];
    stream.read_exact(&mut answer)?;
    parse_list_groups(&answer).ok_or_else(|| Error::other("malformed ListGroups answer"))
}

/// A ListGroups v0 answer (after its size): correlation id, error code,
/// array of (group id, protocol type).
fn parse_list_groups(answer: &[u8]) -> Option<Vec<String>> {
    let mut at = 0usize;
    let mut take = |n: usize| -> Option<&[u8]> {
        let bytes = answer.get(at..at + n)?;
        at += n;
        Some(bytes)
    };
    let _correlation = take(4)?;
    let error = i16::from_be_bytes(take(2)?.try_into().ok()?);
    if error != 0 {
        return None;
    }
    let count = i32::from_be_bytes(take(4)?.try_into().ok()?);
    let mut groups = Vec::new();
    for _ in 0..count.max(0) {
        let mut string = || -> Option<String> {
            let len = usize::try_from(i16::from_be_bytes(take(2)?.try_into().ok()?)).ok()?;
            String::from_utf8(take(len)?.to_vec()).ok()
        };
        let group = string()?;
        let _protocol_type = string()?;
        groups.push(group);
    }
    Some(groups)
}

/// A client that reads what `group` committed, without joining the group.
pub fn group_reader(brokers: &str, group: &str) -> Result<BaseConsumer, KafkaError> {
    Ok(ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()?)
}

/// What the group of `reader` ([`group_reader`]) committed on each of
/// `partitions` (topic, partition): `None` where it committed nothing.
pub fn committed(
    reader: &BaseConsumer,
    partitions: &[(String, i32)],
) -> Result<Vec<(String, i32, Option<i64>)>, KafkaError> {
    let mut tpl = TopicPartitionList::new();
    for (topic, partition) in partitions {
        tpl.add_partition(topic, *partition);
    }
    let answer = reader.committed_offsets(tpl, TIMEOUT)?;
    Ok(answer
        .elements()
        .iter()
        .map(|e| {
            let offset = match e.offset() {
                Offset::Offset(o) if o >= 0 && e.error().is_ok() => Some(o),
                _ => None,
            };
            (e.topic().to_string(), e.partition(), offset)
        })
        .collect())
}

/// The end offsets of `partitions` in one request per broker (ListOffsets
/// for "latest"); partitions it could not answer are left out.
pub fn end_offsets(
    consumer: &BaseConsumer,
    partitions: &[(String, i32)],
) -> Result<Vec<(String, i32, i64)>, KafkaError> {
    let mut tpl = TopicPartitionList::new();
    for (topic, partition) in partitions {
        tpl.add_partition_offset(topic, *partition, Offset::End)?;
    }
    let answer = consumer.offsets_for_times(tpl, TIMEOUT)?;
    Ok(answer
        .elements()
        .iter()
        .filter_map(|e| match e.offset() {
            Offset::Offset(o) if o >= 0 && e.error().is_ok() => Some((e.topic().to_string(), e.partition(), o)),
            _ => None,
        })
        .collect())
}

/// The broker time (ms) of the first record of `partition` at or after
/// `offset`, reading with `consumer` (assigned for the read, unassigned after).
pub fn record_time(consumer: &BaseConsumer, topic: &str, partition: i32, offset: i64) -> Option<i64> {
    let mut assignment = TopicPartitionList::new();
    assignment.add_partition_offset(topic, partition, Offset::Offset(offset)).ok()?;
    consumer.assign(&assignment).ok()?;
    let started = Instant::now();
    let mut found = None;
    while found.is_none() && started.elapsed() < Duration::from_secs(2) {
        if let Some(Ok(message)) = consumer.poll(Duration::from_millis(100))
            && message.partition() == partition
            && message.topic() == topic
            && message.offset() >= offset
        {
            found = message.timestamp().to_millis();
        }
    }
    let _ = consumer.unassign();
    found
}

#[cfg(test)]
mod tests {
    use super::parse_list_groups;

    fn string(s: &str) -> Vec<u8> {
        let mut v = (s.len() as i16).to_be_bytes().to_vec();
        v.extend_from_slice(s.as_bytes());
        v
    }

    #[test]
    fn a_list_groups_answer_is_read_and_a_truncated_one_refused() {
        let mut answer = 7i32.to_be_bytes().to_vec();
        answer.extend_from_slice(&0i16.to_be_bytes());
        answer.extend_from_slice(&2i32.to_be_bytes());
        for s in ["g1", "consumer", "g2", ""] {
            answer.extend(string(s));
        }
        assert_eq!(parse_list_groups(&answer), Some(vec!["g1".to_string(), "g2".to_string()]));
        assert_eq!(parse_list_groups(&answer[..answer.len() - 1]), None);
        let mut refused = 7i32.to_be_bytes().to_vec();
        refused.extend_from_slice(&15i16.to_be_bytes());
        refused.extend_from_slice(&0i32.to_be_bytes());
        assert_eq!(parse_list_groups(&refused), None);
    }
}
