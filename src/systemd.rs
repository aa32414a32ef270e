//! The sd_notify protocol, without libsystemd: one datagram to `$NOTIFY_SOCKET` per state change.
//! Used for `Type=notify` (READY=1 once connected, listening and caught up) and the watchdog
//! (WATCHDOG=1 only from a healthy drain loop, so a wedged daemon is restarted). Outside systemd
//! the variable is unset and every call does nothing.

use std::os::unix::net::UnixDatagram;

/// Send one notification, e.g. `READY=1`. Failures are logged, never fatal: supervision is a
/// convenience, the audit log is not.
pub fn notify(state: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let result = UnixDatagram::unbound().and_then(|socket| {
        let bytes = path.as_encoded_bytes();
        if let Some(abstract_name) = bytes.strip_prefix(b"@") {
            // Abstract socket namespace (Linux): a leading NUL instead of '@'.
            use std::os::linux::net::SocketAddrExt;
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(abstract_name)?;
            socket.send_to_addr(state.as_bytes(), &addr)
        } else {
            socket.send_to(state.as_bytes(), &path)
        }
    });
    if let Err(e) = result {
        tracing::warn!(error = %e, state, "could not notify systemd");
    }
}

/// Whether systemd expects watchdog pings (WatchdogSec= is set for this service).
pub fn watchdog_enabled() -> bool {
    std::env::var_os("WATCHDOG_USEC").is_some()
}
