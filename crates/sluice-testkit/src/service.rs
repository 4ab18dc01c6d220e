use crate::START_DEADLINE;
use crate::process::Managed;
use sluice_stack::Launch;
use std::path::PathBuf;
use tempfile::TempDir;

/// The path of one of Sluice's own binaries, built next to the test binary
/// (`target/<profile>/<name>`). `make test` builds them first.
/// `TESTKIT_BIN_DIR` points the tests at other builds (a release build,
/// or an older commit's binaries to show that a test catches a bug).
pub fn service_binary(name: &str) -> PathBuf {
    let profile_dir = match std::env::var_os("TESTKIT_BIN_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => {
            let exe = std::env::current_exe().expect("current test executable");
            // target/<profile>/deps/<test> -> target/<profile>/<name>
            exe.parent().and_then(|deps| deps.parent()).expect("target dir layout").to_path_buf()
        }
    };
    let path = profile_dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: build the services first (`cargo build --workspace --bins`, done by `make test`)",
        path.display()
    );
    path
}

/// A running Sluice service with its ops endpoint on `port`.
pub struct ServiceHandle {
    process: Managed,
    pub port: u16,
    launch: Launch,
    log: PathBuf,
    _dir: TempDir,
}

/// Each probe of a service's ops endpoints gives up after this, so a frozen
/// service cannot hold a wait beyond its deadline.
const PROBE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

fn probe_client() -> reqwest::Client {
    reqwest::Client::builder().timeout(PROBE_TIMEOUT).build().expect("HTTP client")
}

impl ServiceHandle {
    /// Starts `name` with `env` (`SLUICE_*` variables) plus a free
    /// `SLUICE_LISTEN` address and waits until `/healthz` answers.
    pub async fn start(name: &str, env: &[(&str, String)]) -> ServiceHandle {
        // Another test may take the port between probe and bind: try others.
        for attempt in 1.. {
            let dir = tempfile::Builder::new().prefix(&format!("sluice-{name}-")).tempdir().expect("temp dir");
            let log = dir.path().join(format!("{name}.log"));
            let port = sluice_stack::free_port().unwrap_or_else(|e| panic!("{e}"));
            let mut launch = Launch::new(service_binary(name), &log)
                .env("SLUICE_LISTEN", format!("127.0.0.1:{port}"))
                .env("SLUICE_LOG", "info");
            for (k, v) in env {
                launch = launch.env(*k, v);
            }
            let mut handle = ServiceHandle { process: Managed::start(name, &launch), port, launch, log, _dir: dir };
            match handle.try_wait_for("/healthz").await {
                Ok(()) => return handle,
                Err(e) if attempt < 5 && e.contains("in use") => continue,
                Err(e) => panic!("{e}"),
            }
        }
        unreachable!("the loop returns or panics")
    }

    async fn wait_healthy(&mut self) {
        self.wait_for("/healthz").await;
    }

    /// Waits until `/readyz` answers 200.
    pub async fn wait_ready(&mut self) {
        self.wait_for("/readyz").await;
    }

    /// Polls `path` until it answers 200; fails with the service's log if it
    /// exits or does not answer in time.
    async fn wait_for(&mut self, path: &str) {
        if let Err(e) = self.try_wait_for(path).await {
            panic!("{e}");
        }
    }

    async fn try_wait_for(&mut self, path: &str) -> Result<(), String> {
        let url = format!("{}{path}", self.base_url());
        let client = probe_client();
        let start = tokio::time::Instant::now();
        loop {
            self.process.check_alive(&self.log)?;
            if client.get(&url).send().await.is_ok_and(|r| r.status().is_success()) {
                return Ok(());
            }
            if start.elapsed() >= START_DEADLINE {
                return Err(format!("{} did not answer {path} with 200; log:\n{}", self.process.name, self.log_tail()));
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn log_tail(&self) -> String {
        crate::process::tail(&self.log)
    }

    /// The whole log so far (a secrets test reads every line).
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM and the exit status (graceful shutdown tests).
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        self.process.terminate()
    }

    /// Whether `/readyz` answers 200 now.
    pub async fn is_ready(&self) -> bool {
        let url = format!("{}/readyz", self.base_url());
        probe_client().get(url).send().await.is_ok_and(|r| r.status().is_success())
    }

    /// SIGKILL, for crash tests.
    pub fn kill_hard(&mut self) {
        self.process.kill_hard();
    }

    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// SIGKILL, then the same binary again on the same port with the same
    /// environment; returns once `/healthz` answers.
    pub async fn restart(&mut self) {
        self.process.respawn(&self.launch);
        self.wait_healthy().await;
    }

    /// SIGSTOP: the port still accepts connections, nothing answers (a hung
    /// process, or a network that drops packets without resets).
    pub fn freeze(&self) {
        self.process.signal(sluice_stack::SIGSTOP);
    }

    /// SIGCONT after [`ServiceHandle::freeze`].
    pub fn thaw(&self) {
        self.process.signal(sluice_stack::SIGCONT);
    }
}
