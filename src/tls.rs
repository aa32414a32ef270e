//! TLS to PostgreSQL with libpq's sslmode semantics, on OpenSSL (as libpq itself is).
//!
//! | sslmode | encrypted | server certificate checked |
//! | --- | --- | --- |
//! | disable | no | |
//! | prefer | when the server offers it | against sslrootcert when one is set or found |
//! | require | yes | likewise |
//! | verify-ca | yes | against sslrootcert: signed by that CA |
//! | verify-full | yes | against sslrootcert, and issued for the host connected to |

use std::sync::{Arc, Mutex};

use openssl::ssl::{SslConnector, SslFiletype, SslMethod, SslVerifyMode};
use openssl::x509::store::X509StoreBuilder;
use openssl::x509::X509;
use postgres_openssl::MakeTlsConnector;

use crate::conninfo::{RootCert, SslMode, TlsSettings};
use crate::error::{Error, Result};

/// What one connection string's TLS needs, loaded once (certificate files are read here, so a
/// bad file is reported before the first connection, not at each one).
#[derive(Clone)]
pub struct Tls {
    settings: TlsSettings,
    connector: SslConnector,
}

/// Why the server's certificate was refused, filled in by OpenSSL's verify callback during one
/// connection attempt: OpenSSL's own error says only "certificate verify failed".
pub type Refusal = Arc<Mutex<Option<String>>>;

impl Tls {
    pub fn new(settings: TlsSettings) -> Result<Tls> {
        let tls_error = |what: &str, e: openssl::error::ErrorStack| {
            Error::DatabaseUrl(format!("TLS: {what}: {e}"))
        };
        let mut builder = SslConnector::builder(SslMethod::tls_client())
            .map_err(|e| tls_error("set up OpenSSL", e))?;
        if settings.mode != SslMode::Disable {
            match &settings.root_cert {
                Some(RootCert::System) => builder
                    .set_default_verify_paths()
                    .map_err(|e| tls_error("load the system's trusted roots", e))?,
                Some(RootCert::File(path)) => {
                    let what = format!("read sslrootcert {}", path.display());
                    let pem = std::fs::read(path)
                        .map_err(|e| Error::DatabaseUrl(format!("TLS: {what}: {e}")))?;
                    // Only the given authorities: not the system's besides (libpq does the same).
                    let mut store = X509StoreBuilder::new().map_err(|e| tls_error(&what, e))?;
                    for cert in X509::stack_from_pem(&pem).map_err(|e| tls_error(&what, e))? {
                        store.add_cert(cert).map_err(|e| tls_error(&what, e))?;
                    }
                    builder.set_cert_store(store.build());
                }
                None => builder.set_verify(SslVerifyMode::NONE),
            }
            if let Some((cert, key)) = &settings.client {
                builder
                    .set_certificate_chain_file(cert)
                    .map_err(|e| tls_error(&format!("load sslcert {}", cert.display()), e))?;
                builder
                    .set_private_key_file(key, SslFiletype::PEM)
                    .map_err(|e| tls_error(&format!("load sslkey {}", key.display()), e))?;
                builder.check_private_key().map_err(|e| {
                    tls_error(
                        &format!(
                            "sslkey {} does not belong to sslcert {}",
                            key.display(),
                            cert.display()
                        ),
                        e,
                    )
                })?;
            }
        }
        Ok(Tls {
            settings,
            connector: builder.build(),
        })
    }

    /// What tokio-postgres is told: it knows whether to ask for TLS, not how to check it.
    pub fn protocol_mode(&self) -> tokio_postgres::config::SslMode {
        use tokio_postgres::config::SslMode as Pg;
        match self.settings.mode {
            SslMode::Disable => Pg::Disable,
            SslMode::Prefer => Pg::Prefer,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => Pg::Require,
        }
    }

    /// A connector for one connection attempt, and where it records why a certificate was
    /// refused.
    pub fn connector(&self) -> (MakeTlsConnector, Refusal) {
        let refusal: Refusal = Arc::default();
        let mut make = MakeTlsConnector::new(self.connector.clone());
        let check_host = self.settings.mode == SslMode::VerifyFull;
        let checked = self.settings.root_cert.is_some();
        let slot = refusal.clone();
        make.set_callback(move |config, _host| {
            config.set_verify_hostname(check_host);
            if checked {
                let slot = slot.clone();
                config.set_verify_callback(SslVerifyMode::PEER, move |ok, ctx| {
                    if !ok {
                        *slot.lock().unwrap_or_else(|p| p.into_inner()) =
                            Some(ctx.error().to_string());
                    }
                    ok
                });
            }
            Ok(())
        });
        (make, refusal)
    }

    /// One line for a connection that failed because of TLS, naming the setting to look at; None
    /// when TLS was not the cause.
    pub fn explain(&self, e: &tokio_postgres::Error, refusal: &Refusal) -> Option<String> {
        let mode = self.settings.mode.as_str();
        if let Some(reason) = refusal.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let root = self
                .settings
                .root_cert
                .as_ref()
                .map_or_else(String::new, |r| format!(", sslrootcert={r}"));
            let hint = if reason.to_lowercase().contains("mismatch") {
                "the host in the connection string must be one the certificate names (or use sslmode=verify-ca)"
            } else {
                "sslrootcert must be the certificate authority that signed the server's certificate"
            };
            return Some(format!(
                "the server's TLS certificate was refused ({reason}; sslmode={mode}{root}): {hint}"
            ));
        }
        let text = crate::db::describe(e);
        if text.contains("server does not support TLS") {
            return Some(format!(
                "the server does not accept TLS connections and sslmode={mode} requires one: turn ssl on in the server, or use sslmode=prefer to allow an unencrypted connection"
            ));
        }
        // A server's own refusal (pg_hba.conf, a missing client certificate) speaks for itself.
        let lower = text.to_lowercase();
        (e.as_db_error().is_none() && (lower.contains("tls") || lower.contains("ssl")))
            .then(|| format!("TLS handshake failed (sslmode={mode}): {text}"))
    }
}
