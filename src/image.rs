//! Row images as JSON objects, read without building a JSON tree.
//!
//! A staged change carries the host row once or twice, as a record's text that [`crate::record`]
//! turns into a JSON object with the columns it was captured with. The daemon needs a handful of its
//! fields (ids, names, times) and which columns an update changed; the event keeps the record's
//! text itself. Parsing every image into a map of owned keys and values and printing it back
//! was about half the daemon's CPU (bench/README.md); a [`RowImage`] instead keeps the JSON text
//! and the position of each top-level field.
//!
//! Comparing fields by their text is exact here: each value is printed by its type's output
//! function, one way only, and turned into JSON the same way every time, so two fields print
//! alike if and only if they hold the same value. (A numeric's scale is part of what is stored:
//! 1.5 and 1.50 differ, as they did when fields were compared as `serde_json` values with every
//! digit kept; json values, which have no equality in PostgreSQL either, compare as written.)

use std::error::Error as StdError;
use std::fmt;
use std::ops::Range;

use serde_json::value::RawValue;
use serde_json::Value;
use tokio_postgres::types::{to_sql_checked, FromSql, IsNull, ToSql, Type};

/// A JSON object's text and where each of its top-level fields is.
#[derive(Clone, PartialEq)]
pub struct RowImage {
    text: String,
    fields: Vec<(Key, Range<usize>)>,
}

/// A field name: where it sits in the text, or (if it needed unescaping) its own copy.
#[derive(Clone, PartialEq)]
pub(crate) enum Key {
    At(Range<usize>),
    Owned(String),
}

impl RowImage {
    /// A JSON object's text with its fields already located: each a name and its value's range.
    pub(crate) fn indexed(text: String, fields: Vec<(Key, Range<usize>)>) -> RowImage {
        RowImage { text, fields }
    }

    /// The field's value as JSON text, if the row has the field.
    pub fn get(&self, column: &str) -> Option<Raw<'_>> {
        // Names compared as bytes: slicing the text as `str` for every field checked char
        // boundaries, and the daemon looks up a dozen fields of each image this way.
        let text = self.text.as_bytes();
        let wanted = column.as_bytes();
        self.fields
            .iter()
            .find(|(key, _)| match key {
                Key::At(range) => text.get(range.clone()) == Some(wanted),
                Key::Owned(k) => k.as_bytes() == wanted,
            })
            .map(|(_, value)| Raw(&self.text[value.clone()]))
    }

    /// Every field, in the order PostgreSQL printed them.
    pub fn fields(&self) -> impl Iterator<Item = (&str, Raw<'_>)> {
        self.fields.iter().map(|(key, value)| {
            let key = match key {
                Key::At(range) => &self.text[range.clone()],
                Key::Owned(k) => k.as_str(),
            };
            (key, Raw(&self.text[value.clone()]))
        })
    }

    /// As a `serde_json` value, for the rare paths that want one (the dead-letter table).
    pub fn to_value(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or(Value::Null)
    }
}

impl fmt::Debug for RowImage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// One field's value, as JSON text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Raw<'a>(&'a str);

impl<'a> Raw<'a> {
    pub fn json(self) -> &'a str {
        self.0
    }

    pub fn is_null(self) -> bool {
        self.0 == "null"
    }

    /// The text of a scalar as the host would print it; None for null. A string without escapes
    /// is sliced, not parsed; arrays and objects come back as compact JSON.
    pub fn text(self) -> Option<String> {
        let s = self.0;
        match s.as_bytes().first() {
            Some(b'n') if s == "null" => None,
            Some(b'"') if !s.contains('\\') => Some(s[1..s.len() - 1].to_string()),
            Some(b'"') | Some(b'[') | Some(b'{') => {
                serde_json::from_str::<Value>(s).ok().map(|v| match v {
                    Value::String(text) => text,
                    other => other.to_string(),
                })
            }
            _ => Some(s.to_string()),
        }
    }

    /// The texts of an array's scalar elements (nulls left out); None if this is not an array.
    pub fn array_texts(self) -> Option<Vec<String>> {
        if !self.0.starts_with('[') {
            return None;
        }
        let items: Vec<&RawValue> = serde_json::from_str(self.0).ok()?;
        Some(items.iter().filter_map(|i| Raw(i.get()).text()).collect())
    }
}

/// JSON text to or from a json/jsonb column, passed through as is: json as it was written,
/// jsonb as PostgreSQL prints it. (jsonb's binary format is a version byte, 1, then the text.)
#[derive(Debug, Clone, Copy)]
pub struct JsonText<'a>(pub &'a str);

impl<'a> FromSql<'a> for JsonText<'a> {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn StdError + Sync + Send>> {
        let text = match (*ty == Type::JSONB, raw.split_first()) {
            (false, _) => raw,
            (true, Some((1, text))) => text,
            (true, _) => return Err("unsupported jsonb version".into()),
        };
        Ok(JsonText(std::str::from_utf8(text)?))
    }

    fn accepts(ty: &Type) -> bool {
        matches!(*ty, Type::JSON | Type::JSONB)
    }
}

impl ToSql for JsonText<'_> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut bytes::BytesMut,
    ) -> Result<IsNull, Box<dyn StdError + Sync + Send>> {
        if *ty == Type::JSONB {
            out.extend_from_slice(&[1]);
        }
        out.extend_from_slice(self.0.as_bytes());
        Ok(IsNull::No)
    }

    fn accepts(ty: &Type) -> bool {
        matches!(*ty, Type::JSON | Type::JSONB)
    }

    to_sql_checked!();
}

