//! Signed links: how the host application lets one of its admins read one workspace's log.
//!
//! The host's backend checks that the viewer is an admin of the workspace, then mints a link
//! carrying the workspace, the viewer and an expiry, signed with HMAC-SHA256 under a secret it
//! shares with Clockwatch. Clockwatch accepts nothing else: no sessions, no passwords of its own.
//! The signed text is one line per field, so no choice of workspace or viewer can shift a field
//! boundary (a field holding a line break is refused). Any language mints one in ten lines
//! (README).

use std::time::{SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::error::{Error, Result};

/// The start of every signed text, so a signature made for something else never passes.
const DOMAIN: &str = "clockwatch-link-v1";

/// Shortest secret accepted: 32 bytes, a SHA-256 block's worth of guessing.
pub const MIN_SECRET_BYTES: usize = 32;

/// The shared secret. Not `Debug`, not `Display`: it never reaches a log line.
#[derive(Clone)]
pub struct Secret(Vec<u8>);

impl Secret {
    pub fn new(bytes: Vec<u8>) -> Result<Secret> {
        if bytes.len() < MIN_SECRET_BYTES {
            return Err(Error::Config(format!(
                "the link secret is {} bytes; use at least {MIN_SECRET_BYTES} random ones (e.g. `openssl rand -hex 32`)",
                bytes.len()
            )));
        }
        Ok(Secret(bytes))
    }

    /// From `CLOCKWATCH_LINK_SECRET`, else from the file `[serve] secret_file` names (its
    /// content, trailing whitespace removed).
    pub fn load(secret_file: Option<&std::path::Path>) -> Result<Secret> {
        if let Ok(text) = std::env::var("CLOCKWATCH_LINK_SECRET") {
            return Secret::new(text.trim_end().as_bytes().to_vec());
        }
        let Some(path) = secret_file else {
            return Err(Error::Config(
                "no link secret: set CLOCKWATCH_LINK_SECRET (e.g. from `openssl rand -hex 32`), or [serve] secret_file, to the secret the application signs links with".into(),
            ));
        };
        // A secret anyone on the machine can rewrite lets anyone mint links: refused.
        let meta = std::fs::metadata(path)
            .map_err(|e| Error::Config(format!("serve.secret_file: {}: {e}", path.display())))?;
        if std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o002 != 0 {
            return Err(Error::Config(format!(
                "serve.secret_file: {} is writable by every user: chmod 600 it",
                path.display()
            )));
        }
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Config(format!("serve.secret_file: {}: {e}", path.display())))?;
        Secret::new(text.trim_end().as_bytes().to_vec())
    }

    fn mac(&self, workspace: &str, viewer: &str, expires: i64) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(format!("{DOMAIN}\n{workspace}\n{viewer}\n{expires}").as_bytes());
        mac
    }
}

/// What a valid link grants: reading this workspace's log, as this viewer, until then.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub workspace: String,
    pub viewer: String,
    /// Seconds since the Unix epoch.
    pub expires: i64,
    /// The signature, hex: carried on to the page's own links.
    pub signature: String,
}

impl Grant {
    /// Sign a grant for `ttl_secs` from now.
    pub fn mint(secret: &Secret, workspace: &str, viewer: &str, ttl_secs: i64) -> Result<Grant> {
        check_field("workspace", workspace)?;
        check_field("viewer", viewer)?;
        let expires = now() + ttl_secs;
        let signature = hex::encode(
            secret
                .mac(workspace, viewer, expires)
                .finalize()
                .into_bytes(),
        );
        Ok(Grant {
            workspace: workspace.to_string(),
            viewer: viewer.to_string(),
            expires,
            signature,
        })
    }

    /// Check a link's fields: the signature must be this secret's over exactly these fields
    /// (compared in constant time), and the expiry still ahead.
    pub fn verify(
        secret: &Secret,
        workspace: &str,
        viewer: &str,
        expires: &str,
        signature: &str,
    ) -> std::result::Result<Grant, Refusal> {
        if check_field("workspace", workspace).is_err() || check_field("viewer", viewer).is_err() {
            return Err(Refusal::Invalid);
        }
        let expires: i64 = expires.parse().map_err(|_| Refusal::Invalid)?;
        let tag = hex::decode(signature).map_err(|_| Refusal::Invalid)?;
        secret
            .mac(workspace, viewer, expires)
            .verify_slice(&tag)
            .map_err(|_| Refusal::Invalid)?;
        if expires <= now() {
            return Err(Refusal::Expired);
        }
        Ok(Grant {
            workspace: workspace.to_string(),
            viewer: viewer.to_string(),
            expires,
            signature: signature.to_string(),
        })
    }

