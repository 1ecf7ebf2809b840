//! Deliveries whose subscribers see another subject than the one they are matched on: a
//! JetStream consumer's messages go to its deliver (or pull reply) subject but show the
//! subject they were stored under, here and across a leaf link.

use std::sync::Arc;

use bytes::Bytes;

use super::{
    deliver_to, pick_queue_member, LeafOrigin, Message, Publisher, RouteTargets, Source, SubTarget,
};
use crate::account::Account;
use crate::proto::client::MsgTemplate;

/// Delivers `m` to the subscribers of `to` while showing them `m.subject`: a JetStream
/// consumer's messages go to its deliver (or pull reply) subject but carry the subject they
/// were stored under (Go: the consumer's `dsubj` versus the message subject).
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
    // Leaf links get the stored subject inside the ack reply (see below).
    let mut leaf_targets = RouteTargets::default();
    let ack_reply = m
        .reply
        .filter(|r| r.starts_with(crate::leaf::JS_ACK_PREFIX));
    for sub in &result.psubs {
        // A clustered stream's leader delivers to subscribers on other servers too: over a
        // route the message travels under the deliver subject (a routed message has one
        // subject), which the receiving server's subscriber then sees.
        if let SubTarget::Route { route, .. } = &sub.0.target {
            if !sub.0.is_removed() {
                if ack_reply.is_some() && route.is_leaf() {
                    leaf_targets.add(route, None);
                } else {
                    targets.add(route, None);
                }
            }
            continue;
        }
        delivered += deliver_to(account, p, sub, m, 0, Source::Local, &mut tpl);
    }
    if !targets.list.is_empty() {
        let routed = Message { subject: to, ..*m };
        delivered += targets.send(account, p, &routed);
    }
    if let (false, Some(reply)) = (leaf_targets.list.is_empty(), ack_reply) {
        // Go: a JetStream delivery crossing a link carries its stored subject after an `@`
        // in the ack reply; the receiving server shows it to the subscriber (see
        // `deliver_from_leaf_as`).
        let reply = crate::leaf::encode_js_reply(reply, m.subject);
        let routed = Message {
            subject: to,
            reply: Some(&reply),
            ..*m
        };
        delivered += leaf_targets.send(account, p, &routed);
    }
    for group in result.qsubs.iter().filter(|g| !g.is_empty()) {
        let start = p.rng.below(group.len() as u64) as usize;
        for i in 0..group.len() {
            let sub = &group[(start + i) % group.len()];
            if matches!(sub.0.target, SubTarget::Route { .. }) {
                continue;
            }
            let n = deliver_to(account, p, sub, m, 0, Source::Local, &mut tpl);
            if n > 0 {
                delivered += n;
                break;
            }
        }
    }
    delivered
}

/// Delivers a JetStream message that came from the leaf link `from` under its deliver subject
/// `arrived.subject` with the stored subject in its ack reply (see
/// [`crate::leaf::split_js_reply`]): local subscribers of the deliver subject see `m` (the
/// stored subject, the plain ack reply), links and routes it may go on to get `arrived` as it
/// came. Otherwise as [`deliver_from_leaf`].
pub fn deliver_from_leaf_as(
    account: &Arc<Account>,
    p: &mut Publisher<'_>,
    arrived: &Message<'_>,
    m: &Message<'_>,
    from: LeafOrigin,
    queues: &[Bytes],
) -> usize {
    let source = Source::Leaf(from, queues);
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
