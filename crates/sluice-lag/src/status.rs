//! A Burrow-like status per partition and group, from a window of samples
//! (committed offset and end offset at each scan):
//! - `OK`: the lag was zero at some point of the window, or the group
//!   commits and its lag is not growing;
//! - `WARN`: the group commits, but its lag grew at every scan of the window;
//! - `STALL`: the group did not commit during the window while records kept
//!   arriving: it is stuck;
//! - `STOP`: it did not commit during the window and nothing arrived either,
//!   with lag left: it is stopped;
//! - `ERR`: its offsets could not be read.
//!
//! Burrow tells STALL from STOP by commit times, which OffsetFetch does not
//! give; here the end offset's movement tells them apart.

use std::collections::VecDeque;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    Ok,
    Warn,
    Stall,
    Stop,
    Err,
}

impl Status {
    pub const ALL: [Status; 5] = [Status::Ok, Status::Warn, Status::Stall, Status::Stop, Status::Err];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::Warn => "WARN",
            Status::Stall => "STALL",
            Status::Stop => "STOP",
            Status::Err => "ERR",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    pub committed: i64,
    pub end: i64,
}

impl Sample {
    pub fn lag(&self) -> i64 {
        (self.end - self.committed).max(0)
    }
}

/// The samples of one partition, oldest first, at most `capacity`.
#[derive(Debug, Clone)]
pub struct Window {
    samples: VecDeque<Sample>,
    capacity: usize,
}

impl Window {
    pub fn new(capacity: usize) -> Self {
        Self { samples: VecDeque::new(), capacity: capacity.max(2) }
    }

    pub fn push(&mut self, sample: Sample) {
        self.samples.push_back(sample);
        while self.samples.len() > self.capacity {
            self.samples.pop_front();
        }
    }

    /// The partition's status; `OK` until the window is full.
    pub fn status(&self) -> Status {
        let (Some(first), Some(last)) = (self.samples.front(), self.samples.back()) else { return Status::Ok };
        if self.samples.len() < self.capacity || self.samples.iter().any(|s| s.lag() == 0) {
            return Status::Ok;
        }
        if first.committed == last.committed {
            return if last.end > first.end { Status::Stall } else { Status::Stop };
        }
        let growing = self.samples.iter().zip(self.samples.iter().skip(1)).all(|(a, b)| b.lag() > a.lag());
        if growing { Status::Warn } else { Status::Ok }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(samples: &[(i64, i64)]) -> Status {
        let mut w = Window::new(samples.len());
        for &(committed, end) in samples {
            w.push(Sample { committed, end });
        }
        w.status()
    }

    #[test]
    fn each_status_from_its_window() {
        assert_eq!(window(&[(0, 10), (5, 10), (10, 10)]), Status::Ok, "caught up once");
        assert_eq!(window(&[(0, 10), (12, 20), (15, 30)]), Status::Ok, "committing, lag not growing every time");
        assert_eq!(window(&[(0, 10), (5, 20), (10, 30)]), Status::Warn, "committing, lag growing every scan");
        assert_eq!(window(&[(5, 10), (5, 20), (5, 30)]), Status::Stall, "not committing, records arrive");
        assert_eq!(window(&[(5, 10), (5, 10), (5, 10)]), Status::Stop, "not committing, nothing arrives, lag left");
        let mut short = Window::new(3);
        short.push(Sample { committed: 0, end: 10 });
        assert_eq!(short.status(), Status::Ok, "not enough samples yet");
        assert!(Status::Err > Status::Stop && Status::Stop > Status::Stall && Status::Warn > Status::Ok);
    }
}
