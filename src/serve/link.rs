//! Signed links: how the host application lets one of its admins read one workspace's log.
//!
//! The host's backend checks that the viewer is an admin of the workspace, then mints a link
//! carrying the workspace, the viewer and an expiry, signed with HMAC-SHA256 under a secret it
//! shares with Clockwatch. Clockwatch accepts nothing else: no sessions, no passwords of its own.
//! The signed text is one line per field, so no choice of workspace or viewer can shift a field
//! boundary (a field holding a line break is refused). Any language mints one in ten lines
//! (README).
//!
//! A link may also carry the viewer's time zone (`tz`) and language (`lang`), which the page
//! then shows times and words in. Both are signed with the rest, under a second domain
//! (`clockwatch-link-v2`, the two extra lines after the expiry, empty when absent), so a link
//! without them reads exactly as before and neither can be added to or changed in one.
//!
//! A page that serves one of several hosts sharing a log database (`source_id`) signs the
//! source too, under a third domain (`clockwatch-link-v3`, the source on the line after it, then
//! the v2 lines): workspace 1 of one host is not workspace 1 of another, and a link minted for
//! one never opens the other's, whatever secret the two pages share.

use std::time::{SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::error::{Error, Result};

/// The start of every signed text, so a signature made for something else never passes.
const DOMAIN: &str = "clockwatch-link-v1";
/// The start of a link's signed text when it carries a time zone or a language.
const DOMAIN_V2: &str = "clockwatch-link-v2";
/// The start of a link's signed text on a page serving one source of a shared log database.
const DOMAIN_V3: &str = "clockwatch-link-v3";

/// What a link says about its viewer besides who they are: both optional, both signed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Viewing {
    /// An IANA time zone name (`Europe/Berlin`).
    pub tz: Option<String>,
    /// A language tag (`de`, `fr-CA`).
    pub lang: Option<String>,
}

/// Shortest secret accepted: 32 bytes, a SHA-256 block's worth of guessing.
pub const MIN_SECRET_BYTES: usize = 32;

/// The shared secret. Not `Debug`, not `Display`: it never reaches a log line.
#[derive(Clone)]
pub struct Secret(Vec<u8>, Option<String>);

impl Secret {
    pub fn new(bytes: Vec<u8>) -> Result<Secret> {
        if bytes.len() < MIN_SECRET_BYTES {
            return Err(Error::Config(format!(
                "the link secret is {} bytes; use at least {MIN_SECRET_BYTES} random ones (e.g. `openssl rand -hex 32`)",
                bytes.len()
            )));
        }
        Ok(Secret(bytes, None))
    }

    /// The secret of a page serving `source` of a shared log database (`source_id`): its links
    /// sign the source with the rest.
    pub fn for_source(mut self, source: Option<String>) -> Secret {
        self.1 = source;
        self
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

    fn mac(&self, workspace: &str, viewer: &str, expires: i64, viewing: &Viewing) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length");
        if let Some(source) = &self.1 {
            let tz = viewing.tz.as_deref().unwrap_or_default();
            let lang = viewing.lang.as_deref().unwrap_or_default();
            mac.update(
                format!("{DOMAIN_V3}\n{source}\n{workspace}\n{viewer}\n{expires}\n{tz}\n{lang}")
                    .as_bytes(),
            );
        } else if viewing.tz.is_none() && viewing.lang.is_none() {
            mac.update(format!("{DOMAIN}\n{workspace}\n{viewer}\n{expires}").as_bytes());
        } else {
            let tz = viewing.tz.as_deref().unwrap_or_default();
            let lang = viewing.lang.as_deref().unwrap_or_default();
            mac.update(
                format!("{DOMAIN_V2}\n{workspace}\n{viewer}\n{expires}\n{tz}\n{lang}").as_bytes(),
            );
        }
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
    /// The viewer's time zone and language, when the link names them.
    pub viewing: Viewing,
}

impl Grant {
    /// Sign a grant for `ttl_secs` from now.
    pub fn mint(
        secret: &Secret,
        workspace: &str,
        viewer: &str,
        ttl_secs: i64,
        viewing: Viewing,
    ) -> Result<Grant> {
        check_field("workspace", workspace)?;
        check_field("viewer", viewer)?;
        for (name, value) in [("tz", &viewing.tz), ("lang", &viewing.lang)] {
            if let Some(value) = value {
                check_field(name, value)?;
            }
        }
        let expires = now() + ttl_secs;
        let signature = hex::encode(
            secret
                .mac(workspace, viewer, expires, &viewing)
                .finalize()
                .into_bytes(),
        );
        Ok(Grant {
            workspace: workspace.to_string(),
            viewer: viewer.to_string(),
            expires,
            signature,
            viewing,
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
        viewing: Viewing,
    ) -> std::result::Result<Grant, Refusal> {
        if check_field("workspace", workspace).is_err() || check_field("viewer", viewer).is_err() {
            return Err(Refusal::Invalid);
        }
        let expires: i64 = expires.parse().map_err(|_| Refusal::Invalid)?;
        let tag = hex::decode(signature).map_err(|_| Refusal::Invalid)?;
        secret
            .mac(workspace, viewer, expires, &viewing)
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
            viewing,
        })
    }

