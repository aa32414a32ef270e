//! Connection strings as libpq reads them, TLS included.
//!
//! tokio-postgres parses URLs and `key=value` strings itself but knows only `sslmode` disable,
//! prefer and require, and no certificate files. Clockwatch takes the TLS settings out of the
//! string first (`sslmode`, `sslrootcert`, `sslcert`, `sslkey`), falls back to libpq's
//! environment variables and default files for those not given, and hands the rest to
//! tokio-postgres. The TLS itself is OpenSSL's, as in libpq, through postgres-openssl.
//! `tcp_user_timeout` is taken out too: libpq reads it in milliseconds, tokio-postgres in seconds.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// The settings read here rather than by tokio-postgres.
const TAKEN_KEYS: [&str; 5] = [
    "sslmode",
    "sslrootcert",
    "sslcert",
    "sslkey",
    "tcp_user_timeout",
];

/// libpq's sslmode, `allow` aside (it tries plain text first; nobody should want that).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    fn parse(value: &str) -> Result<SslMode> {
        Ok(match value {
            "disable" => SslMode::Disable,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            "allow" => {
                return Err(Error::DatabaseUrl(
                    "sslmode=allow is not supported (it tries an unencrypted connection first): use prefer or require".into(),
                ))
            }
            other => {
                return Err(Error::DatabaseUrl(format!(
                    "invalid sslmode \"{other}\": expected disable, prefer, require, verify-ca or verify-full"
                )))
            }
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }
}

/// Which certificate authorities vouch for the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootCert {
    /// `sslrootcert=system`: the trust store OpenSSL was built with.
    System,
    File(PathBuf),
}

impl std::fmt::Display for RootCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RootCert::System => f.write_str("system"),
            RootCert::File(path) => write!(f, "{}", path.display()),
        }
    }
}

/// The TLS settings of one connection string, defaults resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    pub mode: SslMode,
    /// Checked against when set: required by verify-ca and verify-full; with prefer and require
    /// only when given or when libpq's default file exists (libpq verifies then too).
    pub root_cert: Option<RootCert>,
    /// Client certificate and key, for `cert` authentication.
    pub client: Option<(PathBuf, PathBuf)>,
}

/// A connection string split in two: what tokio-postgres parses, and the TLS settings.
#[derive(Debug)]
pub struct ConnInfo {
    pub rest: String,
    pub tls: TlsSettings,
    /// How long sent data may go unacknowledged before the connection is given up (0: the
    /// system's default).
    pub tcp_user_timeout: Option<std::time::Duration>,
    /// The keys the string gave, for settings Clockwatch defaults only when they were not given.
    pub keys: Vec<String>,
}

/// Where libpq looks when a setting is given neither in the string nor in the environment.
pub struct Defaults {
    pub env: fn(&str) -> Option<String>,
    pub home: Option<PathBuf>,
}

impl Defaults {
    pub fn from_process() -> Defaults {
        Defaults {
            env: |name| std::env::var(name).ok().filter(|v| !v.is_empty()),
            home: std::env::var_os("HOME").map(PathBuf::from),
        }
    }

    /// `~/.postgresql/<name>` when it exists.
    fn file(&self, name: &str) -> Option<PathBuf> {
        self.home
            .as_ref()
            .map(|h| h.join(".postgresql").join(name))
            .filter(|p| p.exists())
    }
}

