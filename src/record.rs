//! Staged row images: a record's text, as PostgreSQL's `record_out` prints it, read with the
//! shape it was captured with and turned into the JSON object the rest of the daemon works on.
//!
//! Capture stages each row as `(1,"a b",,t)`: the fields in column order, without names, each as
//! its type's output function printed it (`sql/baseline/02_capture.sql` says why). The staged
//! row's shape (`audit_log.shape`) names the columns and their types as the table had them at
//! capture time, so a column added, dropped, renamed or retyped before the drain never shifts or
//! mislabels a value. Each value becomes what `to_jsonb` makes of it: numbers and booleans bare,
//! json as itself, arrays as arrays, times in ISO 8601 with a `T`, everything else as a string.
//! Capture prints with DateStyle ISO, so times have one form to read.

use std::borrow::Cow;
use std::fmt::Write as _;

use crate::image::{Key, RowImage};

/// The columns of an image, with how each value is read.
#[derive(Debug, Clone, PartialEq)]
pub struct Shape {
    pub columns: Vec<String>,
    pub kinds: Vec<Kind>,
}

/// How a column's printed value becomes JSON, by the column's type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Bool,
    /// smallint, integer, bigint, real, double precision, numeric: bare unless NaN or infinite.
    Number,
    /// json and jsonb: already JSON.
    Json,
    /// timestamp with time zone and time with time zone: a `T`, and the offset as `+HH:MM`.
    WithZone,
    /// timestamp without time zone: a `T` between date and time.
    Local,
    Array(Box<Kind>),
    Text,
}

impl Kind {
    /// The kind of a type as `format_type` names it (`bigint`, `numeric(12,2)`, `text[]`,
    /// `timestamp(3) with time zone`).
    pub fn of(type_name: &str) -> Kind {
        if let Some(element) = type_name.strip_suffix("[]") {
            return Kind::Array(Box::new(Kind::of(element)));
        }
        let base = type_name.split('(').next().unwrap_or(type_name).trim();
        match base {
            "boolean" => Kind::Bool,
            "smallint" | "integer" | "bigint" | "real" | "double precision" | "numeric" => {
                Kind::Number
            }
            "json" | "jsonb" => Kind::Json,
            _ if type_name.starts_with("time") && type_name.ends_with(" with time zone") => {
                Kind::WithZone
            }
            _ if type_name.starts_with("timestamp") => Kind::Local,
            _ => Kind::Text,
        }
    }
}

impl Shape {
    pub fn new(columns: Vec<String>, types: &[String]) -> Shape {
        Shape {
            columns,
            kinds: types.iter().map(|t| Kind::of(t)).collect(),
        }
    }

    /// The image as a JSON object keyed by column, indexed as it is written: each field's name
    /// and value are found where they were put, not by parsing the text again.
    pub fn to_image(&self, record: &str) -> Result<RowImage, String> {
        let fields = fields(record)?;
        if fields.len() != self.columns.len() {
            return Err(format!(
                "row image has {} fields where its shape has {} columns",
                fields.len(),
                self.columns.len()
            ));
        }
        let mut out = String::with_capacity(record.len() + 16 * fields.len());
        let mut index = Vec::with_capacity(fields.len());
        out.push('{');
        for (i, ((column, kind), value)) in self
            .columns
            .iter()
            .zip(&self.kinds)
            .zip(&fields)
            .enumerate()
        {
            if i > 0 {
                out.push(',');
            }
            let key_at = out.len() + 1;
            push_string(&mut out, column);
            // A name written without escapes is its own text in the object's; any other is kept.
            let key = if out.len() == key_at + column.len() + 1 {
                Key::At(key_at..key_at + column.len())
            } else {
                Key::Owned(column.clone())
            };
            out.push(':');
            let value_at = out.len();
            match value {
                None => out.push_str("null"),
                Some(value) => push_value(&mut out, kind, value)?,
            }
            index.push((key, value_at..out.len()));
        }
        out.push('}');
        Ok(RowImage::indexed(out, index))
    }
}

