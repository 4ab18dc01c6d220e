//! Process plumbing shared by the test kit (ephemeral processes tied to the
//! test process) and `sluice dev` (a detached local stack with pid files).
//!
//! It knows how to find and launch PostgreSQL, redis-server and tansu, and how
//! to make a child die with its parent even when the parent is SIGKILLed.

mod error;
mod launch;
pub mod postgres;
pub mod redis;
pub mod tansu;
mod tools;
mod wait;

pub use error::StackError;
pub use launch::{Launch, Lifetime, pid_alive, signal_pid, spawn, stop_pid, stop_pid_with};
pub use libc::{SIGCONT, SIGINT, SIGKILL, SIGQUIT, SIGSTOP, SIGTERM};
pub use tools::{find_tool, free_port};
pub use wait::wait_for_tcp;