pub fn parse(url: &str, defaults: &Defaults) -> Result<ConnInfo> {
    let (rest, pairs) = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        split_url(url)?
    } else {
        split_key_value(url)?
    };
    let given = |key: &str| {
        pairs
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
    };
    let setting = |key: &str, env: &str| given(key).or_else(|| (defaults.env)(env));

    let root_cert = setting("sslrootcert", "PGSSLROOTCERT").map(|v| {
        if v == "system" {
            RootCert::System
        } else {
            RootCert::File(PathBuf::from(v))
        }
    });
    let mode = match setting("sslmode", "PGSSLMODE") {
        Some(v) => SslMode::parse(&v)?,
        // As libpq 16: trusting the system's roots means checking the host name too.
        None if root_cert == Some(RootCert::System) => SslMode::VerifyFull,
        None => SslMode::Prefer,
    };
    if root_cert == Some(RootCert::System) && mode != SslMode::VerifyFull {
        return Err(Error::DatabaseUrl(format!(
            "sslrootcert=system needs sslmode=verify-full (any CA in the system's store could vouch for any host), not sslmode={}",
            mode.as_str()
        )));
    }
    let root_cert = root_cert.or_else(|| defaults.file("root.crt").map(RootCert::File));
    if mode >= SslMode::VerifyCa && root_cert.is_none() {
        return Err(Error::DatabaseUrl(format!(
            "sslmode={} needs the certificate authority to check the server against: set sslrootcert to its file (or to system for the system's trusted roots), or put it in ~/.postgresql/root.crt",
            mode.as_str()
        )));
    }
    if let Some(RootCert::File(path)) = &root_cert {
        must_exist(path, "sslrootcert")?;
    }
    let cert = setting("sslcert", "PGSSLCERT")
        .map(PathBuf::from)
        .or_else(|| defaults.file("postgresql.crt"));
    let key = setting("sslkey", "PGSSLKEY")
        .map(PathBuf::from)
        .or_else(|| defaults.file("postgresql.key"));
    let client = match (cert, key) {
        (Some(cert), Some(key)) => {
            must_exist(&cert, "sslcert")?;
            must_exist(&key, "sslkey")?;
            Some((cert, key))
        }
        (Some(_), None) => {
            return Err(Error::DatabaseUrl(
                "sslcert is set but not sslkey: give the client certificate's private key too"
                    .into(),
            ))
        }
        (None, Some(key)) if given("sslkey").is_some() || (defaults.env)("PGSSLKEY").is_some() => {
            return Err(Error::DatabaseUrl(format!(
                "sslkey is set ({}) but not sslcert: give the client certificate too",
                key.display()
            )))
        }
        _ => None,
    };
    // Files merely found in ~/.postgresql do not matter without TLS; a certificate asked for does.
    let client = match client {
        Some(_) if mode == SslMode::Disable && setting("sslcert", "PGSSLCERT").is_some() => {
            return Err(Error::DatabaseUrl(
                "a client certificate (sslcert) is set but sslmode=disable turns TLS off".into(),
            ))
        }
        Some(_) if mode == SslMode::Disable => None,
        client => client,
    };
    let tcp_user_timeout = given("tcp_user_timeout")
        .map(|v| {
            v.parse::<u64>().map_err(|_| {
                Error::DatabaseUrl(format!(
                    "invalid tcp_user_timeout \"{v}\": expected a number of milliseconds"
                ))
            })
        })
        .transpose()?
        .filter(|ms| *ms > 0)
        .map(std::time::Duration::from_millis);
    Ok(ConnInfo {
        rest,
        tcp_user_timeout,
        tls: TlsSettings {
            mode,
            root_cert,
            client,
        },
        keys: pairs.into_iter().map(|(k, _)| k).collect(),
    })
}

fn must_exist(path: &Path, setting: &str) -> Result<()> {
    if path.is_file() {
        Ok(())
    } else {
        Err(Error::DatabaseUrl(format!(
            "{setting} file {} does not exist or is not a file",
            path.display()
        )))
    }
}

/// A URL's TLS parameters taken out of its query string, the others kept as they were written.
/// Returns the URL without them and every parameter, decoded.
fn split_url(url: &str) -> Result<(String, Vec<(String, String)>)> {
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_string(), Vec::new()));
    };
    let mut kept = Vec::new();
    let mut pairs = Vec::new();
    for param in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = param.split_once('=').unwrap_or((param, ""));
        let key = percent_decode(key)?;
        let value = percent_decode(value)?;
        if !TAKEN_KEYS.contains(&key.as_str()) {
            kept.push(param);
        }
        pairs.push((key, value));
    }
    let rest = if kept.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Ok((rest, pairs))
}

fn percent_decode(text: &str) -> Result<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| {
                    Error::DatabaseUrl(format!("invalid percent-encoding in \"{text}\""))
                })?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out)
        .map_err(|_| Error::DatabaseUrl(format!("\"{text}\" does not decode to UTF-8")))
}

