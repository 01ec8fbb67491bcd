//! `[metrics]` in the worker config.

use serde::Deserialize;
use std::net::SocketAddr;

/// `[metrics]`: where the worker serves `GET /metrics`. Without `listen`
/// nothing is served (the counts are still kept, unread).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsSection {
    /// Address to serve on, such as `127.0.0.1:9464` (port 0 picks one,
    /// written to `<state_dir>/metrics.addr`).
    #[serde(default)]
    pub listen: Option<String>,
    /// Serve on an address other than loopback. The endpoint has no
    /// sign-in (it carries counts only, no ids, names or secrets), so an
    /// address others can reach must be the operator's explicit choice.
    #[serde(default)]
    pub allow_remote: bool,
}

impl MetricsSection {
    /// The address to serve on, checked: `None` when metrics are off.
    pub fn address(&self) -> Result<Option<SocketAddr>, String> {
        let Some(listen) = &self.listen else {
            return Ok(None);
        };
        let addr: SocketAddr = listen.parse().map_err(|_| {
            format!("[metrics] listen = {listen:?} is not an address and port, such as \"127.0.0.1:9464\"")
        })?;
        if !addr.ip().is_loopback() && !self.allow_remote {
            return Err(format!(
                "[metrics] listen = {listen:?} is not a loopback address, and /metrics has no sign-in; listen on 127.0.0.1 (and scrape through a local agent), or set allow_remote = true if others may read the worker's counts"
            ));
        }
        Ok(Some(addr))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(listen: &str, allow_remote: bool) -> MetricsSection {
        MetricsSection {
            listen: Some(listen.into()),
            allow_remote,
        }
    }

    #[test]
    fn off_without_listen_and_loopback_unless_told_otherwise() {
        assert_eq!(MetricsSection::default().address(), Ok(None));
        assert_eq!(
            section("127.0.0.1:9464", false).address(),
            Ok(Some("127.0.0.1:9464".parse().unwrap()))
        );
        assert!(section("[::1]:9464", false).address().unwrap().is_some());
        let e = section("0.0.0.0:9464", false).address().unwrap_err();
        assert!(e.contains("allow_remote = true"), "{e}");
        assert!(section("0.0.0.0:9464", true).address().unwrap().is_some());
        let e = section("localhost", false).address().unwrap_err();
        assert!(e.contains("not an address and port"), "{e}");
    }
}
