//! A recursive-descent reader of the nats-server config format.
//!
//! Go lexes with a state machine (conf/lex.go) and builds the tree in conf/parse.go; here one
//! pass over the characters does both, keeping the same accept/reject decisions where they
//! matter to users (see the parity notes on each rule).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::{
    ConfError, ConfLoader, ConfMap, Entry, EnvLookup, Node, Pos, Value, MAX_INCLUDE_DEPTH,
};

/// Parses one file. `chain` lists the files that include this one, outermost first.
pub(super) fn parse_file(
    src: &str,
    origin: &Path,
    loader: &dyn ConfLoader,
    env: &dyn EnvLookup,
    chain: &[PathBuf],
) -> Result<ConfMap, ConfError> {
    let mut p = Parser {
        chars: src.chars().collect(),
        i: 0,
        line: 1,
        col: 1,
        file: Arc::from(origin),
        origin: origin.to_path_buf(),
        loader,
        env,
        chain,
        stack: vec![ConfMap::new()],
        depth: 0,
        expanded: 0,
    };
    p.body(true)?;
    Ok(p.stack.pop().unwrap_or_default())
}

struct Parser<'a> {
    chars: Vec<char>,
    i: usize,
    line: u32,
    col: u32,
    file: Arc<Path>,
    origin: PathBuf,
    loader: &'a dyn ConfLoader,
    env: &'a dyn EnvLookup,
    chain: &'a [PathBuf],
    /// The maps being built, outermost first: variable lookups search them innermost first.
    /// Arrays are not on this stack, as in Go (`lookupVariable` skips array contexts).
    stack: Vec<ConfMap>,
    /// Maps and arrays open around the current position.
    depth: usize,
    /// Value nodes copied by `$variable` references so far.
    expanded: usize,
}

/// How deeply maps and arrays may nest. Real configs use a handful of levels; the bound keeps
/// a hostile file from overflowing the stack (found by the `config_parser` fuzz target).
pub(super) const MAX_NESTING: usize = 128;
/// How many value nodes `$variable` references may copy in one file. Each reference copies its
/// value, so a chain of `b: [$a, $a]` lines doubles the tree per line; the budget turns that
/// into an error instead of an exponential blow-up (found by the `config_parser` fuzz target).
pub(super) const MAX_EXPANDED_NODES: usize = 100_000;

fn node_count(v: &Value) -> usize {
    match v {
        Value::Array(items) => 1 + items.iter().map(|n| node_count(&n.value)).sum::<usize>(),
        Value::Map(m) => 1 + m.iter().map(|e| node_count(&e.value.value)).sum::<usize>(),
        _ => 1,
    }
}

fn is_blank(c: char) -> bool {
    c == ' ' || c == '\t'
}

fn is_nl(c: char) -> bool {
    c == '\n' || c == '\r'
}

fn is_bool_word(s: &str) -> Option<bool> {
    match s.to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" => Some(true),
        "false" | "no" | "off" => Some(false),
        _ => None,
    }
}

fn is_number_suffix(c: char) -> bool {
    matches!(c.to_ascii_lowercase(), 'k' | 'm' | 'g' | 't' | 'p' | 'e')
}

fn describe(c: Option<char>) -> String {
    match c {
        None => "end of file".to_owned(),
        Some('\n') => "new line".to_owned(),
        Some(c) => format!("'{c}'"),
    }
}

