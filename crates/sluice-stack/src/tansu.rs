//! The tansu broker with sqlite storage, and the index it does not create.

use crate::{Launch, StackError, find_tool};
use std::path::Path;
use std::time::{Duration, Instant};

pub fn launch(port: u16, db_path: &Path, log: &Path) -> Result<Launch, StackError> {
    let bin = find_tool("tansu", &[])?;
    let url = format!("tcp://127.0.0.1:{port}");
    // An absolute path needs four slashes: sqlite:////abs/dir/tansu.db
    let storage = format!("sqlite:///{}", db_path.display());
    Ok(Launch::new(bin, log)
        .arg("broker")
        .args(["--listener-url", &url, "--advertised-listener-url", &url, "--storage-engine", &storage])
        .env("RUST_LOG", "warn"))
}

pub fn bootstrap(port: u16) -> String {
    format!("127.0.0.1:{port}")
}

/// tansu 0.6.0 has no index on `header(topition, offset_id)`; without it every
/// fetch and every compaction scans all headers and the broker grinds to a halt
/// (DESIGN.md, environment facts). Waits for the broker's schema, then adds it.
pub fn create_header_index(db_path: &Path, deadline: Duration) -> Result<(), StackError> {
    let start = Instant::now();
    let mut last_error = String::from("database file not created yet");
    while start.elapsed() < deadline {
        if db_path.exists() {
            match try_create_index(db_path) {
                Ok(true) => return Ok(()),
                Ok(false) => last_error = "table `header` not created yet".into(),
                Err(e) => last_error = e.to_string(),
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(StackError::NotReady { what: format!("tansu header index in {}", db_path.display()), detail: last_error })
}

fn try_create_index(db_path: &Path) -> rusqlite::Result<bool> {
    let conn = rusqlite::Connection::open(db_path)?;
    conn.busy_timeout(Duration::from_secs(5))?;
    let has_header: i64 =
        conn.query_row("select count(*) from sqlite_master where type = 'table' and name = 'header'", [], |r| {
            r.get(0)
        })?;
    if has_header == 0 {
        return Ok(false);
    }
    conn.execute_batch("create index if not exists header_topition_offset on header(topition, offset_id)")?;
    Ok(true)
}