/// The fields of a record's text: `None` for a null (an empty unquoted field). A field is sliced
/// out of the text, and copied only when it holds escapes to undo: this runs once per staged
/// image, on the daemon's hot path.
pub fn fields(record: &str) -> Result<Vec<Option<Cow<'_, str>>>, String> {
    let inner = record
        .strip_prefix('(')
        .and_then(|r| r.strip_suffix(')'))
        .ok_or_else(|| format!("row image is not a record: {}", clip(record)))?;
    let bytes = inner.as_bytes();
    let mut fields = Vec::with_capacity(16);
    let mut at = 0;
    loop {
        let field = if bytes.get(at) == Some(&b'"') {
            let (value, end) = quoted_field(inner, at)
                .ok_or_else(|| format!("row image has an unclosed quote: {}", clip(record)))?;
            at = end;
            Some(value)
        } else {
            let end = inner[at..].find(',').map_or(inner.len(), |i| at + i);
            let value = &inner[at..end];
            at = end;
            (!value.is_empty()).then_some(Cow::Borrowed(value))
        };
        fields.push(field);
        match bytes.get(at) {
            Some(b',') => at += 1,
            None => break,
            Some(_) => {
                return Err(format!(
                    "unexpected text after a quoted field in row image: {}",
                    clip(record)
                ))
            }
        }
    }
    Ok(fields)
}

/// A quoted field starting at `start` (its opening quote): its value, and where it ends. Inside
/// the quotes a doubled quote is one quote and a backslash escapes the next character
/// (`record_out` doubles both); a value with neither is sliced, not copied.
fn quoted_field(inner: &str, start: usize) -> Option<(Cow<'_, str>, usize)> {
    let bytes = inner.as_bytes();
    let body = start + 1;
    let mut i = body;
    while i < bytes.len() {
        match bytes[i] {
            b'"' if bytes.get(i + 1) == Some(&b'"') => break,
            b'"' => return Some((Cow::Borrowed(&inner[body..i]), i + 1)),
            b'\\' => break,
            _ => i += 1,
        }
    }
    // Escapes to undo: copy from here on.
    let mut value = inner[body..i].to_string();
    let mut chars = inner[i..].char_indices();
    while let Some((offset, c)) = chars.next() {
        match c {
            '"' if inner[i + offset + 1..].starts_with('"') => {
                chars.next();
                value.push('"');
            }
            '"' => return Some((Cow::Owned(value), i + offset + 1)),
            '\\' => value.push(chars.next()?.1),
            c => value.push(c),
        }
    }
    None
}

fn push_value(out: &mut String, kind: &Kind, value: &str) -> Result<(), String> {
    match kind {
        Kind::Bool => out.push_str(match value {
            "t" => "true",
            "f" => "false",
            other => return Err(format!("boolean printed as {other:?}")),
        }),
        Kind::Number if is_json_number(value) => out.push_str(value),
        Kind::Json => out.push_str(value),
        Kind::WithZone => push_string(out, &iso_with_zone(value)),
        Kind::Local => push_string(out, &value.replacen(' ', "T", 1)),
        Kind::Array(element) => push_array(out, element, value)?,
        Kind::Number | Kind::Text => push_string(out, value),
    }
    Ok(())
}

/// `2026-11-02 09:00:00.5+01` as `2026-11-02T09:00:00.5+01:00` (and a time with zone likewise);
/// `infinity` and anything unexpected unchanged but for the `T`.
fn iso_with_zone(value: &str) -> String {
    let mut text = value.replacen(' ', "T", 1);
    // The offset follows the time: the last sign after the 'T' (or from the start for a time).
    let from = text.find('T').map(|t| t + 1).unwrap_or(0);
    if let Some(sign) = text[from..].rfind(['+', '-']).map(|i| i + from) {
        let offset = &text[sign + 1..];
        if offset.len() == 2 && offset.bytes().all(|b| b.is_ascii_digit()) {
            text.push_str(":00");
        }
    }
    text
}

/// An array literal (`{1,2}`, `{{1,2},{3,4}}`, `{a,"b c",NULL}`) as a JSON array.
fn push_array(out: &mut String, element: &Kind, literal: &str) -> Result<(), String> {
    // Bounds other than the default are printed first: `[0:1]={1,2}`; JSON has no place for them.
    let literal = match literal.starts_with('[') {
        true => literal.split_once('=').map(|(_, a)| a).unwrap_or(literal),
        false => literal,
    };
    let mut chars = literal.chars().peekable();
    push_array_level(out, element, &mut chars, literal)?;
    Ok(())
}

