//! Connection errors in plain words, for the client and the agent alike.
//!
//! HTTP clients report a refused server certificate as rustls/webpki wrote it, several causes
//! deep (`invalid peer certificate: Other(OtherError(CaUsedAsEndEntity))`), and reqwest's own
//! message (`error sending request for url …`) does not include its causes. [`explain_send_error`]
//! says the whole chain once, and adds what a certificate error means and what to do about it
//! ([`certificate_advice`]). Trust is configuration (`ca_file`), hence this crate.

use std::error::Error;

/// What a certificate error found anywhere in `err`'s chain means and what to do, or `None`
/// when the chain holds none. Recognised: a CA certificate used as the server's own
/// (`CaUsedAsEndEntity`, what `openssl req -x509` makes), an issuer not trusted
/// (`UnknownIssuer`), a certificate for other names (`NotValidForName`), an expired or not yet
/// valid one.
pub fn certificate_advice(err: &(dyn Error + 'static)) -> Option<&'static str> {
    let mut cur = Some(err);
    while let Some(e) = cur {
        // Display and Debug: rustls shows some variants only by their Debug names.
        let text = format!("{e} {e:?}");
        if let Some(advice) = advice_for(&text) {
            return Some(advice);
        }
        cur = e.source();
    }
    None
}

fn advice_for(text: &str) -> Option<&'static str> {
    // rustls says "invalid peer certificate" (Display) or "InvalidCertificate" (Debug).
    if !text.contains("ertificate") {
        None
    } else if text.contains("CaUsedAsEndEntity") {
        Some(
            "the server's certificate is a CA certificate (basicConstraints CA:TRUE, what \
             `openssl req -x509` makes by default), which TLS refuses as a server's own: make a \
             CA and a server certificate signed by it, with the server's name in \
             subjectAltName, and trust the CA with `ca_file` (docs/server.md, TLS)",
        )
    } else if text.contains("UnknownIssuer") {
        Some(
            "the server's certificate is not signed by an authority this machine trusts: give \
             the CA certificate that signed it as `ca_file` (docs/server.md, TLS)",
        )
    } else if text.contains("NotValidForName") || text.contains("certificate not valid for name") {
        Some(
            "the server's certificate is not valid for the host name in the server URL: use a \
             name listed in the certificate's subjectAltName, or issue a certificate with this \
             name in subjectAltName (docs/server.md, TLS)",
        )
    } else if text.contains("Expired") || text.contains("certificate expired") {
        Some(
            "the server's certificate has expired (or this machine's clock is wrong): renew the \
             certificate on the server",
        )
    } else if text.contains("NotValidYet") || text.contains("certificate not valid yet") {
        Some(
            "the server's certificate is not valid yet: check this machine's clock and the \
             server's, or reissue the certificate",
        )
    } else {
        None
    }
}

/// `err` and its causes joined by `: `, a cause whose words its parent already said left out,
/// then, for a certificate error, what it means and what to do.
pub fn explain_send_error(err: &(dyn Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cur = Some(err);
    while let Some(e) = cur {
        let t = e.to_string();
        if !t.is_empty() && !parts.iter().any(|p| p.contains(&t)) {
            parts.push(t);
        }
        cur = e.source();
    }
    let mut out = parts.join(": ");
    if let Some(advice) = certificate_advice(err) {
        out.push_str(" — ");
        out.push_str(advice);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An error with a cause, as HTTP clients nest them.
    #[derive(Debug)]
    struct Nested(&'static str, Option<Box<Nested>>);
    impl std::fmt::Display for Nested {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }
    impl Error for Nested {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            self.1.as_deref().map(|e| e as &(dyn Error + 'static))
        }
    }

    fn chain(texts: &[&'static str]) -> Nested {
        texts
            .iter()
            .rev()
            .fold(None, |inner, t| Some(Nested(t, inner.map(Box::new))))
            .unwrap()
    }

    #[test]
    fn each_certificate_error_has_its_advice() {
        for (rustls, want) in [
            (
                "invalid peer certificate: Other(OtherError(CaUsedAsEndEntity))",
                "is a CA certificate",
            ),
            (
                "invalid peer certificate: UnknownIssuer",
                "not signed by an authority",
            ),
            (
                "invalid peer certificate: certificate not valid for name \"logs\"; certificate is only valid for localhost",
                "not valid for the host name",
            ),
            (
                "invalid peer certificate: NotValidForName",
                "not valid for the host name",
            ),
            (
                "invalid peer certificate: certificate expired: verification time 2 (UNIX), but certificate is not valid after 1 (1 seconds ago)",
                "has expired",
            ),
            ("invalid peer certificate: Expired", "has expired"),
            ("invalid peer certificate: NotValidYet", "not valid yet"),
        ] {
            let e = chain(&[
                "error sending request for url (https://logs:8443/v1/me)",
                "client error (Connect)",
                rustls,
            ]);
            let advice = certificate_advice(&e).unwrap_or_else(|| panic!("{rustls}"));
            assert!(advice.contains(want), "{rustls}: {advice}");
            let said = explain_send_error(&e);
            assert!(
                said.starts_with("error sending request for url (https://logs:8443/v1/me): client error (Connect): invalid peer certificate"),
                "{said}"
            );
            assert!(said.ends_with(advice), "{said}");
        }
    }

    #[test]
    fn other_errors_are_said_once_without_advice() {
        let e = chain(&[
            "error sending request for url (http://127.0.0.1:9/v1/me)",
            "client error (Connect)",
            "tcp connect error",
            "Connection refused (os error 111)",
        ]);
        assert_eq!(certificate_advice(&e), None);
        assert_eq!(
            explain_send_error(&e),
            "error sending request for url (http://127.0.0.1:9/v1/me): client error (Connect): tcp connect error: Connection refused (os error 111)"
        );
        // A cause repeating its parent's words is not said twice.
        let e = chain(&["timed out: operation timed out", "operation timed out"]);
        assert_eq!(explain_send_error(&e), "timed out: operation timed out");
    }
}
