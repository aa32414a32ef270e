//! A source's `filter`: the condition a row must meet to be audited (`project_id is not null`).
//!
//! Capture evaluates it with the rights of Clockwatch's owner, inside the host's write, so it is
//! never spliced in as written. It is read here, in a small language of its own (columns and
//! constants compared with `= <> != < <= > >=`, `IS [NOT] NULL | TRUE | FALSE`, `[NOT] IN (...)`,
//! a boolean column alone, `AND`, `OR`, `NOT` and parentheses), and printed again with every
//! column quoted as an identifier of the row `t` and every constant as a literal. Anything else
//! (a function call, a cast, a subquery) is refused with the reason, and install refuses a column
//! whose type is not built in (a type the host created can carry operators of its own).

use crate::config::quote_ident;

/// A filter read and printed again: the SQL capture evaluates over a row `t`, and the columns
/// it reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    pub sql: String,
    pub columns: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    Quoted(String),
    Text(String),
    Number(String),
    Symbol(&'static str),
}

/// Read `condition`, or say in one line what is wrong with it.
pub fn parse(condition: &str) -> Result<Filter, String> {
    let tokens = tokenize(condition)?;
    let mut parser = Parser {
        tokens,
        at: 0,
        columns: Vec::new(),
    };
    let sql = parser.or()?;
    if let Some(token) = parser.tokens.get(parser.at) {
        return Err(format!(
            "unexpected {} after the condition",
            describe(token)
        ));
    }
    let mut columns = parser.columns;
    columns.sort();
    columns.dedup();
    Ok(Filter { sql, columns })
}

fn tokenize(text: &str) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push(Token::Word(chars[start..i].iter().collect()));
        } else if c.is_ascii_digit()
            || (c == '-' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit()))
        {
            let start = i;
            i += 1;
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                i += 1;
            }
            let number: String = chars[start..i].iter().collect();
            if number.matches('.').count() > 1 || number.ends_with('.') {
                return Err(format!("\"{number}\" is not a number"));
            }
            out.push(Token::Number(number));
        } else if c == '\'' || c == '"' {
            let mut value = String::new();
            i += 1;
            loop {
                match chars.get(i) {
                    None => return Err(format!("a {c} that is never closed")),
                    Some(&q) if q == c && chars.get(i + 1) == Some(&c) => {
                        value.push(c);
                        i += 2;
                    }
                    Some(&q) if q == c => {
                        i += 1;
                        break;
                    }
                    Some(&other) => {
                        value.push(other);
                        i += 1;
                    }
                }
            }
            out.push(if c == '\'' {
                Token::Text(value)
            } else {
                Token::Quoted(value)
            });
        } else {
            let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
            let symbol = ["<>", "!=", "<=", ">="]
                .into_iter()
                .find(|s| *s == two)
                .or_else(|| {
                    ["=", "<", ">", "(", ")", ","]
                        .into_iter()
                        .find(|s| s.starts_with(c))
                });
            match symbol {
                Some(s) => {
                    out.push(Token::Symbol(s));
                    i += s.len();
                }
                None => return Err(format!("\"{c}\" is not part of a filter")),
            }
        }
    }
    Ok(out)
}

