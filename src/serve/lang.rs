//! The page's languages: one message catalogue per language, each its own TOML file in
//! `src/serve/lang/`, compiled into the binary.
//!
//! A catalogue maps a key to a text; `{name}` in a text is filled in by [`Messages::fill`].
//! English is the reference: a test holds every other catalogue to exactly its keys and, for
//! each key, its placeholders, so a translation can neither miss a text nor drop a value. The
//! language is the link's signed `lang` when it names one the page speaks, else the browser's
//! `Accept-Language`, else English. The command line stays English.

use std::collections::HashMap;
use std::sync::OnceLock;

/// The languages the page speaks, English first (the fallback).
pub const LANGUAGES: [(&str, &str); 4] = [
    ("en", include_str!("lang/en.toml")),
    ("de", include_str!("lang/de.toml")),
    ("fr", include_str!("lang/fr.toml")),
    ("es", include_str!("lang/es.toml")),
];

/// One language's texts.
pub struct Messages {
    pub code: &'static str,
    texts: HashMap<String, String>,
}

/// Every catalogue, read once. A catalogue that does not parse is a build mistake the test
/// below catches; at run time its texts fall back to English key by key.
fn catalogues() -> &'static Vec<Messages> {
    static ALL: OnceLock<Vec<Messages>> = OnceLock::new();
    ALL.get_or_init(|| {
        LANGUAGES
            .iter()
            .map(|(code, text)| Messages {
                code,
                texts: parse(text).unwrap_or_default(),
            })
            .collect()
    })
}

fn parse(text: &str) -> Result<HashMap<String, String>, String> {
    let table: toml::Table = toml::from_str(text).map_err(|e| e.to_string())?;
    table
        .into_iter()
        .map(|(key, value)| match value {
            toml::Value::String(s) => Ok((key, s)),
            other => Err(format!("{key}: {} is not a string", other.type_str())),
        })
        .collect()
}

impl Messages {
    /// The catalogue for a language tag (`de`, `de-AT`, `DE`), if the page speaks it.
    pub fn for_tag(tag: &str) -> Option<&'static Messages> {
        let primary = tag.split(['-', '_']).next()?.trim().to_ascii_lowercase();
        catalogues().iter().find(|m| m.code == primary)
    }

    pub fn english() -> &'static Messages {
        &catalogues()[0]
    }

    /// The language to answer in: the link's, else the first of `Accept-Language` (by its
    /// weights) the page speaks, else English.
    pub fn choose(signed: Option<&str>, accept: Option<&str>) -> &'static Messages {
        if let Some(m) = signed.and_then(Messages::for_tag) {
            return m;
        }
        let mut wanted: Vec<(f32, &str)> = accept
            .unwrap_or_default()
            .split(',')
            .filter_map(|part| {
                let mut pieces = part.split(';');
                let tag = pieces.next()?.trim();
                let weight = pieces
                    .find_map(|p| p.trim().strip_prefix("q="))
                    .map_or(Some(1.0), |q| q.trim().parse::<f32>().ok())?;
                (!tag.is_empty() && weight > 0.0).then_some((weight, tag))
            })
            .collect();
        // Stable: equal weights keep the browser's order.
        wanted.sort_by(|a, b| b.0.total_cmp(&a.0));
        wanted
            .iter()
            .find_map(|(_, tag)| Messages::for_tag(tag))
            .unwrap_or_else(Messages::english)
    }

    /// The text of `key`: this language's, else English's, else the key itself (so a missing
    /// text shows as what it is rather than failing the page).
    pub fn get(&self, key: &str) -> String {
        self.texts
            .get(key)
            .or_else(|| Messages::english().texts.get(key))
            .cloned()
            .unwrap_or_else(|| key.to_string())
    }

    /// The text of `key` in this language or English, if a catalogue has it.
    pub fn find(&self, key: &str) -> Option<String> {
        self.texts
            .get(key)
            .or_else(|| Messages::english().texts.get(key))
            .cloned()
    }

    /// An action as the page names it: its label in this language, by its code (the log's own
    /// label for a code no catalogue knows), and where a creation came from, as the log says it.
    pub fn action(&self, code: &str, label: &str, origin: Option<&str>) -> String {
        let label = self
            .find(&format!("a_{}", code.replace('.', "_")))
            .unwrap_or_else(|| label.to_string());
        match origin {
            Some(origin) if code.ends_with(".created") => format!("{label} ({origin})"),
            _ => label,
        }
    }

    /// The text of `key` with each `{name}` replaced by its value.
    pub fn fill(&self, key: &str, values: &[(&str, &str)]) -> String {
        let mut text = self.get(key);
        for (name, value) in values {
            text = text.replace(&format!("{{{name}}}"), value);
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn placeholders(text: &str) -> BTreeSet<String> {
        text.split('{')
            .skip(1)
            .filter_map(|rest| rest.split_once('}').map(|(name, _)| name.to_string()))
            .collect()
    }

    #[test]
    fn every_catalogue_has_every_key_with_the_same_placeholders() {
        let english = parse(LANGUAGES[0].1).expect("en.toml parses");
        assert!(english.len() > 50, "English has the page's texts");
        for (code, text) in LANGUAGES {
            let other = parse(text).unwrap_or_else(|e| panic!("{code}.toml: {e}"));
            let missing: Vec<_> = english.keys().filter(|k| !other.contains_key(*k)).collect();
            let extra: Vec<_> = other.keys().filter(|k| !english.contains_key(*k)).collect();
            assert!(missing.is_empty(), "{code}.toml lacks {missing:?}");
            assert!(
                extra.is_empty(),
                "{code}.toml has keys English lacks: {extra:?}"
            );
            for (key, value) in &other {
                assert_eq!(
                    placeholders(value),
                    placeholders(&english[key]),
                    "{code}.toml: {key}"
                );
                assert!(!value.trim().is_empty(), "{code}.toml: {key} is empty");
            }
        }
    }

    #[test]
    fn english_names_every_action_as_the_log_labels_it() {
        let english = Messages::english();
        for (code, label) in crate::normalize::ACTIONS {
            assert_eq!(english.action(code, "?", None), *label, "{code}");
        }
        assert_eq!(
            Messages::for_tag("de")
                .unwrap()
                .action("time_entry.created", "?", Some("Timer")),
            "Zeiteintrag erstellt (Timer)"
        );
    }

    #[test]
    fn the_link_wins_then_the_browsers_preference_then_english() {
        assert_eq!(Messages::choose(Some("fr"), Some("de")).code, "fr");
        assert_eq!(
            Messages::choose(Some("xx"), Some("de-AT,de;q=0.9")).code,
            "de"
        );
        assert_eq!(
            Messages::choose(None, Some("it;q=0.9, es;q=0.8, en;q=0.5")).code,
            "es"
        );
        assert_eq!(Messages::choose(None, Some("en;q=0.2, fr")).code, "fr");
        assert_eq!(Messages::choose(None, Some("de;q=0")).code, "en");
        assert_eq!(Messages::choose(None, None).code, "en");
        assert_eq!(
            Messages::english().fill(
                "events_range",
                &[("first", "51"), ("last", "100"), ("total", "261")]
            ),
            "Events 51–100 of 261"
        );
    }
}
