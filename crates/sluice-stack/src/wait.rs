use crate::StackError;
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// Waits until something accepts TCP connections on `port`, or `deadline` passes.
/// `alive` is asked between attempts so a crashed process fails fast.
pub fn wait_for_tcp(
    what: &str,
    port: u16,
    deadline: Duration,
    mut alive: impl FnMut() -> Result<(), String>,
) -> Result<(), StackError> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let start = Instant::now();
    loop {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        alive().map_err(|detail| StackError::NotReady { what: what.into(), detail })?;
        if start.elapsed() > deadline {
            return Err(StackError::NotReady {
                what: what.into(),
                detail: format!("nothing listens on port {port} after {deadline:?}"),
            });
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