fn push_array_level(
    out: &mut String,
    element: &Kind,
    chars: &mut std::iter::Peekable<std::str::Chars<'_>>,
    literal: &str,
) -> Result<(), String> {
    if chars.next() != Some('{') {
        return Err(format!("array printed as {}", clip(literal)));
    }
    out.push('[');
    let mut first = true;
    loop {
        match chars.peek() {
            Some('}') => {
                chars.next();
                out.push(']');
                break;
            }
            None => return Err(format!("array printed as {}", clip(literal))),
            _ => {}
        }
        // ", " as jsonb prints an array: a changed value is stored as written (a json value).
        if !first {
            out.push_str(", ");
        }
        first = false;
        if chars.peek() == Some(&'{') {
            push_array_level(out, element, chars, literal)?;
        } else {
            let (value, quoted) = array_element(chars);
            match value {
                v if !quoted && v == "NULL" => out.push_str("null"),
                v => push_value(out, element, &v)?,
            }
        }
        if chars.peek() == Some(&',') {
            chars.next();
        }
    }
    Ok(())
}

/// A one-dimensional text array as PostgreSQL prints it (`{a,"b c",NULL}`): its elements,
/// unquoted, NULL as None; None for anything else.
pub fn text_array(literal: &str) -> Option<Vec<Option<String>>> {
    let mut chars = literal.chars().peekable();
    if chars.next() != Some('{') {
        return None;
    }
    let mut items = Vec::new();
    if chars.peek() == Some(&'}') {
        chars.next();
        return chars.next().is_none().then_some(items);
    }
    loop {
        if chars.peek() == Some(&'{') {
            return None;
        }
        let (value, quoted) = array_element(&mut chars);
        items.push((quoted || value != "NULL").then_some(value));
        match chars.next() {
            Some(',') => continue,
            Some('}') => return chars.next().is_none().then_some(items),
            _ => return None,
        }
    }
}

/// One element of an array literal, unquoted, and whether it was quoted.
fn array_element(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) -> (String, bool) {
    let mut value = String::new();
    let mut quoted = false;
    let mut in_quotes = false;
    while let Some(&c) = chars.peek() {
        match c {
            ',' | '}' if !in_quotes => break,
            '"' => {
                quoted = true;
                in_quotes = !in_quotes;
            }
            '\\' => {
                chars.next();
                if let Some(escaped) = chars.next() {
                    value.push(escaped);
                }
                continue;
            }
            _ => value.push(c),
        }
        chars.next();
    }
    (value, quoted)
}

/// Whether `value` is a JSON number as written (numeric's NaN and Infinity are not).
fn is_json_number(value: &str) -> bool {
    let digits = value.strip_prefix('-').unwrap_or(value);
    let (mantissa, exponent) = match digits.find(['e', 'E']) {
        Some(i) => (&digits[..i], Some(&digits[i + 1..])),
        None => (digits, None),
    };
    let (whole, fraction) = match mantissa.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (mantissa, None),
    };
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    all_digits(whole)
        && (whole == "0" || !whole.starts_with('0'))
        && fraction.map_or(true, all_digits)
        && exponent.map_or(true, |e| {
            all_digits(e.strip_prefix(['+', '-']).unwrap_or(e))
        })
}

/// `text` as a JSON string, escaped as PostgreSQL's `escape_json()` escapes it (so as `jsonb`
/// prints it; the chain's details rely on that, src/chain.rs): runs that need no escaping are
/// copied whole.
pub(crate) fn push_string(out: &mut String, text: &str) {
    out.push('"');
    let mut run = 0;
    for (i, b) in text.bytes().enumerate() {
        let escaped = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            0x08 => "\\b",
            0x0c => "\\f",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            b if b < 0x20 => "",
            _ => continue,
        };
        out.push_str(&text[run..i]);
        if escaped.is_empty() {
            let _ = write!(out, "\\u{:04x}", b);
        } else {
            out.push_str(escaped);
        }
        run = i + 1;
    }
    out.push_str(&text[run..]);
    out.push('"');
}

