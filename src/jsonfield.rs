//! One top-level field of a JSON object, read the way PostgreSQL's `json ->> key` reads it: a
//! string decoded, a number, boolean, object or array as written, null as nothing, and of two
//! fields with the same name the last.
//!
//! This reads the claims a host's stack puts in a setting (PostgREST's `request.jwt.claims`,
//! Hasura's `hasura.user`) to find who acts. Part of such a document is the end user's own
//! (Supabase's `user_metadata`), so the reader must not stop where PostgreSQL goes on: it keeps
//! its nesting on a heap stack, not the call stack, and has no depth limit (a general parser
//! that gives up past 128 levels would let a user nest their way out of being named, and one
//! that recursed would let them overflow the daemon's stack).

/// Characters of a JSON setting that capture stages (sql/baseline/02_capture.sql, actor_sql()):
/// a claim longer than this is cut there, and a field complete before the cut is still read.
pub const STAGED_CHARS: usize = 8192;

/// The value of `key` among the top-level fields of `json`, as `json ->> key` gives it. None for
/// text that is no JSON object (or is one with a broken escape, as PostgreSQL refuses it), for
/// a missing key and for null. Text exactly [`STAGED_CHARS`] long may have been cut by capture:
/// it counts as far as it reads.
pub fn field(json: &str, key: &str) -> Option<String> {
    let mut reader = Reader {
        text: json,
        at: 0,
        found: None,
    };
    let complete = reader.object(key).is_some();
    if complete || json.chars().count() == STAGED_CHARS {
        reader.found.flatten()
    } else {
        None
    }
}

struct Reader<'a> {
    text: &'a str,
    at: usize,
    /// The last field named `key` read so far: Some(None) when its value was null.
    found: Option<Option<String>>,
}

