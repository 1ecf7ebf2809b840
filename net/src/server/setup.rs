//! Turning options into the server's runtime pieces: the accounts with their imports wired, and
//! the configuration every client connection machine shares.

use std::collections::BTreeMap;
use std::sync::Arc;

use natsd_core::account::{self, Account};
use natsd_core::auth::Authenticator;
use natsd_core::conn::ClientConfig;
use natsd_core::options::{ExportKind, Options, DEFAULT_SYSTEM_ACCOUNT, GLOBAL_ACCOUNT};
use natsd_core::proto::info::ServerInfo;

use super::{ServerError, NATS_COMPAT_VERSION};

/// Builds the accounts of `opts`, with their imports wired.
/// Accounts that already exist in `existing` are kept as they are (their sublists hold live
/// subscriptions); only new accounts are created and get their imports wired.
pub(super) fn build_accounts(
    opts: &Options,
    existing: &BTreeMap<String, Arc<Account>>,
) -> Result<BTreeMap<String, Arc<Account>>, ServerError> {
    account::validate::validate_accounts(opts).map_err(|e| ServerError::Config(e.to_string()))?;
    let mut accounts: BTreeMap<String, Arc<Account>> = existing.clone();
    accounts
        .entry(GLOBAL_ACCOUNT.to_owned())
        .or_insert_with(|| Account::new(GLOBAL_ACCOUNT));
    // Go: the system account always exists, `$SYS` unless `system_account` names another.
    let sys = opts
        .system_account
        .clone()
        .unwrap_or_else(|| DEFAULT_SYSTEM_ACCOUNT.to_owned());
    accounts
        .entry(sys.clone())
        .or_insert_with(|| Account::new(&sys));
    for a in &opts.accounts {
        accounts
            .entry(a.name.clone())
            .or_insert_with(|| Account::new(&a.name));
    }
    for a in &opts.accounts {
        if existing.contains_key(&a.name) {
            continue;
        }
        let into = &accounts[&a.name];
        for imp in &a.imports {
            let from = accounts.get(&imp.account).ok_or_else(|| {
                ServerError::Config(format!("import from unknown account {:?}", imp.account))
            })?;
            let res = match imp.kind {
                ExportKind::Stream => Account::add_stream_import(
                    from,
                    into,
                    &imp.subject,
                    imp.to.as_deref(),
                    imp.prefix.as_deref(),
                ),
                ExportKind::Service => {
                    let export = opts
                        .accounts
                        .iter()
                        .find(|x| x.name == imp.account)
                        .and_then(|x| {
                            x.exports.iter().find(|e| {
                                e.kind == ExportKind::Service
                                    && natsd_core::subject::is_subset(
                                        imp.subject.as_bytes(),
                                        e.subject.as_bytes(),
                                    )
                            })
                        });
                    let (rt, threshold) = export.map_or(
                        (Default::default(), account::DEFAULT_RESPONSE_THRESHOLD),
                        |e| {
                            (
                                e.response_type,
                                e.response_threshold
                                    .unwrap_or(account::DEFAULT_RESPONSE_THRESHOLD),
                            )
                        },
                    );
                    Account::add_service_import(
                        from,
                        into,
                        &imp.subject,
                        imp.to.as_deref(),
                        rt,
                        threshold,
                    )
                }
            };
            res.map_err(|e| {
                ServerError::Config(format!(
                    "account {:?}: bad import {:?}: {e}",
                    a.name, imp.subject
                ))
            })?;
        }
    }
    Ok(accounts)
}

/// The configuration shared by every client connection machine.
pub(super) fn client_config(
    opts: &Options,
    server_id: &str,
    server_name: &str,
    port: u16,
) -> Result<ClientConfig, ServerError> {
    let authenticator = Authenticator::new(opts);
    let tls = opts.tls.as_ref();
    let info = ServerInfo {
        server_id: server_id.to_owned(),
        server_name: server_name.to_owned(),
        version: NATS_COMPAT_VERSION.to_owned(),
        // nats-server sends its Go version; some clients (the nats-core Python client) refuse
        // an INFO without the field, so natsd names itself there.
        go: format!("natsd {}", super::NATSD_VERSION),
        host: opts.host.clone(),
        port,
        headers: true,
        max_payload: opts.max_payload,
        proto: 1,
        tls_required: tls.is_some(),
        tls_verify: tls.is_some_and(|t| t.verify || t.verify_and_map),
        tls_available: tls.is_some(),
        jetstream: opts.jetstream.is_some(),
        domain: opts.jetstream.as_ref().and_then(|j| j.domain.clone()),
        ..ServerInfo::default()
    };
    Ok(ClientConfig {
        info,
        max_control_line: opts.max_control_line,
        max_payload: opts.max_payload,
        ping_interval: opts.ping_interval,
        ping_max: opts.ping_max,
        auth_timeout: opts.auth_timeout(),
        authenticator: Arc::new(authenticator),
    })
}
