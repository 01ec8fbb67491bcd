//! Which certificate authorities the runner trusts when it talks to its
//! control plane: the web PKI roots (as always), plus an operator's own CA
//! (`[worker] ca_file`, `runner run --ca-file`) for a control plane whose
//! certificate no public CA signed.
//!
//! One setting for the process, read once at start-up from the config, so
//! every client of the control plane — the worker's calls, the token
//! refresh, `runner login`'s code exchange, `runner run` — trusts the same
//! roots. The repository hosts have their own (`repositories.ca_file`).

use std::path::Path;
use std::sync::RwLock;

static EXTRA_ROOTS: RwLock<Vec<reqwest::Certificate>> = RwLock::new(Vec::new());

/// Reads the PEM certificates of `path` and trusts them (besides the web
/// PKI roots) for every control-plane client built from now on; replaces
/// what an earlier call set. The count of certificates read.
pub fn trust_ca_file(path: &Path) -> Result<usize, String> {
    let certs = read_ca_file(path)?;
    let n = certs.len();
    *EXTRA_ROOTS.write().unwrap_or_else(|e| e.into_inner()) = certs;
    Ok(n)
}

/// The certificates of a PEM CA file; the error names the file and the fix.
pub fn read_ca_file(path: &Path) -> Result<Vec<reqwest::Certificate>, String> {
    let pem = std::fs::read(path).map_err(|e| {
        format!(
            "worker.ca_file {}: {e}; point it at a PEM file of the CA certificates that sign the control plane's certificate",
            path.display()
        )
    })?;
    let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
        format!(
            "worker.ca_file {}: not PEM certificates ({e})",
            path.display()
        )
    })?;
    if certs.is_empty() {
        return Err(format!(
            "worker.ca_file {} holds no certificate; give the PEM file of the CA that signs the control plane's certificate",
            path.display()
        ));
    }
    Ok(certs)
}

/// A client builder for the control plane: the trusted roots set, no
/// redirects followed (a redirect must never carry the bearer token on).
pub fn client_builder() -> reqwest::blocking::ClientBuilder {
    let mut b = reqwest::blocking::Client::builder().redirect(reqwest::redirect::Policy::none());
    for c in EXTRA_ROOTS.read().unwrap_or_else(|e| e.into_inner()).iter() {
        b = b.add_root_certificate(c.clone());
    }
    b
}

/// A transport error with its causes (reqwest's own message names only
/// the URL), and, when the control plane's certificate is not trusted,
/// what to do about it.
pub fn describe(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let s = c.to_string();
        if !text.contains(&s) {
            text.push_str(": ");
            text.push_str(&s);
        }
        cause = c.source();
    }
    if untrusted(e) {
        text.push_str(
            "; the control plane's TLS certificate is not trusted: if an operator CA signed it, set [worker] ca_file (or --ca-file) to that CA's PEM file",
        );
    }
    text
}

/// Whether `e` (or one of its causes) is the server's certificate failing
/// verification: a configuration problem (`ca_file`), not an outage.
pub fn untrusted(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(e);
    while let Some(c) = cause {
        let s = c.to_string();
        if ["UnknownIssuer", "invalid peer certificate", "certificate"]
            .iter()
            .any(|m| s.contains(m))
        {
            return true;
        }
        cause = c.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ca_file_must_hold_certificates_and_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ca.pem");
        let e = read_ca_file(&p).unwrap_err();
        assert!(e.contains("ca.pem") && e.contains("PEM"), "{e}");
        std::fs::write(&p, "no pem here\n").unwrap();
        let e = read_ca_file(&p).unwrap_err();
        assert!(e.contains("holds no certificate"), "{e}");
    }

    #[test]
    fn an_untrusted_certificate_says_what_to_set() {
        #[derive(Debug)]
        struct E(&'static str, Option<Box<E>>);
        impl std::fmt::Display for E {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.0)
            }
        }
        impl std::error::Error for E {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                self.1.as_deref().map(|e| e as _)
            }
        }
        let e = E(
            "error sending request",
            Some(Box::new(E("invalid peer certificate: UnknownIssuer", None))),
        );
        let s = describe(&e);
        assert!(s.contains("UnknownIssuer") && s.contains("ca_file"), "{s}");
        let plain = describe(&E("connection refused", None));
        assert_eq!(plain, "connection refused");
    }
}
