//! Config-time validation of accounts and users: unknown accounts, unauthorized imports, import
//! cycles, duplicate users, conflicting authentication settings.
//!
//! Go: server/opts.go parseAccounts / parseAuthorization, server/accounts.go
//! add*ImportWithClaim, server/auth.go validateAuth. Message texts follow nats-server's where it
//! has one, with the account names added so the operator can find the culprit.
//!
//! Import cycles are caught twice, and a config is refused if either check fires:
//!
//! * nats-server's own test, replayed in file order (stream imports, then service imports): each
//!   import is checked against the imports already accepted, walking the exporter's imports whose
//!   subjects collide. It is a heuristic that refuses some configs with no real loop, and we want
//!   to refuse what nats-server refuses.
//! * a flow analysis: a request published in the importer on the import's local subject is
//!   forwarded to the exporter (services); a message published in the exporter is delivered into
//!   the importer (streams). A cycle in that graph of (account, subject) states is a real loop,
//!   including loops through renaming imports that the heuristic can miss.

use std::collections::{BTreeMap, BTreeSet};

use thiserror::Error;

use crate::auth::ConnType;
use crate::options::{
    AccountConfig, Authorization, ExportKind, ImportConfig, Options, User, DEFAULT_SYSTEM_ACCOUNT,
    GLOBAL_ACCOUNT,
};
use crate::subject::{is_subset, is_valid_subject, overlaps};

/// nats-server's bound on the cycle search (MaxAccountCycleSearchDepth).
pub const MAX_CYCLE_SEARCH_DEPTH: usize = 1024;

/// A problem in the accounts/users configuration.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AccountConfigError {
    /// `$G` cannot be defined in the accounts block.
    #[error("{0:?} is a Reserved Account")]
    ReservedAccount(String),
    /// The same account defined twice.
    #[error("Duplicate Account Entry: {0}")]
    DuplicateAccount(String),
    /// An export's `accounts` list names an account that does not exist.
    #[error("{account:?} account not defined for {} export of {subject:?} in account {exporter:?}", kind_str(*kind))]
    UnknownExportAccount {
        /// The missing account.
        account: String,
        /// The exporting account.
        exporter: String,
        /// The exported subject.
        subject: String,
        /// Stream or service.
        kind: ExportKind,
    },
    /// An import names an account that does not exist.
    #[error("{account:?} account not defined for {} import of {subject:?} in account {importer:?}", kind_str(*kind))]
    UnknownImportAccount {
        /// The missing account.
        account: String,
        /// The importing account.
        importer: String,
        /// The imported subject.
        subject: String,
        /// Stream or service.
        kind: ExportKind,
    },
    /// An import or export subject is not a valid subject.
    #[error("invalid subject {subject:?} in account {account:?}")]
    InvalidSubject {
        /// The account holding it.
        account: String,
        /// The subject.
        subject: String,
    },
    /// The exporter does not export the subject, or not to this importer.
    #[error("Error adding {} import {subject:?} in account {importer:?} from account {exporter:?}: {} import not authorized", kind_str(*kind), kind_str(*kind))]
    ImportNotAuthorized {
        /// The importing account.
        importer: String,
        /// The exporting account.
        exporter: String,
        /// The imported subject.
        subject: String,
        /// Stream or service.
        kind: ExportKind,
    },
    /// A stream import with both `prefix` and `to`.
    #[error("Stream import can not have a 'prefix' and a 'to' property (account {importer:?}, subject {subject:?})")]
    PrefixAndTo {
        /// The importing account.
        importer: String,
        /// The imported subject.
        subject: String,
    },
    /// The import would make messages loop between accounts.
    #[error("Error adding {} import {subject:?} in account {importer:?} from account {exporter:?}: import forms a cycle ({path})", kind_str(*kind))]
    ImportCycle {
        /// The importing account.
        importer: String,
        /// The exporting account.
        exporter: String,
        /// The imported subject.
        subject: String,
        /// Stream or service.
        kind: ExportKind,
        /// The loop, as `account:subject -> ...`.
        path: String,
    },
    /// The cycle search went deeper than [`MAX_CYCLE_SEARCH_DEPTH`].
    #[error("Error adding {} import {subject:?} in account {importer:?}: search cycle depth exhausted", kind_str(*kind))]
    CycleSearchDepth {
        /// The importing account.
        importer: String,
        /// The imported subject.
        subject: String,
        /// Stream or service.
        kind: ExportKind,
    },
    /// A user name defined twice (authorization block and/or accounts).
    #[error("Duplicate user {0:?} detected")]
    DuplicateUser(String),
    /// An nkey defined twice.
    #[error("Duplicate nkey {0:?} detected")]
    DuplicateNkey(String),
    /// An nkey user whose key is not a public user nkey.
    #[error("Not a valid public nkey for a user: {0:?}")]
    InvalidUserNkey(String),
    /// A user entry with neither a name nor an nkey.
    #[error("User entry requires a user")]
    UserWithoutName,
    /// A user bound to an account that is not defined.
    #[error("user {user:?} bound to unknown account {account:?}")]
    UnknownUserAccount {
        /// User name or nkey.
        user: String,
        /// The missing account.
        account: String,
    },
    /// `allowed_connection_types` holds an unknown type.
    #[error("unknown connection type {conn_type:?} for user {user:?}")]
    UnknownConnectionType {
        /// User name or nkey.
        user: String,
        /// The unknown spelling.
        conn_type: String,
    },
    /// Both `user`/`pass` and `token` in the authorization block.
    #[error("Cannot have a user/pass and token")]
    UserPassAndToken,
    /// A single `user` alongside a users list or accounts' users.
    #[error("Can not have a single user/pass and a users array")]
    SingleUserAndUsers,
    /// A `token` alongside a users list or accounts' users.
    #[error("Can not have a token and a users array")]
    TokenAndUsers,
    /// `no_auth_user` without any user or nkey defined.
    #[error("no_auth_user: {0:?} present, but users/nkeys are not defined")]
    NoAuthUserWithoutUsers(String),
    /// `no_auth_user` naming nobody.
    #[error("no_auth_user: {0:?} not present as user or nkey in authorization block or account configuration")]
    UnknownNoAuthUser(String),
    /// `system_account` naming an account that is not defined.
    #[error("error resolving system account: {0:?} not defined")]
    UnknownSystemAccount(String),
}

