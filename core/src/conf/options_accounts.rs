//! `accounts { … }` with users, exports and imports (Go: server/opts.go parseAccounts,
//! parseExportStreamOrService, parseImportStreamOrService). Whether imported accounts exist
//! and allow the import is checked by [`crate::account::validate`], not here.

use std::collections::BTreeSet;

use super::duration::parse_duration;
use super::options::{lower, map_of, node_type_err, str_of, type_err, unknown, Mapper};
use super::options_auth::{permissions, users};
use super::{ConfError, ConfMap, Entry, Node, Value};
use crate::jetstream::limits::AccountLimits;
use crate::options::{
    AccountConfig, ExportConfig, ExportKind, ImportConfig, Options, ResponseType, GLOBAL_ACCOUNT,
};

/// The `accounts` block: either `[A, B]` (names only) or `{ A { … }, B { … } }`.
pub(super) fn accounts(m: &mut Mapper, o: &mut Options, e: &Entry) -> Result<(), ConfError> {
    let mut names = BTreeSet::new();
    match &e.value.value {
        Value::Array(items) => {
            for n in items {
                let Value::String(name) = &n.value else {
                    return Err(node_type_err(&e.key, n, "account names"));
                };
                check_name(name, n, &mut names)?;
                o.accounts.push(AccountConfig {
                    name: name.clone(),
                    ..AccountConfig::default()
                });
            }
        }
        Value::Map(map) => {
            for ae in map {
                // Go: a key referenced as a variable inside `accounts` is not an account.
                if ae.used_as_variable {
                    continue;
                }
                let Value::Map(body) = &ae.value.value else {
                    return Err(ConfError::new(
                        &ae.value.pos,
                        "Expected map entries for accounts",
                    ));
                };
                check_name(&ae.key, &ae.value, &mut names)?;
                o.accounts.push(account(m, ae, body)?);
            }
        }
        _ => return Err(type_err(e, "a map or an array of account names")),
    }
    Ok(())
}

fn check_name(name: &str, n: &Node, seen: &mut BTreeSet<String>) -> Result<(), ConfError> {
    if name == GLOBAL_ACCOUNT {
        return Err(ConfError::new(
            &n.pos,
            format!("{name:?} is a Reserved Account"),
        ));
    }
    if !seen.insert(name.to_owned()) {
        return Err(ConfError::new(
            &n.pos,
            format!("Duplicate Account Entry: {name}"),
        ));
    }
    Ok(())
}

fn account(m: &mut Mapper, ae: &Entry, body: &ConfMap) -> Result<AccountConfig, ConfError> {
    let mut acc = AccountConfig {
        name: ae.key.clone(),
        ..AccountConfig::default()
    };
    let prefix = format!("accounts.{}", ae.key);
    for e in body {
        match lower(e).as_str() {
            "users" => acc.users = users(e, Some(&ae.key))?,
            "default_permissions" => acc.default_permissions = Some(permissions(e)?),
            "exports" => {
                for item in array_of(e)? {
                    acc.exports.push(export(m, &prefix, e, item)?);
                }
            }
            "imports" => {
                for item in array_of(e)? {
                    acc.imports.push(import(m, &prefix, e, item)?);
                }
            }
            "jetstream" => acc.jetstream = jetstream(e)?,
            "nkey" | "mappings" | "maps" | "limits" => m.ignore(&prefix, e),
            _ => unknown(e)?,
        }
    }
    Ok(acc)
}

