use rand::Rng;

/// `prefix_` followed by 10 random lower-case letters and digits: safe as a
/// database, topic, group or key prefix, and unique enough to run in parallel.
pub fn random_name(prefix: &str) -> String {
    const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    let suffix: String = (0..10).map(|_| CHARS[rng.random_range(0..CHARS.len())] as char).collect();
    format!("{prefix}_{suffix}")
}