fn kind_str(k: ExportKind) -> &'static str {
    match k {
        ExportKind::Stream => "stream",
        ExportKind::Service => "service",
    }
}

/// Validates accounts, users and the authentication settings; the first problem found.
pub fn validate_accounts(opts: &Options) -> Result<(), AccountConfigError> {
    match validate_accounts_all(opts).into_iter().next() {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Validates accounts, users and the authentication settings; every problem found, in a stable
/// order (nats-server also reports them all at once).
pub fn validate_accounts_all(opts: &Options) -> Vec<AccountConfigError> {
    let mut errs = Vec::new();
    let names = account_names(opts, &mut errs);
    check_users(opts, &names, &mut errs);
    check_exports(opts, &names, &mut errs);
    check_imports(opts, &names, &mut errs);
    errs
}

/// The system account in force: `system_account`, else `$SYS` when the accounts block defines it.
fn system_account(opts: &Options) -> Option<&str> {
    opts.system_account.as_deref().or_else(|| {
        opts.accounts
            .iter()
            .any(|a| a.name == DEFAULT_SYSTEM_ACCOUNT)
            .then_some(DEFAULT_SYSTEM_ACCOUNT)
    })
}

/// Does nats-server's implicit `no_auth_user` apply? When the accounts block holds only the
/// system account (so that its users can log in) and there is no `no_auth_user`, connections
/// without credentials keep landing in the global account, as they would with no accounts at
/// all. CVE-2023-47090: only when there is no `authorization` block; with one, credentials are
/// required. (Any non-default authorization setting counts as a block here; the options do not
/// record an empty `authorization {}`.)
pub fn implicit_no_auth_user(opts: &Options) -> bool {
    let Some(sys) = system_account(opts) else {
        return false;
    };
    opts.no_auth_user.is_none()
        && opts.accounts.len() == 1
        && opts.accounts[0].name == sys
        && opts.authorization == Authorization::default()
}

fn account_names<'a>(opts: &'a Options, errs: &mut Vec<AccountConfigError>) -> BTreeSet<&'a str> {
    let mut names = BTreeSet::new();
    for a in &opts.accounts {
        if a.name == GLOBAL_ACCOUNT {
            errs.push(AccountConfigError::ReservedAccount(a.name.clone()));
        } else if !names.insert(a.name.as_str()) {
            errs.push(AccountConfigError::DuplicateAccount(a.name.clone()));
        }
    }
    if let Some(sys) = &opts.system_account {
        // The default system account is created on demand; any other name must be defined.
        if sys != DEFAULT_SYSTEM_ACCOUNT && !names.contains(sys.as_str()) {
            errs.push(AccountConfigError::UnknownSystemAccount(sys.clone()));
        }
    }
    names
}