/// A document of changed values (`previous_value`, `new_value`) read for a report: parsed, or,
/// where serde_json's recursion limit (128 levels) stops it, each field whose value is nested
/// deeper kept as its JSON text, in a string. A host's jsonb column may nest an array 200 deep;
/// such a value must read as what it is, not end the report.
pub fn changed_values(text: &str) -> Value {
    if let Ok(value) = serde_json::from_str::<Value>(text) {
        return value;
    }
    match serde_json::from_str::<std::collections::BTreeMap<String, Box<RawValue>>>(text) {
        Ok(fields) => Value::Object(
            fields
                .into_iter()
                .map(|(field, raw)| {
                    let value = serde_json::from_str(raw.get())
                        .unwrap_or_else(|_| Value::String(raw.get().to_string()));
                    (field, value)
                })
                .collect(),
        ),
        Err(_) => Value::String(text.to_string()),
    }
}

/// Images built from JSON text, for tests (the daemon's are indexed as they are written,
/// [`crate::record::Shape::to_image`]).
#[cfg(test)]
mod from_json {
    use std::borrow::Cow;
    use std::fmt;

    use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
    use serde_json::value::RawValue;

    use super::{Key, RowImage};

    impl RowImage {
        /// Index a JSON object's text. Anything else (an array, a scalar, broken JSON) is an error
        /// naming what was wrong.
        pub(crate) fn parse(text: String) -> Result<RowImage, String> {
            let fields = {
                let entries: Entries = serde_json::from_str(&text)
                    .map_err(|e| format!("row image is not a JSON object: {e}"))?;
                let start = text.as_ptr() as usize;
                let at = |s: &str| {
                    let from = s.as_ptr() as usize - start;
                    from..from + s.len()
                };
                entries
                    .0
                    .into_iter()
                    .map(|(key, value)| {
                        let key = match key {
                            Cow::Borrowed(k) => Key::At(at(k)),
                            Cow::Owned(k) => Key::Owned(k),
                        };
                        (key, at(value.get()))
                    })
                    .collect()
            };
            Ok(RowImage { text, fields })
        }
    }

    /// A JSON object's entries, borrowed from its text where possible.
    struct Entries<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

    impl<'de> Deserialize<'de> for Entries<'de> {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            struct Object;
            impl<'de> Visitor<'de> for Object {
                type Value = Entries<'de>;
                fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                    f.write_str("a JSON object")
                }
                fn visit_map<A: MapAccess<'de>>(
                    self,
                    mut map: A,
                ) -> Result<Entries<'de>, A::Error> {
                    let mut entries = Vec::with_capacity(map.size_hint().unwrap_or(16));
                    while let Some((FieldName(key), value)) = map.next_entry()? {
                        entries.push((key, value));
                    }
                    Ok(Entries(entries))
                }
            }
            deserializer.deserialize_map(Object)
        }
    }

    /// A key borrowed from the text unless it had escapes (serde's own `Cow<str>` always copies).
    struct FieldName<'a>(Cow<'a, str>);

    impl<'de> Deserialize<'de> for FieldName<'de> {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            struct Name;
            impl<'de> Visitor<'de> for Name {
                type Value = FieldName<'de>;
                fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                    f.write_str("a field name")
                }
                fn visit_borrowed_str<E>(self, v: &'de str) -> Result<FieldName<'de>, E> {
                    Ok(FieldName(Cow::Borrowed(v)))
                }
                fn visit_str<E>(self, v: &str) -> Result<FieldName<'de>, E> {
                    Ok(FieldName(Cow::Owned(v.to_string())))
                }
            }
            deserializer.deserialize_str(Name)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(text: &str) -> RowImage {
        RowImage::parse(text.to_string()).unwrap()
    }

    #[test]
    fn fields_are_found_with_their_json_text() {
        let row = image(
            r#"{"id": 1, "name": "Ann \"A\"", "rate": 1.50, "tags": [1, "x", null], "gone": null}"#,
        );
        assert_eq!(row.get("id").map(Raw::json), Some("1"));
        assert_eq!(row.get("rate").and_then(Raw::text).as_deref(), Some("1.50"));
        assert_eq!(
            row.get("name").and_then(Raw::text).as_deref(),
            Some("Ann \"A\"")
        );
        assert_eq!(row.get("gone").map(Raw::is_null), Some(true));
        assert_eq!(row.get("gone").and_then(Raw::text), None);
        assert_eq!(row.get("missing"), None);
        assert_eq!(
            row.get("tags").and_then(Raw::array_texts),
            Some(vec!["1".to_string(), "x".to_string()])
        );
        assert_eq!(
            row.get("tags").and_then(Raw::text).as_deref(),
            Some(r#"[1,"x",null]"#)
        );
        let names: Vec<&str> = row.fields().map(|(k, _)| k).collect();
        assert_eq!(names, ["id", "name", "rate", "tags", "gone"]);
    }

    #[test]
    fn escaped_keys_and_unicode_are_read() {
        let row = image(r#"{"a\"b": "zoë 😀", "plain": {"x": [1]}}"#);
        assert_eq!(
            row.get("a\"b").and_then(Raw::text).as_deref(),
            Some("zoë 😀")
        );
        assert_eq!(row.get("plain").map(Raw::json), Some(r#"{"x": [1]}"#));
    }

    #[test]
    fn anything_but_an_object_is_refused() {
        for text in ["[1, 2]", "\"x\"", "null", "{\"a\": ", ""] {
            let err = RowImage::parse(text.to_string()).unwrap_err();
            assert!(
                err.starts_with("row image is not a JSON object"),
                "{text}: {err}"
            );
        }
    }
}