fn clip(text: &str) -> String {
    text.chars().take(80).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn decode(types: &[&str], record: &str) -> Value {
        let columns = (0..types.len()).map(|i| format!("c{i}")).collect();
        let types: Vec<String> = types.iter().map(|t| t.to_string()).collect();
        let image = Shape::new(columns, &types).to_image(record).unwrap();
        by_index(&image)
    }

    /// The image's fields as found through its index, checked against its text parsed whole.
    fn by_index(image: &RowImage) -> Value {
        let indexed: serde_json::Map<String, Value> = image
            .fields()
            .map(|(key, raw)| {
                let value = serde_json::from_str(raw.json())
                    .unwrap_or_else(|e| panic!("{e}: {:?} in {image:?}", raw.json()));
                (key.to_string(), value)
            })
            .collect();
        assert_eq!(Value::Object(indexed.clone()), image.to_value());
        Value::Object(indexed)
    }

    #[test]
    fn column_names_that_json_escapes_are_found_by_their_own_text() {
        let columns = vec![
            "a\"b".to_string(),
            "tab\there".to_string(),
            "plain".to_string(),
        ];
        let types = vec![
            "text".to_string(),
            "integer".to_string(),
            "boolean".to_string(),
        ];
        let image = Shape::new(columns, &types)
            .to_image(r#"("x ""y""",7,f)"#)
            .unwrap();
        assert_eq!(
            by_index(&image),
            json!({"a\"b": "x \"y\"", "tab\there": 7, "plain": false})
        );
        assert_eq!(image.get("a\"b").map(|r| r.json()), Some(r#""x \"y\"""#));
        assert_eq!(image.get("tab\there").map(|r| r.json()), Some("7"));
    }

    #[test]
    fn text_arrays_as_postgresql_prints_them() {
        let some = |s: &str| Some(s.to_string());
        assert_eq!(
            text_array(r#"{a,"b c",NULL,"NULL","","x\"y\\z"}"#),
            Some(vec![
                some("a"),
                some("b c"),
                None,
                some("NULL"),
                some(""),
                some("x\"y\\z")
            ])
        );
        assert_eq!(text_array("{}"), Some(vec![]));
        for broken in ["", "{a", "{a}b", "{{a}}", "[1]"] {
            assert_eq!(text_array(broken), None, "{broken}");
        }
    }

    #[test]
    fn fields_nulls_empty_strings_quotes_and_escapes() {
        assert_eq!(
            fields(r#"(1,,"","a ""b"" \\c",x)"#).unwrap(),
            vec![
                Some("1".into()),
                None,
                Some("".into()),
                Some(r#"a "b" \c"#.into()),
                Some("x".into())
            ]
        );
        assert_eq!(fields("()").unwrap(), vec![None]);
        assert!(fields("1,2").is_err());
    }

    #[test]
    fn values_read_as_to_jsonb_writes_them() {
        let v = decode(
            &[
                "bigint",
                "numeric(12,2)",
                "double precision",
                "boolean",
                "jsonb",
                "timestamp with time zone",
                "timestamp without time zone",
                "bigint[]",
                "text[]",
                "integer[]",
                "text",
                "numeric",
            ],
            r#"(9223372036854775807,1.50,NaN,t,"{""k"": [1, null]}","2026-11-02 08:00:00.25+00","2026-11-02 09:00:00","{1,2}","{a,""b c"",NULL}","{{1,2},{3,4}}","line
two",-0.5e+3)"#,
        );
        assert_eq!(v["c0"].to_string(), "9223372036854775807");
        assert_eq!(v["c1"].to_string(), "1.50");
        assert_eq!(v["c2"], json!("NaN"));
        assert_eq!(v["c3"], json!(true));
        assert_eq!(v["c4"], json!({"k": [1, null]}));
        assert_eq!(v["c5"], json!("2026-11-02T08:00:00.25+00:00"));
        assert_eq!(v["c6"], json!("2026-11-02T09:00:00"));
        assert_eq!(v["c7"], json!([1, 2]));
        assert_eq!(v["c8"], json!(["a", "b c", null]));
        assert_eq!(v["c9"], json!([[1, 2], [3, 4]]));
        assert_eq!(v["c10"], json!("line\ntwo"));
        assert_eq!(v["c11"].to_string(), "-0.5e+3");
    }

    #[test]
    fn zones_with_minutes_and_infinity() {
        assert_eq!(
            iso_with_zone("2026-11-02 08:00:00+05:30"),
            "2026-11-02T08:00:00+05:30"
        );
        assert_eq!(
            iso_with_zone("2026-11-02 08:00:00-03"),
            "2026-11-02T08:00:00-03:00"
        );
        assert_eq!(iso_with_zone("12:00:00+01"), "12:00:00+01:00");
        assert_eq!(iso_with_zone("infinity"), "infinity");
    }

    #[test]
    fn a_field_count_that_differs_from_the_shape_is_an_error() {
        let shape = Shape::new(vec!["a".into()], &["text".into()]);
        assert!(shape.to_image("(1,2)").is_err());
    }
}