fn user_id(u: &User) -> Option<&str> {
    u.nkey
        .as_deref()
        .filter(|s| !s.is_empty())
        .or(u.username.as_deref().filter(|s| !s.is_empty()))
}

fn check_users(opts: &Options, names: &BTreeSet<&str>, errs: &mut Vec<AccountConfigError>) {
    let auth = &opts.authorization;
    let single_user = auth.user.as_deref().is_some_and(|s| !s.is_empty());
    let token = auth.token.as_deref().is_some_and(|s| !s.is_empty());
    if single_user && token {
        errs.push(AccountConfigError::UserPassAndToken);
    }
    let all: Vec<(&User, Option<&str>)> = auth
        .users
        .iter()
        .map(|u| (u, u.account.as_deref()))
        .chain(
            opts.accounts
                .iter()
                .flat_map(|a| a.users.iter().map(move |u| (u, Some(a.name.as_str())))),
        )
        .collect();
    if !all.is_empty() {
        if single_user {
            errs.push(AccountConfigError::SingleUserAndUsers);
        }
        if token {
            errs.push(AccountConfigError::TokenAndUsers);
        }
    }
    let mut seen_users = BTreeSet::new();
    let mut seen_nkeys = BTreeSet::new();
    for (u, account) in &all {
        let Some(id) = user_id(u) else {
            errs.push(AccountConfigError::UserWithoutName);
            continue;
        };
        if let Some(k) = u.nkey.as_deref().filter(|s| !s.is_empty()) {
            if !k.starts_with('U') || nkeys::KeyPair::from_public_key(k).is_err() {
                errs.push(AccountConfigError::InvalidUserNkey(k.to_owned()));
            }
            if !seen_nkeys.insert(k) {
                errs.push(AccountConfigError::DuplicateNkey(k.to_owned()));
            }
        } else if !seen_users.insert(id) {
            errs.push(AccountConfigError::DuplicateUser(id.to_owned()));
        }
        if let Some(acc) = account {
            if *acc != GLOBAL_ACCOUNT && !names.contains(acc) {
                errs.push(AccountConfigError::UnknownUserAccount {
                    user: id.to_owned(),
                    account: (*acc).to_owned(),
                });
            }
        }
        for t in &u.allowed_connection_types {
            if ConnType::parse(t).is_none() {
                errs.push(AccountConfigError::UnknownConnectionType {
                    user: id.to_owned(),
                    conn_type: t.clone(),
                });
            }
        }
    }
    if let Some(n) = &opts.no_auth_user {
        if all.is_empty() {
            errs.push(AccountConfigError::NoAuthUserWithoutUsers(n.clone()));
        } else if !all.iter().any(|(u, _)| user_id(u) == Some(n.as_str())) {
            errs.push(AccountConfigError::UnknownNoAuthUser(n.clone()));
        }
    }
}

