//! An own redis-server without persistence.

use crate::{Launch, StackError, find_tool};
use std::path::Path;

pub fn launch(port: u16, dir: &Path, log: &Path) -> Result<Launch, StackError> {
    let bin = find_tool("redis-server", &[])?;
    Ok(Launch::new(bin, log)
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        .arg("--dir")
        .arg(dir)
        .args(["--daemonize", "no", "--protected-mode", "no"]))
}

pub fn url(port: u16) -> String {
    format!("redis://127.0.0.1:{port}/")
}
