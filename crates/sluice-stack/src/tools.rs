use crate::StackError;
use std::net::TcpListener;
use std::path::{Path, PathBuf};

/// Where `make setup` installs machine-wide tools (tansu).
pub const TOOLS_DIR: &str = "/opt/sluice/bin";

/// Finds `tool`: an explicit `SLUICE_<TOOL>_BIN`, then the Sluice tools folder,
/// then `extra_dirs`, then `PATH`.
pub fn find_tool(tool: &str, extra_dirs: &[PathBuf]) -> Result<PathBuf, StackError> {
    let var = format!("SLUICE_{}_BIN", tool.to_ascii_uppercase().replace('-', "_"));
    if let Some(explicit) = std::env::var_os(&var) {
        let path = PathBuf::from(explicit);
        return if is_executable(&path) {
            Ok(path)
        } else {
            Err(StackError::MissingTool { tool: tool.into(), looked: format!("{var}={}", path.display()) })
        };
    }
    let mut dirs = vec![PathBuf::from(TOOLS_DIR)];
    dirs.extend_from_slice(extra_dirs);
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    dirs.iter()
        .map(|d| d.join(tool))
        .find(|p| is_executable(p))
        .ok_or_else(|| StackError::MissingTool { tool: tool.into(), looked: format!("{var}, {TOOLS_DIR}, PATH") })
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// A port that was free a moment ago (bound to port 0, then released).
pub fn free_port() -> Result<u16, StackError> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(StackError::io("bind a free port"))?;
    Ok(listener.local_addr().map_err(StackError::io("read the bound port"))?.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_tool_names_itself_and_make_setup() {
        let err = find_tool("sluice-no-such-tool", &[]).expect_err("not installed").to_string();
        assert!(err.contains("sluice-no-such-tool") && err.contains("make setup"), "{err}");
    }

    #[test]
    fn free_ports_are_bindable() {
        let port = free_port().expect("port");
        assert!(TcpListener::bind(("127.0.0.1", port)).is_ok());
    }
}