impl Reader<'_> {
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.at).copied()
    }

    fn space(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    fn eat(&mut self, byte: u8) -> bool {
        self.space();
        let here = self.peek() == Some(byte);
        if here {
            self.at += 1;
        }
        here
    }

    /// The top-level object, noting each field named `key`; None where it breaks off.
    fn object(&mut self, key: &str) -> Option<()> {
        if !self.eat(b'{') {
            return None;
        }
        if !self.eat(b'}') {
            loop {
                self.space();
                let name = self.string()?;
                if !self.eat(b':') {
                    return None;
                }
                self.space();
                let value = if self.peek() == Some(b'"') {
                    Some(self.string()?)
                } else {
                    let start = self.at;
                    self.skip_value()?;
                    let raw = &self.text[start..self.at];
                    (raw != "null").then(|| raw.to_string())
                };
                // A field counts once what follows it says it is whole: a number that runs to
                // the end of a cut claim (27 cut to 2) may be another number.
                let next = if self.eat(b',') {
                    Some(false)
                } else if self.eat(b'}') {
                    Some(true)
                } else {
                    None
                };
                let last = next?;
                if name == key {
                    self.found = Some(value);
                }
                if last {
                    break;
                }
            }
        }
        self.space();
        (self.at == self.text.len()).then_some(())
    }

    /// A string at the cursor, decoded.
    fn string(&mut self) -> Option<String> {
        if self.peek() != Some(b'"') {
            return None;
        }
        self.at += 1;
        let mut out = String::new();
        loop {
            let rest = &self.text[self.at..];
            let plain = rest.find(['"', '\\']).unwrap_or(rest.len());
            if rest[..plain].bytes().any(|b| b < 0x20) {
                return None;
            }
            out.push_str(&rest[..plain]);
            self.at += plain;
            match self.peek()? {
                b'"' => {
                    self.at += 1;
                    return Some(out);
                }
                _ => {
                    self.at += 1;
                    out.push(self.escape()?);
                }
            }
        }
    }

    /// The character an escape after its backslash stands for. PostgreSQL refuses \u0000 and a
    /// surrogate without its pair when it decodes a string, and so does this.
    fn escape(&mut self) -> Option<char> {
        let byte = self.peek()?;
        self.at += 1;
        Some(match byte {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let high = self.hex4()?;
                let code = if (0xd800..0xdc00).contains(&high) {
                    if !self.text[self.at..].starts_with("\\u") {
                        return None;
                    }
                    self.at += 2;
                    let low = self.hex4()?;
                    if !(0xdc00..0xe000).contains(&low) {
                        return None;
                    }
                    0x10000 + ((high - 0xd800) << 10) + (low - 0xdc00)
                } else {
                    high
                };
                char::from_u32(code).filter(|c| *c != '\0')?
            }
            _ => return None,
        })
    }

    fn hex4(&mut self) -> Option<u32> {
        let digits = self.text.get(self.at..self.at + 4)?;
        if !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        self.at += 4;
        u32::from_str_radix(digits, 16).ok()
    }

    /// Past one value that is not a string: a literal, a number, or an object or array however
    /// deep, its nesting kept in a vector.
    fn skip_value(&mut self) -> Option<()> {
        let mut open: Vec<u8> = Vec::new();
        loop {
            self.space();
            // A value.
            match self.peek()? {
                b'"' => {
                    self.skip_string()?;
                }
                b'{' | b'[' => {
                    let bracket = self.peek()?;
                    self.at += 1;
                    open.push(bracket);
                    let close = if bracket == b'{' { b'}' } else { b']' };
                    if self.eat(close) {
                        open.pop();
                    } else {
                        if bracket == b'{' {
                            self.member_name()?;
                        }
                        continue;
                    }
                }
                _ => self.scalar()?,
            }
            // What follows it: the next element or member, or the end of containers.
            loop {
                let Some(&inner) = open.last() else {
                    return Some(());
                };
                if self.eat(b',') {
                    if inner == b'{' {
                        self.member_name()?;
                    }
                    break;
                }
                if self.eat(if inner == b'{' { b'}' } else { b']' }) {
                    open.pop();
                    continue;
                }
                return None;
            }
        }
    }

    fn member_name(&mut self) -> Option<()> {
        self.space();
        self.skip_string()?;
        self.eat(b':').then_some(())
    }

    /// Past a string, checked as `string` checks it, without keeping it.
    fn skip_string(&mut self) -> Option<()> {
        self.string().map(drop)
    }

    fn scalar(&mut self) -> Option<()> {
        let rest = &self.text[self.at..];
        for word in ["true", "false", "null"] {
            if rest.starts_with(word) {
                self.at += word.len();
                return Some(());
            }
        }
        let bytes = rest.as_bytes();
        let mut i = usize::from(bytes.first() == Some(&b'-'));
        let digits = |i: &mut usize| {
            let start = *i;
            while bytes.get(*i).is_some_and(u8::is_ascii_digit) {
                *i += 1;
            }
            *i > start
        };
        if bytes.get(i) == Some(&b'0') {
            i += 1;
        } else if !digits(&mut i) {
            return None;
        }
        if bytes.get(i) == Some(&b'.') {
            i += 1;
            if !digits(&mut i) {
                return None;
            }
        }
        if matches!(bytes.get(i), Some(b'e' | b'E')) {
            i += 1;
            if matches!(bytes.get(i), Some(b'+' | b'-')) {
                i += 1;
            }
            if !digits(&mut i) {
                return None;
            }
        }
        self.at += i;
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn some(s: &str) -> Option<String> {
        Some(s.to_string())
    }

    #[test]
    fn reads_a_field_as_postgresql_prints_it() {
        let claims = r#" {"role": "web", "sub": "12", "exp": 1900000000} "#;
        assert_eq!(field(claims, "sub"), some("12"));
        assert_eq!(field(claims, "exp"), some("1900000000"));
        assert_eq!(field(r#"{"sub": 2e0}"#, "sub"), some("2e0"));
        assert_eq!(field(r#"{"sub": -0.5E+3}"#, "sub"), some("-0.5E+3"));
        assert_eq!(
            field(r#"{"a": [1, {"b": 2}] }"#, "a"),
            some(r#"[1, {"b": 2}]"#)
        );
        assert_eq!(field(r#"{"a": true}"#, "a"), some("true"));
        assert_eq!(field(r#"{"a": null}"#, "a"), None);
        assert_eq!(field(r#"{"sub": "1", "sub": "2"}"#, "sub"), some("2"));
        assert_eq!(
            field(r#"{"s\u0075b": "x\u00e9\"\\\/\n"}"#, "sub"),
            some("xé\"\\/\n")
        );
        assert_eq!(field(r#"{"sub": "\ud83d\ude00"}"#, "sub"), some("😀"));
        assert_eq!(
            field(r#"{"x-hasura-user-id": "7"}"#, "x-hasura-user-id"),
            some("7")
        );
        assert_eq!(field("{}", "sub"), None);
        // The key in a nested object is not the top level's.
        assert_eq!(field(r#"{"user": {"sub": "9"}}"#, "sub"), None);
    }

    #[test]
    fn depth_never_hides_a_field() {
        let deep = format!(
            r#"{{"sub": "2", "meta": {{"x": {}1{}}}}}"#,
            "[".repeat(200_000),
            "]".repeat(200_000)
        );
        assert_eq!(field(&deep, "sub"), some("2"));
        let deep = format!(
            r#"{{"meta": {}1{}, "sub": "3"}}"#,
            r#"{"a":"#.repeat(100_000),
            "}".repeat(100_000)
        );
        assert_eq!(field(&deep, "sub"), some("3"));
    }

    #[test]
    fn text_that_is_no_json_object_names_nobody() {
        for broken in [
            "",
            "not json",
            "[1]",
            r#""sub""#,
            r#"{"sub": "1""#,
            r#"{"sub": "1",}"#,
            r#"{"sub": "1"} x"#,
            r#"{"sub": "1", "a": [1,]}"#,
            r#"{"sub": "1", "a": 01}"#,
            r#"{"sub": "1", "a": tru}"#,
            r#"{"sub": "\u0000"}"#,
            r#"{"sub": "\ud83d"}"#,
            r#"{"sub": "\x"}"#,
            "{\"sub\": \"a\u{1}b\"}",
            r#"{sub: "1"}"#,
        ] {
            assert_eq!(field(broken, "sub"), None, "{broken}");
        }
    }

    #[test]
    fn a_claim_cut_by_capture_counts_as_far_as_it_reads() {
        let head = r#"{"sub": "5", "user_metadata": {"bio": ""#;
        let cut: String = format!("{head}{}", "x".repeat(STAGED_CHARS - head.len()));
        assert_eq!(cut.chars().count(), STAGED_CHARS);
        assert_eq!(field(&cut, "sub"), some("5"));
        // One character short of the cut, the same text is broken, not cut.
        assert_eq!(field(&cut[..cut.len() - 1], "sub"), None);
        // A value the cut ends in may be the start of another: 27 cut to 2 names nobody.
        let head = r#""sub": "#;
        let filler = format!(
            r#"{{"a": "{}", "#,
            "x".repeat(STAGED_CHARS - head.len() - 11)
        );
        let cut = format!("{filler}{head}2");
        assert_eq!(cut.chars().count(), STAGED_CHARS);
        assert_eq!(field(&cut, "sub"), None);
        assert_eq!(field(&format!("{filler}{head}27}}"), "sub"), some("27"));
    }
}
