//! The nats-server config-file format: parser to a value tree, and mapping to [`crate::options`].
//!
//! The format (Go: `conf/lex.go`, `conf/parse.go`) is a relaxed superset of JSON:
//!
//! * `key: value`, `key = value` and `key value` all assign; `;` and `,` optionally end a value;
//! * `key { … }` / `key: { … }` are maps, `[a, b]` (or one value per line) are arrays;
//! * `#` and `//` start comments;
//! * strings are `"double"` (with `\t \n \r \" \\ \xHH` escapes), `'single'` (raw) or bare;
//! * integers take size suffixes (`1k` = 1000, `1kb`/`1ki`/`1kib` = 1024, likewise m/g/t/p/e);
//! * `true/false/yes/no/on/off` are booleans; `2006-01-02T15:04:05Z` is a datetime;
//! * `$name` refers to an earlier key in an enclosing map, else to an environment variable;
//! * `include 'file'` splices another file's keys in, relative to the including file.
//!
//! Core performs no I/O: files come through [`ConfLoader`] and the environment through
//! [`EnvLookup`]. Every value keeps its [`Pos`] so that mapping errors can point at the file.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub mod duration;
pub mod options;
mod options_accounts;
mod options_auth;
pub mod options_gateway;
pub mod options_leaf;
mod parser;

#[cfg(test)]
mod options_tests;
#[cfg(test)]
mod parser_tests;

pub use options::{apply_conf, options_from_conf, ConfReport, IgnoredKey};

/// How deep `include` may nest before the parser gives up (this also stops include cycles that
/// reach a file through different spellings of its path).
pub const MAX_INCLUDE_DEPTH: usize = 10;

/// Reads files named by `include` (and, in `natsd`, the main config file).
pub trait ConfLoader {
    /// Returns the whole text of the file at `path`.
    fn load(&self, path: &Path) -> std::io::Result<String>;
}

/// Looks up environment variables for `$VAR` references that no config key defines.
pub trait EnvLookup {
    /// The variable's value, if it is set.
    fn var(&self, name: &str) -> Option<String>;
}

/// A loader that refuses every include: for configs that come from a string.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoIncludes;

impl ConfLoader for NoIncludes {
    fn load(&self, path: &Path) -> std::io::Result<String> {
        Err(std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            format!("includes are not available here ({})", path.display()),
        ))
    }
}

/// An environment with no variables.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoEnv;

impl EnvLookup for NoEnv {
    fn var(&self, _name: &str) -> Option<String> {
        None
    }
}

/// An in-memory file system, handy for tests and embedding.
impl ConfLoader for BTreeMap<PathBuf, String> {
    fn load(&self, path: &Path) -> std::io::Result<String> {
        self.get(path)
            .cloned()
            .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"))
    }
}

/// An in-memory environment.
impl EnvLookup for BTreeMap<String, String> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
}

/// Where a value (or key) was written: file, 1-based line and 1-based column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pos {
    /// The file, as it was named to the parser (or joined for an include).
    pub file: Arc<Path>,
    /// Line, starting at 1.
    pub line: u32,
    /// Column in characters, starting at 1.
    pub col: u32,
}

impl Pos {
    /// The start of `file`.
    pub fn start_of(file: &Path) -> Self {
        Self {
            file: Arc::from(file),
            line: 1,
            col: 1,
        }
    }
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.col)
    }
}

/// A parse or mapping error, with the position it is about.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{pos}: {message}")]
pub struct ConfError {
    /// Where the problem is.
    pub pos: Pos,
    /// What the problem is.
    pub message: String,
}

impl ConfError {
    /// An error at `pos`.
    pub fn new(pos: &Pos, message: impl Into<String>) -> Self {
        Self {
            pos: pos.clone(),
            message: message.into(),
        }
    }
}

/// A parsed value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Quoted or bare string.
    String(String),
    /// Integer, after size suffixes are applied.
    Int(i64),
    /// Floating-point number.
    Float(f64),
    /// `true/false/yes/no/on/off`.
    Bool(bool),
    /// A Zulu datetime, as seconds since the Unix epoch.
    DateTime(i64),
    /// `[ … ]`.
    Array(Vec<Node>),
    /// `{ … }`.
    Map(ConfMap),
}

impl Value {
    /// A short name of the value's type, for error messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::String(_) => "string",
            Self::Int(_) => "integer",
            Self::Float(_) => "float",
            Self::Bool(_) => "boolean",
            Self::DateTime(_) => "datetime",
            Self::Array(_) => "array",
            Self::Map(_) => "map",
        }
    }
}

/// A value with the position it was written at.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// The value.
    pub value: Value,
    /// Where the value starts.
    pub pos: Pos,
}

/// One `key: value` of a map.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The key as written (mapping compares keys case-insensitively, as nats-server does).
    pub key: String,
    /// Where the key is written.
    pub key_pos: Pos,
    /// The value.
    pub value: Node,
    /// Was this key referenced as `$key` later on? nats-server does not report such keys as
    /// unknown fields: they are variable definitions.
    pub used_as_variable: bool,
}

/// A map in file order. A key assigned twice keeps its first place and its last value.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ConfMap {
    entries: Vec<Entry>,
}

impl ConfMap {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// The entries, in file order.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// Iterates the entries in file order.
    pub fn iter(&self) -> std::slice::Iter<'_, Entry> {
        self.entries.iter()
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Is the map empty?
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The entry for `key` (exact, case-sensitive match).
    pub fn get_entry(&self, key: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.key == key)
    }

    /// The value for `key` (exact, case-sensitive match).
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.get_entry(key).map(|e| &e.value.value)
    }

    /// Sets `key`; an existing key keeps its place and takes the new value.
    pub fn insert(&mut self, entry: Entry) {
        match self.entries.iter_mut().find(|e| e.key == entry.key) {
            Some(old) => {
                let used = old.used_as_variable || entry.used_as_variable;
                *old = entry;
                old.used_as_variable = used;
            }
            None => self.entries.push(entry),
        }
    }

    /// Looks `key` up for a variable reference and marks it used.
    fn lookup_and_mark(&mut self, key: &str) -> Option<&Node> {
        let e = self.entries.iter_mut().find(|e| e.key == key)?;
        e.used_as_variable = true;
        Some(&e.value)
    }
}

impl<'a> IntoIterator for &'a ConfMap {
    type Item = &'a Entry;
    type IntoIter = std::slice::Iter<'a, Entry>;
    fn into_iter(self) -> Self::IntoIter {
        self.entries.iter()
    }
}

/// Parses config text. `origin` names the text (its file path): it appears in positions, and
/// `include` paths are resolved against its directory.
pub fn parse(
    src: &str,
    origin: &Path,
    loader: &dyn ConfLoader,
    env: &dyn EnvLookup,
) -> Result<ConfMap, ConfError> {
    parser::parse_file(src, origin, loader, env, &[])
}

/// Loads `path` through `loader` and parses it.
pub fn parse_file(
    path: &Path,
    loader: &dyn ConfLoader,
    env: &dyn EnvLookup,
) -> Result<ConfMap, ConfError> {
    let src = loader.load(path).map_err(|e| {
        ConfError::new(
            &Pos::start_of(path),
            format!("error opening config file: {e}"),
        )
    })?;
    parse(&src, path, loader, env)
}