fn check_exports(opts: &Options, names: &BTreeSet<&str>, errs: &mut Vec<AccountConfigError>) {
    for a in &opts.accounts {
        for e in &a.exports {
            if !is_valid_subject(e.subject.as_bytes()) {
                errs.push(AccountConfigError::InvalidSubject {
                    account: a.name.clone(),
                    subject: e.subject.clone(),
                });
            }
            for target in e.accounts.iter().flatten() {
                if !names.contains(target.as_str()) {
                    errs.push(AccountConfigError::UnknownExportAccount {
                        account: target.clone(),
                        exporter: a.name.clone(),
                        subject: e.subject.clone(),
                        kind: e.kind,
                    });
                }
            }
        }
    }
}

/// Go: checkStreamExportApproved / checkServiceExportApproved — the import subject must lie
/// within an export of that kind, public or listing the importer. nats-server stops at the first
/// matching export in map order; we accept if any matching export approves, which is stable.
/// An empty `accounts` list is public, as in nats-server.
fn import_authorized(
    exporter: &AccountConfig,
    importer: &str,
    kind: ExportKind,
    subject: &str,
) -> bool {
    exporter.exports.iter().any(|e| {
        e.kind == kind
            && is_subset(subject.as_bytes(), e.subject.as_bytes())
            && e.accounts
                .as_ref()
                .is_none_or(|l| l.is_empty() || l.iter().any(|n| n == importer))
    })
}

/// Go: transformUntokenize — `$1` and `{{wildcard(1)}}` placeholders become `*`.
fn untokenize(subject: &str) -> String {
    subject
        .split('.')
        .map(|t| {
            let b = t.as_bytes();
            let dollar = b.len() > 1 && b[0] == b'$' && (b'1'..=b'9').contains(&b[1]);
            let lower = t.to_ascii_lowercase();
            let func =
                lower.starts_with("{{") && lower.ends_with("}}") && lower.contains("wildcard(");
            if dollar || func {
                "*"
            } else {
                t
            }
        })
        .collect::<Vec<_>>()
        .join(".")
}

/// A point in the flow graph: an account (by index) and a subject pattern in it.
type State = (usize, String);
/// A borrowed flow-graph edge: from (account, subject) to (account, subject).
type Edge<'a> = ((usize, &'a str), (usize, &'a str));

/// One accepted import, normalized.
#[derive(Debug, Clone)]
struct Imp {
    importer: usize,
    exporter: usize,
    kind: ExportKind,
    /// Subject in the exporter.
    remote: String,
    /// Subject in the importer (placeholders replaced by `*`).
    local: String,
}

impl Imp {
    fn new(importer: usize, exporter: usize, i: &ImportConfig) -> Self {
        let local = match (i.kind, &i.to, &i.prefix) {
            (_, Some(to), _) if !to.is_empty() => untokenize(to),
            (ExportKind::Stream, _, Some(p)) if !p.is_empty() => {
                format!("{}.{}", p.trim_end_matches('.'), i.subject)
            }
            _ => i.subject.clone(),
        };
        Self {
            importer,
            exporter,
            kind: i.kind,
            remote: i.subject.clone(),
            local,
        }
    }

    /// The edge this import adds to the flow graph: (account, subject) → (account, subject).
    fn flow(&self) -> Edge<'_> {
        match self.kind {
            // Requests published in the importer on `local` go to the exporter on `remote`.
            ExportKind::Service => ((self.importer, &self.local), (self.exporter, &self.remote)),
            // Messages published in the exporter on `remote` arrive in the importer on `local`.
            ExportKind::Stream => ((self.exporter, &self.remote), (self.importer, &self.local)),
        }
    }
}

