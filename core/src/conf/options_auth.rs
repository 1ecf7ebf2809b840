//! `authorization { … }`, users and permissions (Go: server/opts.go parseAuthorization,
//! parseUsers, parseUserPermissions, parseVariablePermissions, parseAllowResponses).

use std::collections::BTreeSet;
use std::time::Duration;

use super::duration::{nanos_to_duration, parse_nanos};
use super::options::{
    duration_of, lower, map_of, node_type_err, seconds_of, str_of, string_list, type_err, unknown,
};
use super::{ConfError, Entry, Value};
use crate::options::{Options, Permissions, ResponsePermission, SubjectPermission, User};
use crate::subject::{is_valid_queue, is_valid_subject};

/// The top-level `authorization` block. Accounts are mapped before this, so duplicate users
/// across both are caught here.
pub(super) fn authorization(o: &mut Options, e: &Entry) -> Result<(), ConfError> {
    let map = map_of(e)?;
    let a = &mut o.authorization;
    let mut users_seen = false;
    for ae in map {
        match lower(ae).as_str() {
            "user" | "username" => a.user = Some(str_of(ae)?),
            "pass" | "password" => a.pass = Some(str_of(ae)?),
            "token" => a.token = Some(str_of(ae)?),
            // Go takes integer or float seconds; a duration string is accepted as well.
            "timeout" => {
                a.timeout = Some(match &ae.value.value {
                    Value::String(_) => duration_of(ae)?,
                    _ => seconds_of(ae)?,
                });
            }
            "users" => {
                users_seen = true;
                a.users = users(ae, None)?;
            }
            "default_permission" | "default_permissions" => {
                a.default_permissions = Some(permissions(ae)?);
            }
            // Go stores `permissions` as the default permissions of the users array as well.
            "permissions" => {
                let p = permissions(ae)?;
                if a.default_permissions.is_none() {
                    a.default_permissions = Some(p.clone());
                }
                a.permissions = Some(p);
            }
            _ => unknown(ae)?,
        }
    }
    let a = &o.authorization;
    if (a.user.is_some() || a.pass.is_some()) && a.token.is_some() {
        return Err(ConfError::new(
            &e.key_pos,
            "Cannot have a user/pass and token",
        ));
    }
    let account_users = o.accounts.iter().any(|acc| !acc.users.is_empty());
    if users_seen || account_users {
        if a.user.is_some() {
            let msg = if users_seen {
                "Can not have a single user/pass and a users array"
            } else {
                "Can not have a single user/pass and accounts"
            };
            return Err(ConfError::new(&e.key_pos, msg));
        }
        if a.token.is_some() {
            let msg = if users_seen {
                "Can not have a token and a users array"
            } else {
                "Can not have a token and accounts"
            };
            return Err(ConfError::new(&e.key_pos, msg));
        }
    }
    let mut names = BTreeSet::new();
    let all = o
        .accounts
        .iter()
        .flat_map(|acc| acc.users.iter())
        .chain(a.users.iter());
    for u in all {
        let (kind, name) = match (&u.nkey, &u.username) {
            (Some(k), _) => ("nkey", k),
            (None, Some(n)) => ("user", n),
            (None, None) => continue,
        };
        if !names.insert(name.clone()) {
            return Err(ConfError::new(
                &e.key_pos,
                format!("Duplicate {kind} {name:?} detected"),
            ));
        }
    }
    Ok(())
}

/// A `users = [ … ]` array, for the global account (`None`) or a named one.
pub(super) fn users(e: &Entry, account: Option<&str>) -> Result<Vec<User>, ConfError> {
    let Value::Array(items) = &e.value.value else {
        return Err(type_err(e, "an array of users"));
    };
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let Value::Map(um) = &item.value else {
            return Err(node_type_err(&e.key, item, "user entries to be maps"));
        };
        let mut u = User {
            account: account.map(str::to_owned),
            ..User::default()
        };
        for ue in um {
            match lower(ue).as_str() {
                "nkey" => u.nkey = Some(str_of(ue)?),
                "user" | "username" => u.username = Some(str_of(ue)?),
                "pass" | "password" => u.password = Some(str_of(ue)?),
                "permission" | "permissions" | "authorization" => {
                    u.permissions = Some(permissions(ue)?);
                }
                "allowed_connection_types" | "connection_types" | "clients" => {
                    u.allowed_connection_types = connection_types(ue)?;
                }
                _ => unknown(ue)?,
            }
        }
        match &u.nkey {
            None if u.username.is_none() => {
                return Err(ConfError::new(&item.pos, "User entry requires a user"));
            }
            Some(k) => {
                if !is_public_user_nkey(k) {
                    return Err(ConfError::new(
                        &item.pos,
                        "Not a valid public nkey for a user",
                    ));
                }
                if u.username.is_some() || u.password.is_some() {
                    return Err(ConfError::new(
                        &item.pos,
                        "Nkey users do not take usernames or passwords",
                    ));
                }
            }
            None => {}
        }
        out.push(u);
    }
    Ok(out)
}

fn is_public_user_nkey(k: &str) -> bool {
    k.starts_with('U') && nkeys::KeyPair::from_public_key(k).is_ok()
}

