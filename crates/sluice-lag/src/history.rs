//! Time lag from a history of end offsets (kafka-lag-exporter's
//! interpolation): each scan records when the end of a partition was first
//! seen at an offset; the time a committed offset was produced is
//! interpolated between the two points around it.

use std::collections::VecDeque;

/// The end offsets of one partition over time.
#[derive(Debug, Clone, Default)]
pub struct History {
    /// (end offset, ms since the epoch it was first seen), offsets ascending.
    points: VecDeque<(i64, i64)>,
    capacity: usize,
}

impl History {
    pub fn new(capacity: usize) -> Self {
        Self { points: VecDeque::new(), capacity: capacity.max(2) }
    }

    /// The end offset seen at `at_ms`. A known offset keeps the time it was
    /// first seen; an offset below the last one (a truncated topic) starts
    /// the history again.
    pub fn record(&mut self, end: i64, at_ms: i64) {
        match self.points.back() {
            Some(&(last, _)) if last == end => return,
            Some(&(last, _)) if last > end => self.points.clear(),
            _ => {}
        }
        self.points.push_back((end, at_ms));
        while self.points.len() > self.capacity {
            self.points.pop_front();
        }
    }

    /// When the record at `offset` (the oldest not consumed by a group
    /// committed at `offset`) was produced, as far as the history can tell:
    /// between the last time the end was at or below it and the first time
    /// it was beyond it. `None` when it is older than the history (or not
    /// produced yet).
    pub fn produced_at(&self, offset: i64) -> Option<i64> {
        let after = self.points.iter().position(|&(end, _)| end > offset)?;
        let (o2, t2) = self.points[after];
        if after == 0 {
            return None;
        }
        let (o1, t1) = self.points[after - 1];
        let fraction = (offset - o1) as f64 / (o2 - o1) as f64;
        Some(t1 + (fraction * (t2 - t1) as f64) as i64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_time_of_an_offset_is_interpolated_between_the_points_around_it() {
        let mut h = History::new(10);
        h.record(100, 1_000);
        h.record(100, 1_500); // unchanged: keeps the first time
        h.record(200, 2_000);
        h.record(400, 4_000);
        assert_eq!(h.produced_at(100), Some(1_000));
        assert_eq!(h.produced_at(150), Some(1_500));
        assert_eq!(h.produced_at(300), Some(3_000));
        // Not produced yet, or older than the history.
        assert_eq!(h.produced_at(400), None);
        assert_eq!(h.produced_at(50), None);
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
