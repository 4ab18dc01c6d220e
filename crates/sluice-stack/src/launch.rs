//! Spawning processes that either die with this process or outlive it.

use crate::StackError;
use std::ffi::OsString;
use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long a child may outlive the process that started it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifetime {
    /// Killed by the kernel (SIGKILL) as soon as this process dies, however it
    /// dies: tests that are interrupted leave nothing behind.
    TiedToThisProcess,
    /// Its own session; survives this process (the local stack).
    Detached,
}

/// What to run, as whom, with output appended to `log`.
#[derive(Debug, Clone)]
pub struct Launch {
    pub program: PathBuf,
    pub args: Vec<OsString>,
    pub env: Vec<(OsString, OsString)>,
    /// Run as this (uid, gid); needed for PostgreSQL when we are root.
    pub user: Option<(u32, u32)>,
    pub log: PathBuf,
}

impl Launch {
    pub fn new(program: impl Into<PathBuf>, log: impl Into<PathBuf>) -> Self {
        Self { program: program.into(), args: Vec::new(), env: Vec::new(), user: None, log: log.into() }
    }

    pub fn arg(mut self, arg: impl Into<OsString>) -> Self {
        self.args.push(arg.into());
        self
    }

    pub fn args<I: IntoIterator<Item = S>, S: Into<OsString>>(mut self, args: I) -> Self {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    fn command(&self) -> Result<Command, StackError> {
        let log = File::options()
            .create(true)
            .append(true)
            .open(&self.log)
            .map_err(StackError::io(format!("open log {}", self.log.display())))?;
        let log_err = log.try_clone().map_err(StackError::io("duplicate log handle"))?;
        let mut cmd = Command::new(&self.program);
        cmd.args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err);
        if let Some((uid, gid)) = self.user {
            cmd.uid(uid).gid(gid);
        }
        Ok(cmd)
    }
}

/// Starts `launch`. With [`Lifetime::TiedToThisProcess`] the child gets a
/// parent-death signal; the spawn happens on one long-lived thread because
/// Linux sends that signal when the *thread* that forked exits.
pub fn spawn(launch: &Launch, lifetime: Lifetime) -> Result<Child, StackError> {
    let mut cmd = launch.command()?;
    let what = format!("start {}", launch.program.display());
    match lifetime {
        Lifetime::Detached => {
            // SAFETY: setsid is async-signal-safe and touches no Rust state.
            unsafe {
                cmd.pre_exec(|| {
                    if libc::setsid() == -1 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
            cmd.spawn().map_err(StackError::io(what))
        }
        Lifetime::TiedToThisProcess => {
            let parent = std::process::id() as libc::pid_t;
            // SAFETY: prctl, getppid and _exit are async-signal-safe. They run
            // after the uid change, which would otherwise clear the signal.
            unsafe {
                cmd.pre_exec(move || {
                    if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                        return Err(std::io::Error::last_os_error());
                    }
                    if libc::getppid() != parent {
                        libc::_exit(1);
                    }
                    Ok(())
                });
            }
            spawn_on_keeper_thread(cmd).map_err(StackError::io(what))
        }
    }
}

type SpawnRequest = (Command, mpsc::Sender<std::io::Result<Child>>);

fn spawn_on_keeper_thread(cmd: Command) -> std::io::Result<Child> {
    static KEEPER: OnceLock<Mutex<mpsc::Sender<SpawnRequest>>> = OnceLock::new();
    let keeper = KEEPER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<SpawnRequest>();
        std::thread::Builder::new()
            .name("sluice-spawn-keeper".into())
            .spawn(move || {
                for (mut cmd, reply) in rx {
                    let _ = reply.send(cmd.spawn());
                }
            })
            .ok();
        Mutex::new(tx)
    });
    let (reply_tx, reply_rx) = mpsc::channel();
    keeper
        .lock()
        .map_err(|_| std::io::Error::other("spawn keeper lock poisoned"))?
        .send((cmd, reply_tx))
        .map_err(|_| std::io::Error::other("spawn keeper thread is gone"))?;
    reply_rx.recv().map_err(|_| std::io::Error::other("spawn keeper dropped the request"))?
}

/// Sends `signal` to `pid`; false when the process does not exist.
pub fn signal_pid(pid: u32, signal: i32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: plain syscall.
    unsafe { libc::kill(pid, signal) == 0 }
}

pub fn pid_alive(pid: u32) -> bool {
    signal_pid(pid, 0) && !is_zombie(pid)
}

fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(')').map(|(_, rest)| rest.trim_start().starts_with('Z')))
        .unwrap_or(false)
}

/// SIGTERM, then SIGKILL after `grace`. Returns once the process is gone.
pub fn stop_pid(pid: u32, grace: Duration) {
    stop_pid_with(pid, libc::SIGTERM, grace);
}

/// `signal` (e.g. SIGINT, PostgreSQL's fast shutdown), then SIGKILL after `grace`.
pub fn stop_pid_with(pid: u32, signal: i32, grace: Duration) {
    if !signal_pid(pid, signal) {
        return;
    }
    let start = Instant::now();
    while pid_alive(pid) {
        if start.elapsed() > grace {
            signal_pid(pid, libc::SIGKILL);
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