fn describe(token: &Token) -> String {
    match token {
        Token::Word(w) => format!("\"{w}\""),
        Token::Quoted(q) => format!("\"{q}\""),
        Token::Text(t) => format!("'{t}'"),
        Token::Number(n) => n.clone(),
        Token::Symbol(s) => format!("\"{s}\""),
    }
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
    columns: Vec<String>,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn keyword(&mut self, word: &str) -> bool {
        match self.peek() {
            Some(Token::Word(w)) if w.eq_ignore_ascii_case(word) => {
                self.at += 1;
                true
            }
            _ => false,
        }
    }

    fn symbol(&mut self, symbol: &str) -> bool {
        match self.peek() {
            Some(Token::Symbol(s)) if *s == symbol => {
                self.at += 1;
                true
            }
            _ => false,
        }
    }

    fn or(&mut self) -> Result<String, String> {
        let mut out = self.and()?;
        while self.keyword("or") {
            out = format!("({out} or {})", self.and()?);
        }
        Ok(out)
    }

    fn and(&mut self) -> Result<String, String> {
        let mut out = self.not()?;
        while self.keyword("and") {
            out = format!("({out} and {})", self.not()?);
        }
        Ok(out)
    }

    fn not(&mut self) -> Result<String, String> {
        if self.keyword("not") {
            return Ok(format!("(not {})", self.not()?));
        }
        self.predicate()
    }

    fn predicate(&mut self) -> Result<String, String> {
        if self.symbol("(") {
            let inner = self.or()?;
            if !self.symbol(")") {
                return Err("a \"(\" that is never closed".into());
            }
            return Ok(inner);
        }
        let left = self.operand()?;
        for op in ["=", "<>", "!=", "<=", ">=", "<", ">"] {
            if self.symbol(op) {
                let right = self.operand()?;
                return Ok(format!("({left} {op} {right})"));
            }
        }
        if self.keyword("is") {
            let not = if self.keyword("not") { "not " } else { "" };
            for value in ["null", "true", "false"] {
                if self.keyword(value) {
                    return Ok(format!("({left} is {not}{value})"));
                }
            }
            return Err("IS takes NULL, TRUE or FALSE".into());
        }
        let not = self.keyword("not");
        if self.keyword("in") {
            if !self.symbol("(") {
                return Err("IN takes a list in parentheses".into());
            }
            let mut items = vec![self.constant()?];
            while self.symbol(",") {
                items.push(self.constant()?);
            }
            if !self.symbol(")") {
                return Err("an IN list that is never closed".into());
            }
            let not = if not { "not " } else { "" };
            return Ok(format!("({left} {not}in ({}))", items.join(", ")));
        }
        if not {
            return Err("NOT here must be NOT IN".into());
        }
        // A boolean column alone.
        Ok(left)
    }

    fn operand(&mut self) -> Result<String, String> {
        match self.peek().cloned() {
            Some(Token::Word(w))
                if !["null", "true", "false"]
                    .iter()
                    .any(|k| w.eq_ignore_ascii_case(k)) =>
            {
                self.at += 1;
                if self.peek() == Some(&Token::Symbol("(")) {
                    return Err(format!("\"{w}(...)\": a filter calls no function"));
                }
                if ["and", "or", "not", "is", "in", "select"]
                    .iter()
                    .any(|k| w.eq_ignore_ascii_case(k))
                {
                    return Err(format!("\"{w}\" where a column or a constant belongs"));
                }
                // An unquoted name folds to lower case, as PostgreSQL reads it.
                Ok(self.column(w.to_lowercase()))
            }
            Some(Token::Quoted(q)) => {
                self.at += 1;
                Ok(self.column(q))
            }
            _ => self.constant(),
        }
    }

    fn column(&mut self, name: String) -> String {
        let sql = format!("t.{}", quote_ident(&name));
        self.columns.push(name);
        sql
    }

    fn constant(&mut self) -> Result<String, String> {
        let token = self
            .peek()
            .cloned()
            .ok_or_else(|| "the condition ends too soon".to_string())?;
        self.at += 1;
        match token {
            Token::Number(n) => Ok(n),
            Token::Text(t) => Ok(literal(&t)),
            Token::Word(w)
                if ["null", "true", "false"]
                    .iter()
                    .any(|k| w.eq_ignore_ascii_case(k)) =>
            {
                Ok(w.to_lowercase())
            }
            other => Err(format!("{} where a constant belongs", describe(&other))),
        }
    }
}

/// A text constant as an SQL literal that reads the same whatever `standard_conforming_strings`
/// is: backslashes doubled in an E'' string.
fn literal(text: &str) -> String {
    let mut out = String::from("E'");
    for c in text.chars() {
        match c {
            '\'' => out.push_str("''"),
            '\\' => out.push_str("\\\\"),
            _ => out.push(c),
        }
    }
    out.push('\'');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_are_printed_again_with_every_name_and_constant_quoted() {
        let f =
            parse("project_id IS NOT NULL and (state = 'posted' or \"Amount\" >= -1.5)").unwrap();
        assert_eq!(
            f.sql,
            "((t.\"project_id\" is not null) and ((t.\"state\" = E'posted') or (t.\"Amount\" >= -1.5)))"
        );
        assert_eq!(f.columns, ["Amount", "project_id", "state"]);
        assert_eq!(
            parse("kind not in ('a''b', 'c\\d') and not archived")
                .unwrap()
                .sql,
            "((t.\"kind\" not in (E'a''b', E'c\\\\d')) and (not t.\"archived\"))"
        );
    }

    #[test]
    fn anything_but_columns_constants_and_operators_is_refused() {
        for (condition, says) in [
            ("pg_sleep(1) is null", "calls no function"),
            ("id = 1; drop table x", "is not part of a filter"),
            ("id::text = '1'", "is not part of a filter"),
            ("id in (select 1)", "where a constant belongs"),
            ("(id = 1", "never closed"),
            ("name = 'x", "never closed"),
            ("id = 1 2", "after the condition"),
            ("id is 3", "IS takes"),
        ] {
            let err = parse(condition).unwrap_err();
            assert!(err.contains(says), "{condition}: {err}");
        }
    }
}