/// Go: parseJetStreamForAccount — `true`/`enabled` gives unlimited limits, `false`/`disabled`
/// none, a map sets the named limits (the others stay unlimited).
fn jetstream(e: &Entry) -> Result<Option<AccountLimits>, ConfError> {
    let map = match &e.value.value {
        Value::Bool(b) => return Ok(b.then(AccountLimits::default)),
        Value::String(s) => {
            return match s.to_ascii_lowercase().as_str() {
                "enabled" | "enable" => Ok(Some(AccountLimits::default())),
                "disabled" | "disable" => Ok(None),
                _ => Err(ConfError::new(
                    &e.value.pos,
                    format!("Expected 'enabled' or 'disabled' for string value, got '{s}'"),
                )),
            };
        }
        Value::Map(map) => map,
        v => {
            return Err(ConfError::new(
                &e.value.pos,
                format!(
                    "Expected map, bool or string to define JetStream, got {}",
                    v.type_name()
                ),
            ))
        }
    };
    let mut l = AccountLimits::default();
    for je in map {
        let size = || match &je.value.value {
            Value::Int(n) => Ok(*n),
            v => Err(ConfError::new(
                &je.value.pos,
                format!(
                    "Expected a parseable size for {:?}, got {}",
                    je.key,
                    v.type_name()
                ),
            )),
        };
        match lower(je).as_str() {
            "max_memory" | "max_mem" | "mem" | "memory" => l.max_memory = size()?,
            "max_store" | "max_file" | "max_disk" | "store" | "disk" => l.max_storage = size()?,
            "max_streams" | "streams" => l.max_streams = size()?,
            "max_consumers" | "consumers" => l.max_consumers = size()?,
            "max_ack_pending" => l.max_ack_pending = size()?,
            "mem_max_stream_bytes" | "memory_max_stream_bytes" => {
                l.memory_max_stream_bytes = size()?;
            }
            "disk_max_stream_bytes" | "store_max_stream_bytes" => {
                l.storage_max_stream_bytes = size()?;
            }
            "max_bytes_required" | "max_stream_bytes" | "max_bytes" => {
                l.max_bytes_required = match &je.value.value {
                    Value::Bool(b) => *b,
                    v => {
                        return Err(ConfError::new(
                            &je.value.pos,
                            format!(
                                "Expected a parseable bool for {:?}, got {}",
                                je.key,
                                v.type_name()
                            ),
                        ))
                    }
                };
            }
            _ => unknown(je)?,
        }
    }
    Ok(Some(l))
}

fn array_of(e: &Entry) -> Result<&[Node], ConfError> {
    match &e.value.value {
        Value::Array(items) => Ok(items),
        _ => Err(type_err(e, "an array")),
    }
}

fn item_map<'a>(e: &Entry, item: &'a Node, what: &str) -> Result<&'a ConfMap, ConfError> {
    match &item.value {
        Value::Map(map) => Ok(map),
        _ => Err(node_type_err(&e.key, item, what)),
    }
}