/// Go: convertAllowedConnectionTypes — known names, upper-cased.
fn connection_types(e: &Entry) -> Result<Vec<String>, ConfError> {
    const KNOWN: &[&str] = &[
        "STANDARD",
        "WEBSOCKET",
        "LEAFNODE",
        "LEAFNODE_WS",
        "MQTT",
        "MQTT_WS",
        "IN_PROCESS",
    ];
    let mut out = Vec::new();
    for t in string_list(e)? {
        let up = t.to_ascii_uppercase();
        if !KNOWN.contains(&up.as_str()) {
            return Err(ConfError::new(
                &e.value.pos,
                format!("unknown connection type {t:?}"),
            ));
        }
        if !out.contains(&up) {
            out.push(up);
        }
    }
    Ok(out)
}

/// `permissions { publish, subscribe, allow_responses }`.
pub(super) fn permissions(e: &Entry) -> Result<Permissions, ConfError> {
    let map = map_of(e)?;
    let mut p = Permissions::default();
    for pe in map {
        match lower(pe).as_str() {
            "pub" | "publish" | "import" => p.publish = subject_permission(pe)?,
            "sub" | "subscribe" | "export" => p.subscribe = subject_permission(pe)?,
            "publish_allow_responses" | "allow_responses" => {
                p.allow_responses = allow_responses(pe)?;
                // Go: a responder's permission turns off the blanket publish allow.
                if p.allow_responses.is_some() && p.publish.is_none() {
                    p.publish = Some(SubjectPermission::default());
                }
            }
            _ => {
                if !pe.used_as_variable {
                    return Err(ConfError::new(
                        &pe.key_pos,
                        format!("Unknown field \"{}\" parsing permissions", pe.key),
                    ));
                }
            }
        }
    }
    Ok(p)
}

/// `"x"`, `["x", "y"]` (allow lists) or `{ allow: …, deny: … }`. An empty map is `None`.
pub(super) fn subject_permission(e: &Entry) -> Result<Option<SubjectPermission>, ConfError> {
    let Value::Map(map) = &e.value.value else {
        return Ok(Some(SubjectPermission {
            allow: subjects(e)?,
            deny: Vec::new(),
        }));
    };
    if map.is_empty() {
        return Ok(None);
    }
    let mut sp = SubjectPermission::default();
    for se in map {
        match lower(se).as_str() {
            "allow" => sp.allow = subjects(se)?,
            "deny" => sp.deny = subjects(se)?,
            _ => {
                if !se.used_as_variable {
                    return Err(ConfError::new(
                        &se.key_pos,
                        format!(
                            "Unknown field name \"{}\" parsing subject permissions, only 'allow' or 'deny' are permitted",
                            se.key
                        ),
                    ));
                }
            }
        }
    }
    Ok(Some(sp))
}

/// Go: parsePermSubjects + checkPermSubjectArray. A `"subject queue"` pair is accepted.
fn subjects(e: &Entry) -> Result<Vec<String>, ConfError> {
    let list = string_list(e)?;
    for s in &list {
        if is_valid_subject(s.as_bytes()) {
            continue;
        }
        let parts: Vec<&str> = s.split_whitespace().collect();
        // Go accepts the queue form in publish lists too; it only ever matters for subscribe.
        let bad = match parts.as_slice() {
            [subj, queue] => {
                if !is_valid_subject(subj.as_bytes()) {
                    Some((*subj).to_owned())
                } else if !is_valid_queue(queue.as_bytes()) {
                    Some(s.clone())
                } else {
                    None
                }
            }
            _ => Some(s.clone()),
        };
        if let Some(b) = bad {
            return Err(ConfError::new(
                &e.value.pos,
                format!("subject {b:?} is not a valid subject"),
            ));
        }
    }
    Ok(list)
}

/// `allow_responses: true` or `{ max: 5, expires: "1m" }`.
fn allow_responses(e: &Entry) -> Result<Option<ResponsePermission>, ConfError> {
    let map = match &e.value.value {
        Value::Bool(b) => return Ok(b.then(ResponsePermission::default)),
        Value::Map(map) => map,
        _ => {
            return Err(ConfError::new(
                &e.value.pos,
                "error parsing response permissions, expected a boolean or a map",
            ))
        }
    };
    let mut rp = ResponsePermission::default();
    for re in map {
        match lower(re).as_str() {
            "max" | "max_msgs" | "max_messages" | "max_responses" => {
                let Value::Int(n) = re.value.value else {
                    return Err(type_err(re, "an integer"));
                };
                // Go: 0 keeps the default; a negative count means unlimited.
                if n < 0 {
                    rp.max = u32::MAX;
                } else if n > 0 {
                    rp.max = u32::try_from(n).unwrap_or(u32::MAX);
                }
            }
            "expires" | "expiration" | "ttl" => {
                let Value::String(s) = &re.value.value else {
                    return Err(ConfError::new(
                        &re.value.pos,
                        "error parsing expires, not a duration string",
                    ));
                };
                let n = parse_nanos(s).map_err(|err| {
                    ConfError::new(&re.value.pos, format!("error parsing expires: {err}"))
                })?;
                // Go: 0 keeps the default; a negative duration means no expiry (zero here).
                if n < 0 {
                    rp.expires = Duration::ZERO;
                } else if n > 0 {
                    rp.expires = nanos_to_duration(n);
                }
            }
            _ => {
                if !re.used_as_variable {
                    return Err(ConfError::new(
                        &re.key_pos,
                        format!("Unknown field \"{}\" parsing permissions", re.key),
                    ));
                }
            }
        }
    }
    Ok(Some(rp))
}
