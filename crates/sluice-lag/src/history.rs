//! Time lag from a history of end offsets (kafka-lag-exporter's
//! interpolation): each scan records the end of a partition and when it was
//! first and last seen there; the time the record at a committed offset was
//! produced lies between the last time the end was at or below it and the
//! first time it was beyond it, and is interpolated there.

use std::collections::VecDeque;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Point {
    end: i64,
    first_seen_ms: i64,
    last_seen_ms: i64,
}

/// The end offsets of one partition over time.
#[derive(Debug, Clone, Default)]
pub struct History {
    /// Offsets ascending.
    points: VecDeque<Point>,
    capacity: usize,
}

impl History {
    pub fn new(capacity: usize) -> Self {
        Self { points: VecDeque::new(), capacity: capacity.max(2) }
    }

    /// The end offset seen at `at_ms`. An offset below the last one (a
    /// truncated or recreated topic) starts the history again.
    pub fn record(&mut self, end: i64, at_ms: i64) {
        match self.points.back_mut() {
            Some(last) if last.end == end => {
                last.last_seen_ms = at_ms;
                return;
            }
            Some(last) if last.end > end => self.points.clear(),
            _ => {}
        }
        self.points.push_back(Point { end, first_seen_ms: at_ms, last_seen_ms: at_ms });
        while self.points.len() > self.capacity {
            self.points.pop_front();
        }
    }

    /// When the record at `offset` (the oldest not consumed by a group
    /// committed at `offset`) was produced, as far as the history can tell:
    /// after the last time the end was at or below it, no later than the
    /// first time it was beyond it. `None` when it is older than the history
    /// (or not produced yet).
    pub fn produced_at(&self, offset: i64) -> Option<i64> {
        let after = self.points.iter().position(|p| p.end > offset)?;
        let upper = self.points[after];
        let lower = *self.points.get(after.checked_sub(1)?)?;
        let fraction = (offset - lower.end) as f64 / (upper.end - lower.end) as f64;
        let span = (upper.first_seen_ms - lower.last_seen_ms) as f64;
        Some(lower.last_seen_ms + (fraction * span) as i64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_time_of_an_offset_is_interpolated_between_the_points_around_it() {
        let mut h = History::new(10);
        h.record(100, 1_000);
        h.record(100, 1_500); // still there: produced after 1,500
        h.record(200, 2_000);
        h.record(400, 4_000);
        assert_eq!(h.produced_at(100), Some(1_500));
        assert_eq!(h.produced_at(150), Some(1_750));
        assert_eq!(h.produced_at(300), Some(3_000));
        // Not produced yet, or older than the history.
        assert_eq!(h.produced_at(400), None);
        assert_eq!(h.produced_at(50), None);
    }

    #[test]
    fn a_long_idle_end_does_not_age_the_records_that_follow_it() {
        // Idle at 100 for three hours, then a burst: the record at 100 is
        // seconds old, not hours.
        let mut h = History::new(10);
        h.record(100, 0);
        h.record(100, 3 * 3_600_000);
        h.record(160, 3 * 3_600_000 + 10_000);
        let produced = h.produced_at(100).expect("known");
        assert!(produced >= 3 * 3_600_000, "{produced}");
    }

    #[test]
    fn the_history_is_bounded_and_starts_again_after_a_truncation() {
        let mut h = History::new(3);
        for (i, end) in [10, 20, 30, 40].into_iter().enumerate() {
            h.record(end, i as i64 * 1_000);
        }
        assert_eq!(h.produced_at(15), None, "the oldest point was dropped");
        assert_eq!(h.produced_at(25), Some(1_500));
        h.record(5, 9_000);
        assert_eq!(h.produced_at(25), None);
    }
}
