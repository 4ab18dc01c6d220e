/// Checks a loaded configuration before a service starts; the message names
/// the `SLUICE_*` variable that is wrong.
pub trait Validate {
    fn validate(&self) -> Result<(), String>;
}

/// `host:port`, as accepted for listen addresses.
pub fn check_listen(var: &str, value: &str) -> Result<(), String> {
    value
        .parse::<std::net::SocketAddr>()
        .map(|_| ())
        .map_err(|e| format!("{var}=`{value}` is not a host:port address: {e}"))
}

pub fn check_url(var: &str, value: &str, schemes: &[&str]) -> Result<(), String> {
    let scheme = value.split_once("://").map(|(s, _)| s);
    match scheme {
        Some(s) if schemes.contains(&s) => Ok(()),
        _ => Err(format!("{var} must be a URL starting with {}", schemes.join(":// or ") + "://")),
    }
}

pub fn check_not_empty(var: &str, value: &str) -> Result<(), String> {
    if value.trim().is_empty() { Err(format!("{var} must not be empty")) } else { Ok(()) }
}