/// A `key=value` string's TLS settings taken out, the other pairs kept as they were written.
/// Values may be single-quoted, with `\'` and `\\` escapes, as libpq reads them.
fn split_key_value(text: &str) -> Result<(String, Vec<(String, String)>)> {
    let mut kept: Vec<&str> = Vec::new();
    let mut pairs = Vec::new();
    let mut chars = text.char_indices().peekable();
    loop {
        while chars.next_if(|(_, c)| c.is_whitespace()).is_some() {}
        let Some(&(start, _)) = chars.peek() else {
            break;
        };
        let mut key = String::new();
        while let Some((_, c)) = chars.next_if(|(_, c)| *c != '=' && !c.is_whitespace()) {
            key.push(c);
        }
        while chars.next_if(|(_, c)| c.is_whitespace()).is_some() {}
        if chars.next_if(|(_, c)| *c == '=').is_none() {
            return Err(Error::DatabaseUrl(format!(
                "missing \"=\" after \"{key}\" in the connection string"
            )));
        }
        while chars.next_if(|(_, c)| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        if chars.next_if(|(_, c)| *c == '\'').is_some() {
            loop {
                match chars.next() {
                    Some((_, '\'')) => break,
                    Some((_, '\\')) => match chars.next() {
                        Some((_, c)) => value.push(c),
                        None => break,
                    },
                    Some((_, c)) => value.push(c),
                    None => {
                        return Err(Error::DatabaseUrl(format!(
                            "unterminated quoted value for \"{key}\" in the connection string"
                        )))
                    }
                }
            }
        } else {
            while let Some((_, c)) = chars.next_if(|(_, c)| !c.is_whitespace()) {
                if c == '\\' {
                    if let Some((_, escaped)) = chars.next() {
                        value.push(escaped);
                    }
                } else {
                    value.push(c);
                }
            }
        }
        let end = chars.peek().map_or(text.len(), |&(i, _)| i);
        if !TAKEN_KEYS.contains(&key.as_str()) {
            kept.push(&text[start..end]);
        }
        pairs.push((key, value));
    }
    Ok((kept.join(" "), pairs))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_defaults() -> Defaults {
        Defaults {
            env: |_| None,
            home: None,
        }
    }

    #[test]
    fn tls_settings_leave_a_url_and_the_rest_stays_as_written() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.crt");
        std::fs::write(&ca, "x").unwrap();
        let url = format!(
            "postgres://u:p%40ss@db.example.com:5433/app?sslmode=verify-full&sslrootcert={}&target_session_attrs=read-write&tcp_user_timeout=5000",
            ca.display()
        );
        let info = parse(&url, &no_defaults()).unwrap();
        assert_eq!(
            info.rest,
            "postgres://u:p%40ss@db.example.com:5433/app?target_session_attrs=read-write"
        );
        assert_eq!(info.tls.mode, SslMode::VerifyFull);
        assert_eq!(info.tls.root_cert, Some(RootCert::File(ca)));
        assert_eq!(
            info.keys,
            [
                "sslmode",
                "sslrootcert",
                "target_session_attrs",
                "tcp_user_timeout"
            ]
        );
        assert_eq!(
            info.tcp_user_timeout,
            Some(std::time::Duration::from_secs(5))
        );
    }

    #[test]
    fn key_value_strings_keep_quoted_values() {
        let info = parse(
            "host=h dbname='my db' sslmode = require password='it\\'s'",
            &no_defaults(),
        )
        .unwrap();
        assert_eq!(info.rest, "host=h dbname='my db' password='it\\'s'");
        assert_eq!(info.tls.mode, SslMode::Require);
        assert_eq!(info.tls.root_cert, None);
    }

    #[test]
    fn the_environment_fills_in_what_the_string_leaves_out() {
        let defaults = Defaults {
            env: |name| (name == "PGSSLMODE").then(|| "require".to_string()),
            home: None,
        };
        assert_eq!(
            parse("host=h", &defaults).unwrap().tls.mode,
            SslMode::Require
        );
        assert_eq!(
            parse("host=h sslmode=disable", &defaults).unwrap().tls.mode,
            SslMode::Disable
        );
        assert_eq!(
            parse("host=h", &no_defaults()).unwrap().tls.mode,
            SslMode::Prefer
        );
    }

    #[test]
    fn default_files_are_used_with_tls_and_ignored_without() {
        let home = tempfile::tempdir().unwrap();
        let dir = home.path().join(".postgresql");
        std::fs::create_dir(&dir).unwrap();
        for name in ["root.crt", "postgresql.crt", "postgresql.key"] {
            std::fs::write(dir.join(name), "x").unwrap();
        }
        let defaults = Defaults {
            env: |_| None,
            home: Some(home.path().to_path_buf()),
        };
        let tls = parse("host=h sslmode=verify-ca", &defaults).unwrap().tls;
        assert_eq!(tls.root_cert, Some(RootCert::File(dir.join("root.crt"))));
        assert_eq!(
            tls.client,
            Some((dir.join("postgresql.crt"), dir.join("postgresql.key")))
        );
        let plain = parse("host=h sslmode=disable", &defaults).unwrap().tls;
        assert_eq!(plain.client, None);
        let asked = format!(
            "host=h sslmode=disable sslcert={} sslkey={}",
            dir.join("postgresql.crt").display(),
            dir.join("postgresql.key").display()
        );
        let err = parse(&asked, &defaults).unwrap_err().to_string();
        assert!(err.contains("sslmode=disable turns TLS off"), "{err}");
    }

    #[test]
    fn impossible_combinations_are_refused_naming_the_setting() {
        let err = |s: &str| parse(s, &no_defaults()).unwrap_err().to_string();
        assert!(err("host=h sslmode=verify-full").contains("sslrootcert"));
        assert!(err("host=h sslmode=allow").contains("sslmode=allow"));
        assert!(err("host=h sslmode=bogus").contains("invalid sslmode"));
        assert!(err("host=h sslrootcert=system sslmode=require").contains("verify-full"));
        assert!(err("host=h sslrootcert=/nonexistent/ca.crt").contains("sslrootcert file"));
        assert!(err("host=h sslcert=/x.crt").contains("sslkey"));
        assert!(err("host=h dbname='open").contains("unterminated"));
        assert_eq!(
            parse("host=h sslrootcert=system", &no_defaults())
                .unwrap()
                .tls
                .mode,
            SslMode::VerifyFull
        );
    }
}
