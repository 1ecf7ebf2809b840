//! Reusable client behaviours for scenarios: a reconnecting publisher, a reconnecting
//! subscriber, a responder, and server options with two accounts and a restricted user.

use std::time::Duration;

use natsd::Options;
use natsd_core::options::{AccountConfig, Permissions, SubjectPermission, User};

use crate::checkers::MsgId;
use crate::client::{ClientError, ClientOpts};
use crate::harness::{ClientCtx, Scenario};

/// Deadline on every single client operation.
pub const OP_TIMEOUT: Duration = Duration::from_secs(1);
/// A subscriber idle this long checks its connection with PING.
pub const IDLE_CHECK: Duration = Duration::from_millis(500);

/// Password of every configured user.
pub const PASSWORD: &str = "s3cret";

/// Server options with accounts `A` (users `a1`, `a2`, `a3`, and `limited`, who may not
/// subscribe to `orders.secret`) and `B` (users `b1`, `b2`, `b3`).
pub fn two_account_options() -> Options {
    let user = |name: &str, perms: Option<Permissions>| User {
        username: Some(name.to_owned()),
        password: Some(PASSWORD.to_owned()),
        permissions: perms,
        ..User::default()
    };
    let limited = Permissions {
        subscribe: Some(SubjectPermission {
            allow: Vec::new(),
            deny: vec!["orders.secret".to_owned()],
        }),
        ..Permissions::default()
    };
    Options {
        accounts: vec![
            AccountConfig {
                name: "A".to_owned(),
                users: vec![
                    user("a1", None),
                    user("a2", None),
                    user("a3", None),
                    user("limited", Some(limited)),
                ],
                ..AccountConfig::default()
            },
            AccountConfig {
                name: "B".to_owned(),
                users: vec![user("b1", None), user("b2", None), user("b3", None)],
                ..AccountConfig::default()
            },
        ],
        ..Scenario::default_server_options()
    }
}

/// The account of a user of [`two_account_options`].
pub fn account_of_user(user: &str) -> &'static str {
    if user.starts_with('b') {
        "B"
    } else {
        "A"
    }
}

/// What a publisher does.
#[derive(Debug, Clone)]
pub struct PublisherPlan {
    /// Connection options.
    pub opts: ClientOpts,
    /// Account label written into every [`MsgId`].
    pub account: String,
    /// Subjects, used round robin.
    pub subjects: Vec<String>,
    /// Start publishing at this sim time.
    pub start: Duration,
    /// Stop at this sim time.
    pub until: Duration,
    /// Pause between publishes.
    pub interval: Duration,
    /// Flush (PING/PONG) every this many publishes, to detect dead links.
    pub flush_every: u64,
    /// Bytes of padding after the id (`|xxx…`), for volume.
    pub pad: usize,
    /// Stop after this many messages (0: no limit).
    pub max_msgs: u64,
}

impl PublisherPlan {
    /// A plan with 20 ms between messages, a flush every 10, no padding and no limit.
    pub fn new(
        opts: ClientOpts,
        account: &str,
        subjects: &[&str],
        start: Duration,
        until: Duration,
    ) -> Self {
        Self {
            opts,
            account: account.to_owned(),
            subjects: subjects.iter().map(|s| (*s).to_owned()).collect(),
            start,
            until,
            interval: Duration::from_millis(20),
            flush_every: 10,
            pad: 0,
            max_msgs: 0,
        }
    }
}

/// Publishes [`MsgId`] payloads until `plan.until`, reconnecting whenever an operation fails.
/// Returns how many messages went out.
pub async fn publisher(mut ctx: ClientCtx, plan: PublisherPlan) -> Result<u64, String> {
    ctx.sleep_until(plan.start).await;
    let mut epoch = 0;
    let mut seq = 0;
    'outer: while ctx.now() < plan.until {
        let mut c = match ctx.connect_retry(&plan.opts, &mut epoch, plan.until).await {
            Ok(c) => c,
            Err(ClientError::Rejected(e)) => return Err(format!("{} rejected: {e}", ctx.name)),
            Err(_) => break,
        };
        while ctx.now() < plan.until {
            if plan.max_msgs > 0 && seq >= plan.max_msgs {
                break;
            }
            seq += 1;
            let subject = &plan.subjects[(seq as usize) % plan.subjects.len()];
            let mut payload = MsgId::new(&plan.account, &ctx.name, epoch, seq).to_string();
            if plan.pad > 0 {
                payload.push('|');
                payload.extend(std::iter::repeat_n('x', plan.pad));
            }
            if let Err(e) = c.publish(subject, payload.as_bytes(), OP_TIMEOUT).await {
                c.close(&format!("publish: {e}"));
                continue 'outer;
            }
            if seq % plan.flush_every == 0 {
                if let Err(e) = c.flush(OP_TIMEOUT).await {
                    c.close(&format!("flush: {e}"));
                    continue 'outer;
                }
            }
            tokio::time::sleep(plan.interval).await;
        }
        // Make sure the tail reached the server before leaving.
        let _ = c.flush(OP_TIMEOUT).await;
        c.close("done");
        break;
    }
    Ok(seq)
}