fn check_imports(opts: &Options, names: &BTreeSet<&str>, errs: &mut Vec<AccountConfigError>) {
    let index: BTreeMap<&str, usize> = opts
        .accounts
        .iter()
        .enumerate()
        .filter(|(_, a)| names.contains(a.name.as_str()))
        .map(|(i, a)| (a.name.as_str(), i))
        .collect();
    let mut accepted: Vec<Imp> = Vec::new();
    // Go adds every stream import before any service import.
    for kind in [ExportKind::Stream, ExportKind::Service] {
        for (ii, acc) in opts.accounts.iter().enumerate() {
            for imp in acc.imports.iter().filter(|i| i.kind == kind) {
                let subject = imp.subject.clone();
                let Some(&ei) = index.get(imp.account.as_str()) else {
                    errs.push(AccountConfigError::UnknownImportAccount {
                        account: imp.account.clone(),
                        importer: acc.name.clone(),
                        subject,
                        kind,
                    });
                    continue;
                };
                let local_ok = [imp.to.as_deref(), imp.prefix.as_deref()]
                    .into_iter()
                    .flatten()
                    .filter(|s| !s.is_empty())
                    .all(|s| is_valid_subject(untokenize(s).trim_end_matches('.').as_bytes()));
                if !is_valid_subject(subject.as_bytes()) || !local_ok {
                    errs.push(AccountConfigError::InvalidSubject {
                        account: acc.name.clone(),
                        subject,
                    });
                    continue;
                }
                if kind == ExportKind::Stream
                    && imp.to.as_deref().is_some_and(|s| !s.is_empty())
                    && imp.prefix.as_deref().is_some_and(|s| !s.is_empty())
                {
                    errs.push(AccountConfigError::PrefixAndTo {
                        importer: acc.name.clone(),
                        subject,
                    });
                    continue;
                }
                let exporter = &opts.accounts[ei];
                if !import_authorized(exporter, &acc.name, kind, &subject) {
                    errs.push(AccountConfigError::ImportNotAuthorized {
                        importer: acc.name.clone(),
                        exporter: exporter.name.clone(),
                        subject,
                        kind,
                    });
                    continue;
                }
                let new = Imp::new(ii, ei, imp);
                let verdict = go_cycle_check(opts, &accepted, &new).and_then(|()| {
                    let mut all = accepted.clone();
                    all.push(new.clone());
                    flow_cycle_check(opts, &all, &new)
                });
                match verdict {
                    Ok(()) => accepted.push(new),
                    Err(CycleErr::Depth) => errs.push(AccountConfigError::CycleSearchDepth {
                        importer: acc.name.clone(),
                        subject,
                        kind,
                    }),
                    Err(CycleErr::Cycle(path)) => errs.push(AccountConfigError::ImportCycle {
                        importer: acc.name.clone(),
                        exporter: exporter.name.clone(),
                        subject,
                        kind,
                        path,
                    }),
                }
            }
        }
    }
}

enum CycleErr {
    Cycle(String),
    Depth,
}

