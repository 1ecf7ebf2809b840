//! The config-file parser and the mapping onto options.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::conf;

/// Names of the in-memory include files: the second NUL-separated part of an input is `a.conf`,
/// the third `b.conf`, and so on.
const INCLUDE_NAMES: &[&str] = &["a.conf", "b.conf", "c.conf", "d.conf", "sub/e.conf"];

/// The environment the config sees: plain values, values that parse as other types, and
/// variables that refer to themselves or each other.
fn env() -> BTreeMap<String, String> {
    [
        ("PORT", "4222"),
        ("HOST", "127.0.0.1"),
        ("SIZE", "1MB"),
        ("LIST", "[1, 2, \"three\"]"),
        ("MAP", "{ a: 1, b: $PORT }"),
        ("SELF", "$SELF"),
        ("PING", "$PONG"),
        ("PONG", "[$PING]"),
        ("BAD", "{ unterminated"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

/// `config_parser`: arbitrary text into [`conf::parse`] and [`conf::options_from_conf`].
///
/// Format: the input is cut at NUL bytes; the first part is the main file `/etc/nats/main.conf`,
/// the following parts are include files next to it (see `INCLUDE_NAMES`). Invalid UTF-8 is
/// replaced, as a loader reading text would have to. A small environment is available for
/// `$VAR` references.
///
/// Checks: no panic, and parsing the same text twice gives the same tree (the parser keeps no
/// state between calls). Stack depth and time are bounded by the fuzzer itself (a stack overflow
/// aborts, a slow input is reported as a timeout).
pub fn config_parser(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.split('\0');
    let main = parts.next().unwrap_or_default();
    let dir = Path::new("/etc/nats");
    let files: BTreeMap<PathBuf, String> = INCLUDE_NAMES
        .iter()
        .zip(parts)
        .map(|(name, src)| (dir.join(name), src.to_owned()))
        .collect();
    let env = env();
    let origin = dir.join("main.conf");
    let parsed = conf::parse(main, &origin, &files, &env);
    if let Ok(map) = &parsed {
        let _ = conf::options_from_conf(map);
    }
    let again = conf::parse(main, &origin, &files, &env);
    assert_eq!(parsed, again, "parsing is not deterministic");
}
