//! Deliveries whose subscribers see another subject than the one they are matched on: a
//! JetStream consumer's messages go to its deliver (or pull reply) subject but show the
//! subject they were stored under, here and across routes and leaf links.

use std::sync::Arc;

use bytes::Bytes;

use super::{
    deliver_to, pick_queue_member, LeafOrigin, Message, Publisher, RouteTargets, Source, SubTarget,
};
use crate::account::Account;
use crate::leaf::encode_js_reply;
use crate::proto::client::MsgTemplate;

/// Delivers `m` to the subscribers of `to` while showing them `m.subject`: a JetStream
/// consumer's messages go to its deliver (or pull reply) subject but carry the subject they
/// were stored under (Go: the consumer's `dsubj` versus the message subject).
///
/// Routes and leaf links get the message under `to` (a routed message has one subject, the
/// one the receiving server matches on) with the stored subject after an `@` in the reply;
/// the receiving server takes it off again ([`super::deliver_routed`], [`deliver_from_leaf_as`]).
/// Go: client.go processMsgResults — every route, leaf or gateway target of a delivery with
/// a deliver subject and a reply gets `<reply>@<subject>`.
pub fn deliver_as(
    account: &Arc<Account>,
    p: &mut Publisher<'_>,
    to: &[u8],
    m: &Message<'_>,
) -> usize {
    let result = if p.transient {
        account.sublist.matches_transient(to)
    } else {
        account.sublist.matches(to)
    };
    let mut delivered = 0;
    let mut tpl = MsgTemplate::default();
    let mut targets = RouteTargets::default();
    for sub in &result.psubs {
        if let SubTarget::Route { route, .. } = &sub.0.target {
            if !sub.0.is_removed() {
                targets.add(route, None);
            }
            continue;
        }
        delivered += deliver_to(account, p, sub, m, 0, Source::Local, &mut tpl);
    }
    for group in result.qsubs.iter().filter(|g| !g.is_empty()) {
        // A deliver group's member on another server is picked like a local one.
        delivered += pick_queue_member(
            account,
            p,
            group,
            m,
            0,
            Source::Local,
            &mut targets,
            &mut tpl,
        );
    }
    if !targets.list.is_empty() {
        let reply = m.reply.map(|r| encode_js_reply(r, m.subject));
        let routed = Message {
            subject: to,
            reply: reply.as_deref(),
            ..*m
        };
        delivered += targets.send(account, p, &routed);
    }
    delivered
}

/// Delivers a message that came from a route or a gateway (`source`): a JetStream delivery
/// whose ack reply carries its stored subject (see [`crate::leaf::split_js_reply`]) is shown to
/// local subscribers of its deliver subject under the stored subject with the plain ack reply,
/// and goes on to leaf links as it came; anything else is routed as usual. Go: client.go
/// processMsgResults (`remapped`).
pub(super) fn deliver_linked(
    account: &Arc<Account>,
    p: &mut Publisher<'_>,
    m: &Message<'_>,
    source: Source<'_>,
) -> usize {
    if let Some((reply, subject)) = m.reply.and_then(crate::leaf::split_js_reply) {
        let shown = Message {
            subject,
            reply: Some(reply),
            ..*m
        };
        return deliver_linked_as(account, p, m, &shown, source);
    }
    super::route(account, p, m, 0, source)
}

/// Delivers a JetStream message that came from the leaf link `from` under its deliver subject
/// `arrived.subject` with the stored subject in its ack reply (see
/// [`crate::leaf::split_js_reply`]): local subscribers of the deliver subject see `m` (the
/// stored subject, the plain ack reply), links and routes it may go on to get `arrived` as it
/// came. Otherwise as [`super::deliver_from_leaf`].
pub fn deliver_from_leaf_as(
    account: &Arc<Account>,
    p: &mut Publisher<'_>,
    arrived: &Message<'_>,
    m: &Message<'_>,
    from: LeafOrigin,
    queues: &[Bytes],
) -> usize {
    deliver_linked_as(account, p, arrived, m, Source::Leaf(from, queues))
}

/// [`deliver_linked`] and [`deliver_from_leaf_as`]: `source` names the link and the queue
/// groups the sender chose this server for.
fn deliver_linked_as(
    account: &Arc<Account>,
    p: &mut Publisher<'_>,
    arrived: &Message<'_>,
    m: &Message<'_>,
    source: Source<'_>,
) -> usize {
    let queues = source.queues().unwrap_or_default();
    let result = if p.transient {
        account.sublist.matches_transient(arrived.subject)
    } else {
        account.sublist.matches(arrived.subject)
    };
    let mut delivered = 0;
    let mut tpl = MsgTemplate::default();
    let mut targets = RouteTargets::default();
    for sub in &result.psubs {
        if let SubTarget::Route { route, .. } = &sub.0.target {
            if source.may_forward(route.as_ref()) && !sub.0.is_removed() {
                targets.add(route, None);
            }
            continue;
        }
        delivered += deliver_to(account, p, sub, m, 0, source, &mut tpl);
    }
    for group in &result.qsubs {
        let Some(first) = group.first() else { continue };
        if !queues.iter().any(|q| Some(q) == first.0.queue.as_ref()) {
            continue;
        }
        delivered += pick_queue_member(account, p, group, m, 0, source, &mut targets, &mut tpl);
    }
    if !targets.list.is_empty() {
        delivered += targets.send(account, p, arrived);
    }
    delivered
}