    /// The query string that carries this grant.
    pub fn query(&self) -> String {
        let mut q = form_urlencoded::Serializer::new(String::new());
        q.append_pair("w", &self.workspace)
            .append_pair("v", &self.viewer)
            .append_pair("e", &self.expires.to_string())
            .append_pair("s", &self.signature);
        q.finish()
    }
}

/// Why a link was refused (both answer 401; the page says which).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Missing,
    Invalid,
    Expired,
}

impl Refusal {
    pub fn message(self) -> &'static str {
        match self {
            Refusal::Missing => "This page opens from a link the application gives its admins.",
            Refusal::Invalid => {
                "This link is not valid. Open the audit log again from the application."
            }
            Refusal::Expired => {
                "This link has expired. Open the audit log again from the application."
            }
        }
    }
}

fn check_field(name: &str, value: &str) -> Result<()> {
    if value.is_empty() || value.contains(['\n', '\r']) {
        return Err(Error::Input(format!(
            "{name}: must be one line of text, not empty"
        )));
    }
    Ok(())
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

/// A duration as `clockwatch link --ttl` takes it: `90s`, `15m`, `2h`, `1d`, or seconds.
pub fn parse_ttl(text: &str) -> Result<i64> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => 0,
    };
    match number.parse::<i64>() {
        Ok(n) if n > 0 && scale > 0 && n <= 366 * 86_400 / scale => Ok(n * scale),
        _ => Err(Error::Input(format!(
            "--ttl: \"{text}\" is not a duration (use 90s, 15m, 2h or 1d, at most a year)"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret() -> Secret {
        Secret::new(b"0123456789abcdef0123456789abcdef".to_vec()).unwrap()
    }

    #[test]
    fn a_minted_link_verifies_and_any_change_to_it_does_not() {
        let g = Grant::mint(&secret(), "42", "ann", 60).unwrap();
        let e = g.expires.to_string();
        // The signature with its first digit changed (whatever the digit is).
        let first = if g.signature.starts_with('0') {
            "1"
        } else {
            "0"
        };
        let altered = format!("{first}{}", &g.signature[1..]);
        assert_eq!(
            Grant::verify(&secret(), "42", "ann", &e, &g.signature).unwrap(),
            g
        );
        for (w, v, e, s) in [
            ("43", "ann", e.clone(), g.signature.clone()),
            ("42", "bob", e.clone(), g.signature.clone()),
            (
                "42",
                "ann",
                (g.expires + 1).to_string(),
                g.signature.clone(),
            ),
            ("42", "ann", e.clone(), altered),
            ("42", "ann", e.clone(), String::new()),
        ] {
            assert_eq!(
                Grant::verify(&secret(), w, v, &e, &s),
                Err(Refusal::Invalid),
                "{w} {v} {e} {s}"
            );
        }
        let other = Secret::new(b"another secret, 32 bytes or more!!".to_vec()).unwrap();
        assert_eq!(
            Grant::verify(&other, "42", "ann", &e, &g.signature),
            Err(Refusal::Invalid)
        );
    }

    #[test]
    fn an_expired_link_is_refused_as_expired() {
        let g = Grant::mint(&secret(), "42", "ann", -1).unwrap();
        assert_eq!(
            Grant::verify(&secret(), "42", "ann", &g.expires.to_string(), &g.signature),
            Err(Refusal::Expired)
        );
    }

    #[test]
    fn fields_cannot_smuggle_a_line_break_and_secrets_are_long() {
        assert!(Grant::mint(&secret(), "42\nann", "x", 60).is_err());
        assert!(Secret::new(b"short".to_vec()).is_err());
        assert_eq!(parse_ttl("15m").unwrap(), 900);
        assert_eq!(parse_ttl("30").unwrap(), 30);
        assert!(parse_ttl("2w").is_err());
    }
}