/// What a subscriber does.
#[derive(Debug, Clone)]
pub struct SubscriberPlan {
    /// Connection options.
    pub opts: ClientOpts,
    /// `(subject, queue)` pairs, subscribed in order on every connection (so sids repeat).
    pub subs: Vec<(String, Option<String>)>,
    /// Stop at this sim time.
    pub until: Duration,
}

/// Receives until `plan.until`, resubscribing after every reconnect. Returns how many
/// messages it received.
pub async fn subscriber(mut ctx: ClientCtx, plan: SubscriberPlan) -> Result<u64, String> {
    let mut epoch = 0;
    let mut received = 0;
    'outer: while ctx.now() < plan.until {
        let mut c = match ctx.connect_retry(&plan.opts, &mut epoch, plan.until).await {
            Ok(c) => c,
            Err(ClientError::Rejected(e)) => return Err(format!("{} rejected: {e}", ctx.name)),
            Err(_) => break,
        };
        for (subject, queue) in &plan.subs {
            if let Err(e) = c.subscribe(subject, queue.as_deref(), OP_TIMEOUT).await {
                c.close(&format!("subscribe: {e}"));
                continue 'outer;
            }
        }
        if let Err(e) = c.flush(OP_TIMEOUT).await {
            c.close(&format!("flush: {e}"));
            continue;
        }
        while ctx.now() < plan.until {
            let wait = IDLE_CHECK.min(plan.until.saturating_sub(ctx.now()));
            match c.next_msg(wait).await {
                Ok(Some(_)) => received += 1,
                Ok(None) => {
                    // Silence: a quiet subject or a dead link. PING tells them apart.
                    if let Err(e) = c.flush(OP_TIMEOUT).await {
                        c.close(&format!("idle flush: {e}"));
                        continue 'outer;
                    }
                }
                Err(e) => {
                    c.close(&format!("read: {e}"));
                    continue 'outer;
                }
            }
        }
        c.close("done");
    }
    Ok(received)
}

/// Answers requests on `subject` (in queue `queue`) with `echo:<payload>` until `until`.
pub async fn responder(
    mut ctx: ClientCtx,
    opts: ClientOpts,
    subject: &str,
    queue: Option<&str>,
    until: Duration,
) -> Result<u64, String> {
    let mut epoch = 0;
    let mut answered = 0;
    'outer: while ctx.now() < until {
        let mut c = match ctx.connect_retry(&opts, &mut epoch, until).await {
            Ok(c) => c,
            Err(ClientError::Rejected(e)) => return Err(format!("{} rejected: {e}", ctx.name)),
            Err(_) => break,
        };
        let subscribed = async {
            c.subscribe(subject, queue, OP_TIMEOUT).await?;
            c.flush(OP_TIMEOUT).await
        }
        .await;
        if let Err(e) = subscribed {
            c.close(&format!("subscribe: {e}"));
            continue;
        }
        while ctx.now() < until {
            let wait = IDLE_CHECK.min(until.saturating_sub(ctx.now()));
            let r = match c.next_msg(wait).await {
                Ok(Some(m)) => match m.reply {
                    Some(reply) => {
                        let mut body = b"echo:".to_vec();
                        body.extend_from_slice(&m.payload);
                        answered += 1;
                        c.publish(&reply, &body, OP_TIMEOUT).await
                    }
                    None => Ok(()),
                },
                Ok(None) => c.flush(OP_TIMEOUT).await,
                Err(e) => Err(e),
            };
            if let Err(e) = r {
                c.close(&format!("responder: {e}"));
                continue 'outer;
            }
        }
        c.close("done");
    }
    Ok(answered)
}
