//! `sluice relay replay`: re-publishing never leaves an older version as a
//! key's last record in the compacted topic.

use crate::harness::{DEADLINE, RelayStack, assert_last_record_is_newest};

fn replay(stack: &RelayStack, since: &str, until: &str, more: &[&str]) -> std::process::Output {
    std::process::Command::new(sluice_testkit::service_binary("sluice"))
        .args(["relay", "replay", "--since", since, "--until", until])
        .args(more)
        .args(["--database-url", &stack.relay_db, "--brokers", &stack.broker.bootstrap()])
        .args(["--topic-prefix", &stack.prefix, "--slot", &stack.slot])
        .output()
        .expect("run sluice relay replay")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_of_old_versions_ends_with_each_keys_newest_version() {
    let stack = RelayStack::start().await;
    let mut relay = stack.relay(&[("SLUICE_OUTBOX_RETENTION_SECS", "3600".into())]).await;
    let client = stack.client().await;
    let now = || async {
        let at: chrono::DateTime<chrono::Utc> = client.query_one("select now()", &[]).await.expect("now").get(0);
        at.to_rfc3339()
    };
    RelayStack::write(&client, "old", 1..=3).await;
    let since = now().await;
    RelayStack::write(&client, "new", 1..=2).await;
    let until = now().await;
    RelayStack::write(&client, "new", 3..=4).await;
    stack.read_until(7, DEADLINE).await;

    // Refused while the relay streams: its records could land after ours.
    let refused = replay(&stack, &since, &until, &[]);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success() && stderr.contains("--force"), "{stderr}");

    assert!(relay.terminate().success());
    // With the relay's header selection, as its settings say.
    let out = replay(&stack, &since, &until, &["--headers", "sluice.aggregate_version"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        stdout.contains("re-published 2 outbox rows") && stdout.contains("newest version of 1 aggregates"),
        "{stdout}"
    );
    // Versions 1 and 2 of `new` again, then its newest, 4: the last record.
    let seen = stack.read_to_end().await;
    let new_versions: Vec<i64> = seen.iter().filter(|s| s.key == "new").map(|s| s.version).collect();
    assert_eq!(new_versions, [1, 2, 3, 4, 1, 2, 4]);
    assert_eq!(seen.iter().filter(|s| s.key == "old").count(), 3);
    assert_last_record_is_newest(&seen);
    use sluice_kafka::rdkafka::message::{Headers, Message};
    let records: Vec<_> =
        stack.broker.read_to_end(&stack.topic()).await.into_iter().filter(|m| m.key() == Some(&b"new"[..])).collect();
    for replayed in &records[records.len() - 3..] {
        let names: Vec<&str> = replayed.headers().map(|h| h.iter().map(|x| x.key).collect()).unwrap_or_default();
        assert_eq!(names, ["sluice.aggregate_version"], "the replay sends the headers chosen");
    }
}