/// nats-server's check (serviceImportFormsCycle / streamImportFormsCycle) for adding `new`.
fn go_cycle_check(opts: &Options, accepted: &[Imp], new: &Imp) -> Result<(), CycleErr> {
    let name = |i: usize| opts.accounts[i].name.as_str();
    let path = |visited: &[usize], last: usize| {
        let mut p: Vec<&str> = visited.iter().map(|i| name(*i)).collect();
        p.push(name(last));
        p.join(" -> ")
    };
    match new.kind {
        ExportKind::Service => {
            // Walk the exporter's service imports whose remote subject collides with ours.
            fn walk(
                accepted: &[Imp],
                acc: usize,
                from: &str,
                visited: &mut Vec<usize>,
                path: &dyn Fn(&[usize], usize) -> String,
            ) -> Result<(), CycleErr> {
                if visited.len() >= MAX_CYCLE_SEARCH_DEPTH {
                    return Err(CycleErr::Depth);
                }
                for si in accepted
                    .iter()
                    .filter(|s| s.kind == ExportKind::Service && s.importer == acc)
                {
                    if overlaps(from.as_bytes(), si.remote.as_bytes()) {
                        if visited.contains(&si.exporter) {
                            return Err(CycleErr::Cycle(path(visited, si.exporter)));
                        }
                        if !visited.contains(&acc) {
                            visited.push(acc);
                        }
                        let f = if is_subset(si.local.as_bytes(), from.as_bytes()) {
                            &si.local
                        } else {
                            from
                        };
                        walk(accepted, si.exporter, f, visited, path)?;
                    }
                }
                Ok(())
            }
            let mut visited = vec![new.importer];
            walk(accepted, new.exporter, &new.local, &mut visited, &path)
        }
        ExportKind::Stream => {
            fn walk(
                opts: &Options,
                accepted: &[Imp],
                acc: usize,
                to: &str,
                visited: &mut Vec<usize>,
                path: &dyn Fn(&[usize], usize) -> String,
            ) -> Result<(), CycleErr> {
                if visited.len() >= MAX_CYCLE_SEARCH_DEPTH {
                    return Err(CycleErr::Depth);
                }
                let exports_it = opts.accounts[acc].exports.iter().any(|e| {
                    e.kind == ExportKind::Stream && is_subset(to.as_bytes(), e.subject.as_bytes())
                });
                if !exports_it {
                    return Ok(());
                }
                for si in accepted
                    .iter()
                    .filter(|s| s.kind == ExportKind::Stream && s.importer == acc)
                {
                    if overlaps(to.as_bytes(), si.local.as_bytes()) {
                        if visited.contains(&si.exporter) {
                            return Err(CycleErr::Cycle(path(visited, si.exporter)));
                        }
                        if !visited.contains(&acc) {
                            visited.push(acc);
                        }
                        let t = if is_subset(si.local.as_bytes(), to.as_bytes()) {
                            &si.local
                        } else {
                            to
                        };
                        walk(opts, accepted, si.exporter, t, visited, path)?;
                    }
                }
                Ok(())
            }
            walk(
                opts,
                accepted,
                new.exporter,
                &new.local,
                &mut vec![new.importer],
                &path,
            )?;
            walk(
                opts,
                accepted,
                new.exporter,
                &new.remote,
                &mut vec![new.importer],
                &path,
            )
        }
    }
}

/// Is there a loop through the new import's edge in the (account, subject) flow graph of
/// `all` imports of its kind? Depth-first, iterative, with the usual three colours.
fn flow_cycle_check(opts: &Options, all: &[Imp], new: &Imp) -> Result<(), CycleErr> {
    let edges: Vec<Edge<'_>> = all
        .iter()
        .filter(|i| i.kind == new.kind)
        .map(Imp::flow)
        .collect();
    // Moving along an edge from a state: an identity import keeps the narrower subject.
    let step = |state: &State| -> Vec<State> {
        edges
            .iter()
            .filter(|((a, s), _)| *a == state.0 && overlaps(state.1.as_bytes(), s.as_bytes()))
            .map(|((_, s), (b, d))| {
                let keep = s == d && is_subset(state.1.as_bytes(), d.as_bytes());
                (
                    *b,
                    if keep {
                        state.1.clone()
                    } else {
                        (*d).to_owned()
                    },
                )
            })
            .collect()
    };
    let (src, _) = new.flow();
    let start = (src.0, src.1.to_owned());
    let mut done: BTreeSet<State> = BTreeSet::new();
    let mut on_path: BTreeSet<State> = BTreeSet::new();
    // Stack of (state, its successors not yet explored).
    let mut stack: Vec<(State, Vec<State>)> = Vec::new();
    on_path.insert(start.clone());
    let succ = step(&start);
    stack.push((start, succ));
    while let Some((_, pending)) = stack.last_mut() {
        match pending.pop() {
            Some(next) => {
                if on_path.contains(&next) {
                    let mut p: Vec<String> = stack
                        .iter()
                        .map(|((a, s), _)| format!("{}:{s}", opts.accounts[*a].name))
                        .collect();
                    p.push(format!("{}:{}", opts.accounts[next.0].name, next.1));
                    return Err(CycleErr::Cycle(p.join(" -> ")));
                }
                if done.contains(&next) {
                    continue;
                }
                if stack.len() >= MAX_CYCLE_SEARCH_DEPTH {
                    return Err(CycleErr::Depth);
                }
                on_path.insert(next.clone());
                let succ = step(&next);
                stack.push((next, succ));
            }
            None => {
                if let Some((state, _)) = stack.pop() {
                    on_path.remove(&state);
                    done.insert(state);
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