/// `{ stream: "a.>", accounts: [B] }` or `{ service: "svc", response: stream, … }`.
fn export(m: &mut Mapper, prefix: &str, e: &Entry, item: &Node) -> Result<ExportConfig, ConfError> {
    let map = item_map(e, item, "export entries to be maps")?;
    let mut kind_subject: Option<(ExportKind, String)> = None;
    let mut accounts = None;
    let mut response: Option<(ResponseType, &Entry)> = None;
    let mut threshold: Option<(std::time::Duration, &Entry)> = None;
    for xe in map {
        match lower(xe).as_str() {
            k @ ("stream" | "service") => {
                let kind = if k == "stream" {
                    ExportKind::Stream
                } else {
                    ExportKind::Service
                };
                if let Some((prev, _)) = &kind_subject {
                    let msg = if *prev == kind {
                        format!("Duplicate {k} definition")
                    } else {
                        format!("Detected {k} but already saw a {}", kind_name(*prev))
                    };
                    return Err(ConfError::new(&xe.key_pos, msg));
                }
                kind_subject = Some((kind, str_of(xe)?));
            }
            "accounts" => {
                let names = array_of(xe)?
                    .iter()
                    .map(|n| match &n.value {
                        Value::String(s) => Ok(s.clone()),
                        _ => Err(node_type_err(&xe.key, n, "account names")),
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                accounts = Some(names);
            }
            "response" | "response_type" => {
                let s = str_of(xe)?;
                let rt = match s.to_ascii_lowercase().as_str() {
                    "single" | "singleton" => ResponseType::Singleton,
                    "stream" => ResponseType::Stream,
                    "chunk" | "chunked" => ResponseType::Chunked,
                    _ => {
                        return Err(ConfError::new(
                            &xe.value.pos,
                            format!("Unknown response type: {s:?}"),
                        ))
                    }
                };
                response = Some((rt, xe));
            }
            "threshold" | "response_threshold" | "response_max_time" | "response_time" => {
                let s = str_of(xe)?;
                let d = parse_duration(&s).map_err(|_| {
                    ConfError::new(
                        &xe.value.pos,
                        format!("Expected response threshold to be a parseable time duration, got {s:?}"),
                    )
                })?;
                threshold = Some((d, xe));
            }
            "latency" | "account_token_position" | "advertise" | "allow_trace" => {
                m.ignore(prefix, xe);
            }
            _ => unknown(xe)?,
        }
    }
    let Some((kind, subject)) = kind_subject else {
        return Err(ConfError::new(
            &item.pos,
            "export needs a \"stream\" or a \"service\"",
        ));
    };
    if kind == ExportKind::Stream {
        if let Some(xe) = response.map(|(_, x)| x).or(threshold.map(|(_, x)| x)) {
            return Err(ConfError::new(
                &xe.key_pos,
                "Detected response directive on non-service",
            ));
        }
    }
    Ok(ExportConfig {
        kind,
        subject,
        accounts,
        response_type: response.map(|(rt, _)| rt).unwrap_or_default(),
        response_threshold: threshold.map(|(d, _)| d),
    })
}

fn kind_name(k: ExportKind) -> &'static str {
    match k {
        ExportKind::Stream => "stream",
        ExportKind::Service => "service",
    }
}

/// `{ stream: { account: A, subject: "a.>" }, prefix: "p" }` or
/// `{ service: { account: A, subject: "svc" }, to: "local" }`.
fn import(m: &mut Mapper, prefix: &str, e: &Entry, item: &Node) -> Result<ImportConfig, ConfError> {
    let map = item_map(e, item, "import entries to be maps")?;
    let mut source: Option<(ExportKind, String, String)> = None;
    let mut to: Option<&Entry> = None;
    let mut pre: Option<&Entry> = None;
    for ie in map {
        match lower(ie).as_str() {
            k @ ("stream" | "service") => {
                let kind = if k == "stream" {
                    ExportKind::Stream
                } else {
                    ExportKind::Service
                };
                if let Some((prev, _, _)) = &source {
                    return Err(ConfError::new(
                        &ie.key_pos,
                        format!("Detected {k} but already saw a {}", kind_name(*prev)),
                    ));
                }
                let (account, subject) = import_source(ie)?;
                source = Some((kind, account, subject));
            }
            "to" => to = Some(ie),
            "prefix" => pre = Some(ie),
            "share" | "allow_trace" => m.ignore(prefix, ie),
            _ => unknown(ie)?,
        }
    }
    let Some((kind, account, subject)) = source else {
        return Err(ConfError::new(
            &item.pos,
            "import needs a \"stream\" or a \"service\"",
        ));
    };
    if let (Some(t), Some(_), ExportKind::Stream) = (to, pre, kind) {
        return Err(ConfError::new(
            &t.key_pos,
            "Stream import can not have a 'prefix' and a 'to' property",
        ));
    }
    let to = to.map(str_of).transpose()?;
    let pre = match (pre, kind) {
        (Some(p), ExportKind::Stream) => Some(str_of(p)?),
        // Go ignores a prefix on a service import.
        (Some(p), ExportKind::Service) => {
            m.ignore(prefix, p);
            None
        }
        (None, _) => None,
    };
    Ok(ImportConfig {
        kind,
        account,
        subject,
        to,
        prefix: pre,
    })
}

/// `{ account: A, subject: "x" }` (Go: parseAccount).
fn import_source(e: &Entry) -> Result<(String, String), ConfError> {
    let map = map_of(e)?;
    let (mut account, mut subject) = (None, None);
    for se in map {
        match lower(se).as_str() {
            "account" => account = Some(str_of(se)?),
            "subject" => subject = Some(str_of(se)?),
            _ => unknown(se)?,
        }
    }
    match (account, subject) {
        (Some(a), Some(s)) if !a.is_empty() && !s.is_empty() => Ok((a, s)),
        _ => Err(ConfError::new(
            &e.value.pos,
            "Expect an account name and a subject",
        )),
    }
}

#[cfg(test)]
#[path = "options_accounts_js_tests.rs"]
mod js_tests;
