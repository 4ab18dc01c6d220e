use sluice_stack::{Launch, Lifetime, StackError};
use std::process::Child;
use std::time::Duration;

/// A child process tied to the test process; stopped on drop.
pub(crate) struct Managed {
    pub(crate) name: String,
    child: Child,
    /// Sent first on drop; PostgreSQL wants SIGINT (fast shutdown), since
    /// SIGTERM waits for every client to disconnect.
    stop_signal: i32,
}

impl Managed {
    pub(crate) fn start(name: &str, launch: &Launch) -> Managed {
        match sluice_stack::spawn(launch, Lifetime::TiedToThisProcess) {
            Ok(child) => Managed { name: name.into(), child, stop_signal: sluice_stack::SIGTERM },
            Err(e) => panic!("cannot start {name}: {e}"),
        }
    }

    pub(crate) fn with_stop_signal(mut self, signal: i32) -> Self {
        self.stop_signal = signal;
        self
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Err with the exit status when the process is gone.
    pub(crate) fn check_alive(&mut self, log: &std::path::Path) -> Result<(), String> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(format!("{} exited with {status}; log:\n{}", self.name, tail(log))),
            Err(e) => Err(e.to_string()),
        }
    }

    /// SIGTERM, then waits (SIGKILL after 60 s) and returns the exit status.
    pub(crate) fn terminate(&mut self) -> std::process::ExitStatus {
        self.signal_and_wait(sluice_stack::SIGTERM);
        self.child.wait().expect("exit status")
    }

    /// Sends `signal` and waits for the process to exit (SIGKILL after 60 s).
    pub(crate) fn signal_and_wait(&mut self, signal: i32) {
        sluice_stack::signal_pid(self.child.id(), signal);
        let start = std::time::Instant::now();
        while !matches!(self.child.try_wait(), Ok(Some(_))) {
            if start.elapsed() > Duration::from_secs(60) {
                self.kill_hard();
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub(crate) fn kill_hard(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGKILL, then the same launch again (same ports, same files).
    pub(crate) fn respawn(&mut self, launch: &Launch) {
        self.kill_hard();
        match sluice_stack::spawn(launch, Lifetime::TiedToThisProcess) {
            Ok(child) => self.child = child,
            Err(e) => panic!("cannot restart {}: {e}", self.name),
        }
    }

    pub(crate) fn signal(&self, signal: i32) {
        sluice_stack::signal_pid(self.child.id(), signal);
    }
}

impl Drop for Managed {
    fn drop(&mut self) {
        // Already reaped: its pid may belong to another process by now.
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        sluice_stack::stop_pid_with(self.child.id(), self.stop_signal, Duration::from_secs(10));
        let _ = self.child.wait();
    }
}

pub(crate) fn tail(log: &std::path::Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

pub(crate) fn expect_ready(result: Result<(), StackError>) {
    if let Err(e) = result {
        panic!("{e}");
    }
}