impl Parser<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.i).copied()
    }

    fn peek_at(&self, n: usize) -> Option<char> {
        self.chars.get(self.i + n).copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.i += 1;
        if c == '\n' {
            self.line += 1;
            self.col = 1;
        } else {
            self.col += 1;
        }
        Some(c)
    }

    fn pos(&self) -> Pos {
        Pos {
            file: self.file.clone(),
            line: self.line,
            col: self.col,
        }
    }

    fn err(&self, msg: impl Into<String>) -> ConfError {
        ConfError::new(&self.pos(), msg)
    }

    fn at_comment(&self) -> bool {
        match self.peek() {
            Some('#') => true,
            Some('/') => self.peek_at(1) == Some('/'),
            _ => false,
        }
    }

    /// Skips a comment up to (not including) the end of its line.
    fn skip_comment(&mut self) {
        while let Some(c) = self.peek() {
            if is_nl(c) {
                break;
            }
            self.bump();
        }
    }

    /// Skips whitespace, new lines and comments.
    fn skip_all(&mut self) {
        loop {
            match self.peek() {
                Some(c) if c.is_whitespace() => {
                    self.bump();
                }
                _ if self.at_comment() => self.skip_comment(),
                _ => break,
            }
        }
    }

    fn skip_blanks(&mut self) {
        while self.peek().is_some_and(is_blank) {
            self.bump();
        }
    }

    fn current(&mut self) -> &mut ConfMap {
        if self.stack.is_empty() {
            self.stack.push(ConfMap::new());
        }
        let last = self.stack.len() - 1;
        &mut self.stack[last]
    }

    /// The keys of a map (the whole file when `top`), up to its `}` (or EOF at top).
    fn body(&mut self, top: bool) -> Result<(), ConfError> {
        loop {
            self.skip_all();
            match self.peek() {
                // Go: lexTop skips '{' (and a value may end with '}') so a JSON-style file
                // wrapped in braces reads the same.
                Some('{' | '}') if top => {
                    self.bump();
                    continue;
                }
                None if top => return Ok(()),
                None => return Err(self.err("unexpected end of file inside a map")),
                Some('}') if !top => {
                    self.bump();
                    return Ok(());
                }
                Some(c @ (':' | '=')) => {
                    return Err(self.err(format!("unexpected key separator '{c}'")))
                }
                Some(']') => return Err(self.err("unexpected array end ']'")),
                Some(_) => {}
            }
            self.key_value(top)?;
            self.value_end(top)?;
        }
    }

    /// After a value in a map: blanks, then a comment, new line, `;`, `,` or the closing `}`.
    fn value_end(&mut self, top: bool) -> Result<(), ConfError> {
        self.skip_blanks();
        match self.peek() {
            None => Ok(()),
            Some(c) if is_nl(c) || c == ';' || c == ',' => {
                self.bump();
                Ok(())
            }
            // Go: lexTopValueEnd also ends a top-level value with '}'.
            Some('}') if top => {
                self.bump();
                Ok(())
            }
            Some('}') => Ok(()),
            _ if self.at_comment() => {
                self.skip_comment();
                Ok(())
            }
            c => Err(self.err(format!(
                "expected a new line, ';', ',' or comment after a value, but got {}",
                describe(c)
            ))),
        }
    }

    fn key_value(&mut self, top: bool) -> Result<(), ConfError> {
        let key_pos = self.pos();
        let (key, quoted) = self.key()?;
        if !quoted && key.eq_ignore_ascii_case("include") && self.peek().is_some_and(is_blank) {
            return self.include();
        }
        // Go: lexKeyEnd skips any whitespace, new lines included, before the separator.
        while self.peek().is_some_and(char::is_whitespace) {
            self.bump();
        }
        if matches!(self.peek(), Some(':' | '=')) {
            self.bump();
            if top {
                // Go: lexValue accepts blanks, but not a new line, after a top-level separator.
                self.skip_blanks();
            } else {
                while self.peek().is_some_and(char::is_whitespace) {
                    self.bump();
                }
            }
        }
        let value = self.value()?;
        self.current().insert(Entry {
            key,
            key_pos,
            value,
            used_as_variable: false,
        });
        Ok(())
    }

    /// A key: quoted (no escapes) or bare up to whitespace or a separator.
    fn key(&mut self) -> Result<(String, bool), ConfError> {
        if let Some(q @ ('"' | '\'')) = self.peek() {
            self.bump();
            let mut key = String::new();
            loop {
                match self.bump() {
                    Some(c) if c == q => return Ok((key, true)),
                    Some(c) => key.push(c),
                    None => return Err(self.err("unexpected end of file in a quoted key")),
                }
            }
        }
        let mut key = String::new();
        while let Some(c) = self.peek() {
            // '{' and '[' end a key too, so `authorization{` reads as intended (Go would make
            // them part of the key and fail later with a puzzling message).
            if c.is_whitespace() || matches!(c, ':' | '=' | '{' | '[') {
                break;
            }
            key.push(c);
            self.bump();
        }
        Ok((key, false))
    }

    fn value(&mut self) -> Result<Node, ConfError> {
        let pos = self.pos();
        if matches!(self.peek(), Some('[' | '{')) {
            if self.depth >= MAX_NESTING {
                return Err(self.err(format!(
                    "maps and arrays nest deeper than {MAX_NESTING} levels"
                )));
            }
            self.depth += 1;
            let v = self.value_inner(pos.clone());
            self.depth -= 1;
            return v;
        }
        self.value_inner(pos)
    }

    fn value_inner(&mut self, pos: Pos) -> Result<Node, ConfError> {
        let value = match self.peek() {
            None => return Err(self.err("expected a value but found end of file")),
            Some(c) if is_nl(c) => return Err(self.err("expected a value but found new line")),
            Some('[') => {
                self.bump();
                self.array()?
            }
            Some('{') => {
                self.bump();
                self.stack.push(ConfMap::new());
                self.body(false)?;
                Value::Map(self.stack.pop().unwrap_or_default())
            }
            Some('\'') => {
                self.bump();
                Value::String(self.raw_string()?)
            }
            Some('"') => {
                self.bump();
                Value::String(self.escaped_string()?)
            }
            Some('(') => {
                self.bump();
                Value::String(self.block()?)
            }
            Some('-') => self.negative_number()?,
            Some(c) if c.is_ascii_digit() => self.number_like()?,
            Some('.') => return Err(self.err("floats must start with a digit")),
            Some(_) => self.bare(self.i, &pos)?,
        };
        Ok(Node { value, pos })
    }

    fn array(&mut self) -> Result<Value, ConfError> {
        let mut items = Vec::new();
        loop {
            self.skip_all();
            match self.peek() {
                None => return Err(self.err("unexpected end of file inside an array")),
                Some(']') => {
                    self.bump();
                    return Ok(Value::Array(items));
                }
                Some(',') => return Err(self.err("unexpected array value terminator ','")),
                Some(_) => {}
            }
            items.push(self.value()?);
            self.skip_blanks();
            match self.peek() {
                Some(']') => {
                    self.bump();
                    return Ok(Value::Array(items));
                }
                Some(c) if c == ',' || is_nl(c) => {
                    self.bump();
                }
                _ if self.at_comment() => self.skip_comment(),
                c => {
                    return Err(self.err(format!(
                        "expected ',' or ']' after an array value, but got {}",
                        describe(c)
                    )))
                }
            }
        }
    }

    /// `'…'`: everything up to the next single quote, uninterpreted.
    fn raw_string(&mut self) -> Result<String, ConfError> {
        let mut s = String::new();
        loop {
            match self.bump() {
                Some('\'') => return Ok(s),
                Some(c) => s.push(c),
                None => return Err(self.err("unexpected end of file in a quoted string")),
            }
        }
    }

    /// `"…"` with escapes.
    fn escaped_string(&mut self) -> Result<String, ConfError> {
        let mut buf = Vec::new();
        loop {
            match self.bump() {
                Some('"') => return self.utf8(buf),
                Some('\\') => self.escape(&mut buf)?,
                Some(c) => push_char(&mut buf, c),
                None => return Err(self.err("unexpected end of file in a quoted string")),
            }
        }
    }

    fn utf8(&self, buf: Vec<u8>) -> Result<String, ConfError> {
        String::from_utf8(buf).map_err(|_| self.err("string escapes do not form valid UTF-8"))
    }

    /// One escape, the backslash already eaten.
    fn escape(&mut self, buf: &mut Vec<u8>) -> Result<(), ConfError> {
        match self.bump() {
            Some('t') => buf.push(b'\t'),
            Some('n') => buf.push(b'\n'),
            Some('r') => buf.push(b'\r'),
            Some('"') => buf.push(b'"'),
            Some('\\') => buf.push(b'\\'),
            Some('x') => {
                let hi = self.bump().and_then(|c| c.to_digit(16));
                let lo = self.bump().and_then(|c| c.to_digit(16));
                match (hi, lo) {
                    // Two hex digits are below 256.
                    (Some(h), Some(l)) => buf.push(u8::try_from(h * 16 + l).unwrap_or(0)),
                    _ => return Err(self.err("expected two hexadecimal digits after '\\x'")),
                }
            }
            c => {
                return Err(self.err(format!(
                "invalid escape character {}; only \\xXX, \\t, \\n, \\r, \\\" and \\\\ are allowed",
                describe(c)
            )))
            }
        }
        Ok(())
    }

    /// `( … )`: raw text up to a line holding only `)`.
    fn block(&mut self) -> Result<String, ConfError> {
        let mut s = String::new();
        loop {
            match self.bump() {
                None => return Err(self.err("unexpected end of file in a ( … ) block")),
                Some('\n')
                    if self.peek() == Some(')') && matches!(self.peek_at(1), None | Some('\n')) =>
                {
                    self.bump();
                    return Ok(s);
                }
                Some(c) => s.push(c),
            }
        }
    }

    fn digits(&mut self) -> usize {
        let mut n = 0;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.bump();
            n += 1;
        }
        n
    }

    fn text(&self, from: usize) -> String {
        self.chars[from..self.i].iter().collect()
    }

    fn negative_number(&mut self) -> Result<Value, ConfError> {
        let start = self.i;
        self.bump();
        if !self.peek().is_some_and(|c| c.is_ascii_digit()) {
            return Err(self.err(format!(
                "expected a digit but got {}",
                describe(self.peek())
            )));
        }
        self.digits();
        match self.peek() {
            Some('.') => self.float(start),
            Some(c) if is_number_suffix(c) => self.suffixed(start),
            _ => self.integer(start),
        }
    }

    /// A value that starts with a digit: integer, sized integer, float, datetime, IP address,
    /// or (Go: lexNumberOrDateOrStringOrIP) a bare string such as `10s` or `1h30m`.
    fn number_like(&mut self) -> Result<Value, ConfError> {
        let start = self.i;
        let n = self.digits();
        match self.peek() {
            Some('-') => {
                if n != 4 {
                    return Err(self.err("all ISO8601 dates must be in full Zulu form"));
                }
                self.bump();
                self.datetime(start)
            }
            Some('.') => self.float(start),
            Some(c) if is_number_suffix(c) => self.suffixed(start),
            Some(c) if !ends_number(c) => {
                let pos = self.pos();
                self.bare(start, &pos)
            }
            _ => self.integer(start),
        }
    }

    fn integer(&self, start: usize) -> Result<Value, ConfError> {
        let text = self.text(start);
        text.parse::<i64>()
            .map(Value::Int)
            .map_err(|_| self.err(format!("integer '{text}' is out of range")))
    }

    /// Digits then a size suffix (`k`, `kb`, `ki`, `kib`, …). Go: lexConvenientNumber — if
    /// anything but a terminator follows, the whole thing is a bare string (`500ms`).
    fn suffixed(&mut self, start: usize) -> Result<Value, ConfError> {
        let digits_end = self.i;
        self.bump();
        while matches!(self.peek(), Some('b' | 'B' | 'i' | 'I')) {
            self.bump();
        }
        if let Some(c) = self.peek() {
            if !ends_number(c) && !c.is_ascii_digit() {
                let pos = self.pos();
                return self.bare(start, &pos);
            }
        }
        let text = self.text(start);
        let digits: String = self.chars[start..digits_end].iter().collect();
        let suffix: String = self.chars[digits_end..self.i].iter().collect();
        let n: i64 = digits
            .parse()
            .map_err(|_| self.err(format!("integer '{text}' is out of range")))?;
        let mult: i64 = match suffix.to_ascii_lowercase().as_str() {
            "k" => 1_000,
            "kb" | "ki" | "kib" => 1 << 10,
            "m" => 1_000_000,
            "mb" | "mi" | "mib" => 1 << 20,
            "g" => 1_000_000_000,
            "gb" | "gi" | "gib" => 1 << 30,
            "t" => 1_000_000_000_000,
            "tb" | "ti" | "tib" => 1 << 40,
            "p" => 1_000_000_000_000_000,
            "pb" | "pi" | "pib" => 1 << 50,
            "e" => 1_000_000_000_000_000_000,
            "eb" | "ei" | "eib" => 1 << 60,
            // Go silently drops such a value; a clear error is kinder.
            _ => return Err(self.err(format!("unknown size suffix in '{text}'"))),
        };
        n.checked_mul(mult)
            .map(Value::Int)
            .ok_or_else(|| self.err(format!("integer '{text}' is out of range")))
    }

    /// After the integer part and a '.': a float, or an IP address (`127.0.0.1:4222`) string.
    fn float(&mut self, start: usize) -> Result<Value, ConfError> {
        self.bump();
        if self.digits() == 0 {
            return Err(self.err(format!(
                "floats must have a digit after the '.', but got {}",
                describe(self.peek())
            )));
        }
        if self.peek() == Some('.') {
            while self
                .peek()
                .is_some_and(|c| c.is_ascii_digit() || matches!(c, '.' | ':' | '-'))
            {
                self.bump();
            }
            return Ok(Value::String(self.text(start)));
        }
        let text = self.text(start);
        text.parse::<f64>()
            .map(Value::Float)
            .map_err(|_| self.err(format!("expected a float, but got '{text}'")))
    }

    /// `YYYY-MM-DDTHH:MM:SSZ`, the year and its dash already eaten.
    fn datetime(&mut self, start: usize) -> Result<Value, ConfError> {
        for f in "00-00T00:00:00Z".chars() {
            let c = self.peek();
            let ok = match (f, c) {
                ('0', Some(c)) => c.is_ascii_digit(),
                (f, Some(c)) => f == c,
                (_, None) => false,
            };
            if !ok {
                return Err(self.err(format!(
                    "expected '{}' in an ISO8601 datetime, but got {}",
                    if f == '0' {
                        "digit".to_owned()
                    } else {
                        f.to_string()
                    },
                    describe(c)
                )));
            }
            self.bump();
        }
        let text = self.text(start);
        let num = |a: usize, b: usize| text[a..b].parse::<i64>().unwrap_or(-1);
        let (y, mo, d) = (num(0, 4), num(5, 7), num(8, 10));
        let (h, mi, s) = (num(11, 13), num(14, 16), num(17, 19));
        if !(1..=12).contains(&mo)
            || d < 1
            || d > days_in_month(y, mo)
            || h > 23
            || mi > 59
            || s > 59
        {
            return Err(self.err(format!("'{text}' is not a valid datetime")));
        }
        Ok(Value::DateTime(
            days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + s,
        ))
    }

    /// A bare string from `start` (which may be before the current position, when a number
    /// turned out to be a string). Ends at blanks, new lines, `;`, `,`, `]`, `}`; a `'` ends it
    /// too and is eaten (Go: lexString).
    fn bare(&mut self, start: usize, pos: &Pos) -> Result<Value, ConfError> {
        let mut buf = Vec::new();
        for c in &self.chars[start..self.i] {
            push_char(&mut buf, *c);
        }
        let mut escaped = false;
        loop {
            match self.peek() {
                None => break,
                Some(c) if is_nl(c) || is_blank(c) || matches!(c, ';' | ',' | ']' | '}') => break,
                Some('\'') => {
                    self.bump();
                    return Ok(Value::String(self.utf8(buf)?));
                }
                Some('\\') => {
                    self.bump();
                    escaped = true;
                    self.escape(&mut buf)?;
                }
                Some(c) => {
                    self.bump();
                    push_char(&mut buf, c);
                }
            }
        }
        let s = self.utf8(buf)?;
        if escaped {
            return Ok(Value::String(s));
        }
        if let Some(b) = is_bool_word(&s) {
            return Ok(Value::Bool(b));
        }
        match s.strip_prefix('$') {
            Some(name) => self.variable(name, pos),
            None => Ok(Value::String(s)),
        }
    }

    /// `$name`: an earlier key of an enclosing map, else an environment variable.
    fn variable(&mut self, name: &str, pos: &Pos) -> Result<Value, ConfError> {
        // Go: lookupVariable — an unquoted bcrypt hash looks like a variable; keep it as text.
        // Go only knows `$2a$`; `$2b$` and `$2y$` are bcrypt too.
        if ["2a$", "2b$", "2y$"].iter().any(|p| name.starts_with(p)) {
            return Ok(Value::String(format!("${name}")));
        }
        let mut found = None;
        for map in self.stack.iter_mut().rev() {
            if let Some(node) = map.lookup_and_mark(name) {
                found = Some(node.value.clone());
                break;
            }
        }
        if let Some(v) = found {
            self.expanded += node_count(&v);
            if self.expanded > MAX_EXPANDED_NODES {
                return Err(ConfError::new(
                    pos,
                    format!("variable references expand to more than {MAX_EXPANDED_NODES} values"),
                ));
            }
            return Ok(v);
        }
        let Some(raw) = self.env.var(name) else {
            return Err(ConfError::new(
                pos,
                format!("variable reference for '{name}' can not be found"),
            ));
        };
        // Go: an environment value is parsed as if written `pk=<value>`, so "4222" is an
        // integer and "[a, b]" an array. The depth guard stops `A=$A` from recursing forever.
        if self.chain.len() >= MAX_INCLUDE_DEPTH {
            return Err(ConfError::new(
                pos,
                format!("environment variable '{name}' nests too deeply"),
            ));
        }
        let mut chain = self.chain.to_vec();
        chain.push(self.origin.clone());
        let env_origin = PathBuf::from(format!("${name}"));
        let src = format!("pk={raw}");
        let map =
            parse_file(&src, &env_origin, &super::NoIncludes, self.env, &chain).map_err(|e| {
                ConfError::new(pos, format!("environment variable '{name}': {}", e.message))
            })?;
        map.get("pk").cloned().ok_or_else(|| {
            ConfError::new(pos, format!("environment variable '{name}' holds no value"))
        })
    }

    /// `include <file>`: the keyword already read, a blank next.
    fn include(&mut self) -> Result<(), ConfError> {
        self.skip_blanks();
        let pos = self.pos();
        let name = match self.peek() {
            Some(q @ ('\'' | '"')) => {
                self.bump();
                let mut s = String::new();
                loop {
                    match self.bump() {
                        Some(c) if c == q => break,
                        Some(c) => s.push(c),
                        None => return Err(self.err("unexpected end of file in include")),
                    }
                }
                s
            }
            None => return Err(self.err("expected an include file name but found end of file")),
            Some(c) if is_nl(c) => {
                return Err(self.err("expected an include file name but found new line"))
            }
            Some(c) if matches!(c, '[' | '{' | '(' | '-' | '\\') || c.is_ascii_digit() => {
                return Err(self.err(format!("expected an include file name but found '{c}'")))
            }
            Some(_) => {
                let mut s = String::new();
                while let Some(c) = self.peek() {
                    if is_nl(c) || is_blank(c) || matches!(c, ';' | '}') {
                        break;
                    }
                    self.bump();
                    if c == '\'' {
                        break;
                    }
                    s.push(c);
                }
                s
            }
        };
        let path = self
            .origin
            .parent()
            .unwrap_or_else(|| Path::new(""))
            .join(&name);
        if path == self.origin || self.chain.contains(&path) {
            return Err(ConfError::new(
                &pos,
                format!("include cycle: '{name}' is already being read"),
            ));
        }
        if self.chain.len() + 1 >= MAX_INCLUDE_DEPTH {
            return Err(ConfError::new(
                &pos,
                format!("includes nest deeper than {MAX_INCLUDE_DEPTH} files at '{name}'"),
            ));
        }
        let src = self.loader.load(&path).map_err(|e| {
            ConfError::new(&pos, format!("error reading include file '{name}': {e}"))
        })?;
        let mut chain = self.chain.to_vec();
        chain.push(self.origin.clone());
        let map = parse_file(&src, &path, self.loader, self.env, &chain)?;
        let current = self.current();
        for entry in map.entries {
            current.insert(entry);
        }
        Ok(())
    }
}

/// Characters that end a number (Go: the terminator list in lexNumberOrDateOrStringOrIP).
/// Go leaves `]` out, which turns the last integer of `[1, 2]` into a string; it is in here.
fn ends_number(c: char) -> bool {
    is_nl(c) || is_blank(c) || matches!(c, '}' | ']' | ';' | ',')
}

fn push_char(buf: &mut Vec<u8>, c: char) {
    let mut tmp = [0u8; 4];
    buf.extend_from_slice(c.encode_utf8(&mut tmp).as_bytes());
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}