    /// The link's fields, in the order a query string carries them.
    pub fn fields(&self) -> Vec<(&'static str, String)> {
        let mut fields = vec![
            ("w", self.workspace.clone()),
            ("v", self.viewer.clone()),
            ("e", self.expires.to_string()),
        ];
        if let Some(tz) = &self.viewing.tz {
            fields.push(("tz", tz.clone()));
        }
        if let Some(lang) = &self.viewing.lang {
            fields.push(("lang", lang.clone()));
        }
        fields.push(("s", self.signature.clone()));
        fields
    }

    /// The query string that carries this grant.
    pub fn query(&self) -> String {
        let mut q = form_urlencoded::Serializer::new(String::new());
        for (key, value) in self.fields() {
            q.append_pair(key, &value);
        }
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
        let g = Grant::mint(&secret(), "42", "ann", 60, Viewing::default()).unwrap();
        let e = g.expires.to_string();
        // The signature with its first digit changed (whatever the digit is).
        let first = if g.signature.starts_with('0') {
            "1"
        } else {
            "0"
        };
        let altered = format!("{first}{}", &g.signature[1..]);
        assert_eq!(
            Grant::verify(&secret(), "42", "ann", &e, &g.signature, Viewing::default()).unwrap(),
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
                Grant::verify(&secret(), w, v, &e, &s, Viewing::default()),
                Err(Refusal::Invalid),
                "{w} {v} {e} {s}"
            );
        }
        let other = Secret::new(b"another secret, 32 bytes or more!!".to_vec()).unwrap();
        assert_eq!(
            Grant::verify(&other, "42", "ann", &e, &g.signature, Viewing::default()),
            Err(Refusal::Invalid)
        );
    }

    #[test]
    fn a_link_minted_for_one_source_opens_no_other() {
        let scoped = |source: Option<&str>| secret().for_source(source.map(str::to_string));
        let a = Grant::mint(&scoped(Some("a")), "1", "ann", 60, Viewing::default()).unwrap();
        let e = a.expires.to_string();
        let opens = |s: &Secret| Grant::verify(s, "1", "ann", &e, &a.signature, Viewing::default());
        assert_eq!(opens(&scoped(Some("a"))), Ok(a.clone()));
        for other in [Some("b"), None] {
            assert_eq!(opens(&scoped(other)), Err(Refusal::Invalid), "{other:?}");
        }
        // Nor does a link of a page serving no source open a source's page.
        let plain = Grant::mint(&secret(), "1", "ann", 60, Viewing::default()).unwrap();
        let e = plain.expires.to_string();
        assert_eq!(
            Grant::verify(
                &scoped(Some("a")),
                "1",
                "ann",
                &e,
                &plain.signature,
                Viewing::default()
            ),
            Err(Refusal::Invalid)
        );
    }

    #[test]
    fn an_expired_link_is_refused_as_expired() {
        let g = Grant::mint(&secret(), "42", "ann", -1, Viewing::default()).unwrap();
        assert_eq!(
            Grant::verify(
                &secret(),
                "42",
                "ann",
                &g.expires.to_string(),
                &g.signature,
                Viewing::default()
            ),
            Err(Refusal::Expired)
        );
    }

    #[test]
    fn the_time_zone_and_language_are_signed_with_the_rest() {
        let viewing = Viewing {
            tz: Some("Europe/Berlin".into()),
            lang: Some("de".into()),
        };
        let g = Grant::mint(&secret(), "42", "ann", 60, viewing.clone()).unwrap();
        let e = g.expires.to_string();
        assert!(Grant::verify(&secret(), "42", "ann", &e, &g.signature, viewing.clone()).is_ok());
        for changed in [
            Viewing::default(),
            Viewing {
                tz: Some("UTC".into()),
                ..viewing.clone()
            },
            Viewing {
                lang: Some("fr".into()),
                ..viewing.clone()
            },
            Viewing {
                lang: None,
                ..viewing.clone()
            },
        ] {
            assert_eq!(
                Grant::verify(&secret(), "42", "ann", &e, &g.signature, changed.clone()),
                Err(Refusal::Invalid),
                "{changed:?}"
            );
        }
        // A link without them signs as links always did.
        let plain = Grant::mint(&secret(), "42", "ann", 60, Viewing::default()).unwrap();
        let text = format!("clockwatch-link-v1\n42\nann\n{}", plain.expires);
        let mut mac = Hmac::<Sha256>::new_from_slice(b"0123456789abcdef0123456789abcdef").unwrap();
        mac.update(text.as_bytes());
        assert_eq!(plain.signature, hex::encode(mac.finalize().into_bytes()));
    }

    #[test]
    fn fields_cannot_smuggle_a_line_break_and_secrets_are_long() {
        assert!(Grant::mint(&secret(), "42\nann", "x", 60, Viewing::default()).is_err());
        assert!(Secret::new(b"short".to_vec()).is_err());
        assert_eq!(parse_ttl("15m").unwrap(), 900);
        assert_eq!(parse_ttl("30").unwrap(), 30);
        assert!(parse_ttl("2w").is_err());
    }
}
