//! Sources and mirrors across accounts: after each group commit, every external cursor
//! copies what its origin committed (see `natsd_core::jetstream::sourcing::external`); one
//! whose origin no import reaches asks for it over the network instead
//! (`natsd_core::jetstream::sourcing::remote`).

use std::collections::BTreeMap;
use std::sync::Arc;

use natsd_core::jetstream::sourcing::external::{resolve, Origin, Route};

use super::{tag, AccountJs, Tagged};

/// Rounds per pass: a copy may feed another account's source in the same pass.
const ROUNDS: usize = 4;

/// Runs the external cursors of every account; `sync` as the commit just made.
pub(super) fn pull(
    accounts: &mut BTreeMap<String, AccountJs>,
    now: u64,
    sync: bool,
    out: &mut Vec<Tagged>,
) {
    for _ in 0..ROUNDS {
        let names: Vec<String> = accounts
            .iter()
            .filter(|(_, a)| a.js.has_external_sources())
            .map(|(n, _)| n.clone())
            .collect();
        let mut stored_any = false;
        for name in names {
            // Out of the map while it reads another account's streams.
            let Some(mut dst) = accounts.remove(&name) else {
                continue;
            };
            let mut ds = Vec::new();
            let mut stored = false;
            for c in dst.js.external_cursors() {
                let Some(ext) = c.source.external.as_ref() else {
                    continue;
                };
                let route = resolve(
                    &dst.acc,
                    dst.js.domain(),
                    ext,
                    &c.source.name,
                    c.slot.is_none(),
                );
                if matches!(route, Route::Unreachable) {
                    // No import reaches it: ask over the network, as nats-server does (an
                    // origin across a leaf link, or none at all).
                    let (request, changed) = dst.js.pull_remote(&c, now);
                    ds.extend(request);
                    dst.changed |= changed;
                    continue;
                }
                dst.changed |= dst.js.drop_remote(&c);
                let origin = match &route {
                    Route::Unreachable => Origin::Unreachable,
                    Route::Local => Origin::Local,
                    Route::Account(acc) => accounts
                        .values()
                        .find(|o| Arc::ptr_eq(&o.acc, acc))
                        .map_or(Origin::NoJetStream, |o| Origin::Other(&o.js)),
                };
                let (copies, s) = dst.js.pull_external(&c, origin, now, sync);
                ds.extend(copies);
                stored |= s;
            }
            // Through a durable consumer of the origin (nats-server 2.14): the copy acks it,
            // so the origin account's JetStream is written to as well.
            for c in dst.js.durable_external_cursors() {
                let Some(ext) = c.source.external.as_ref() else {
                    continue;
                };
                let route = resolve(
                    &dst.acc,
                    dst.js.domain(),
                    ext,
                    &c.source.name,
                    c.slot.is_none(),
                );
                let (copies, s) = match &route {
                    Route::Unreachable => dst.js.pull_durable_external(&c, None, now, sync),
                    // Its own account: read as a source within the account.
                    Route::Local => dst.js.pull_durable_local(&c, now, sync),
                    Route::Account(acc) => {
                        let origin = accounts
                            .values_mut()
                            .find(|o| Arc::ptr_eq(&o.acc, acc))
                            .map(|o| &mut o.js);
                        dst.js.pull_durable_external(&c, Some(origin), now, sync)
                    }
                };
                ds.extend(copies);
                stored |= s;
            }
            if stored {
                // Acknowledge the copies to the stream's consumers (and sources within the
                // account) now rather than at the next input.
                ds.extend(if sync {
                    dst.js.commit(now)
                } else {
                    dst.js.commit_unsynced(now)
                });
                stored_any = true;
            }
            tag(out, &name, ds);
            accounts.insert(name, dst);
        }
        if !stored_any {
            return;
        }
    }
}
