//! Request/reply with a responder (account A), with none (no-responders 503), and across
//! accounts (account B never reaches A's responder), under faults.

use std::time::Duration;

use natsd_sim::checkers;
use natsd_sim::client::{ClientError, Reply};
use natsd_sim::faults::{FaultConfig, FaultKinds};
use natsd_sim::seeds::sweep;
use natsd_sim::trace::EventKind;
use natsd_sim::workloads::{responder, two_account_options, OP_TIMEOUT, PASSWORD};
use natsd_sim::{ClientCtx, Outcome, Scenario};

/// Sends requests until `until`, every 10th to a subject nobody serves. Notes each outcome as
/// `ok`, `503`, `timeout` or `conn`. A wrong reply body, or a reply from a subject nobody
/// serves, fails at once.
async fn requester(mut ctx: ClientCtx, user: &str, until: Duration) -> Result<(), String> {
    ctx.sleep_until(Duration::from_millis(300)).await;
    let opts = ctx.opts("n1").user(user, PASSWORD);
    let mut epoch = 0;
    let mut n = 0u64;
    'outer: while ctx.now() < until {
        let mut c = match ctx.connect_retry(&opts, &mut epoch, until).await {
            Ok(c) => c,
            Err(e) => return Err(format!("{} could not connect: {e}", ctx.name)),
        };
        while ctx.now() < until {
            n += 1;
            let nobody = n % 10 == 0;
            let subject = if nobody { "svc.none" } else { "svc.echo" };
            let body = format!("req|{}|{n}", ctx.name);
            let outcome = match c.request(subject, body.as_bytes(), OP_TIMEOUT).await {
                Ok(Reply::Msg(m)) => {
                    if nobody {
                        return Err(format!("reply from {subject}, which nobody serves: {m:?}"));
                    }
                    if m.payload.as_ref() != format!("echo:{body}").as_bytes() {
                        return Err(format!(
                            "reply {:?} does not match request {body}",
                            m.payload
                        ));
                    }
                    "ok"
                }
                Ok(Reply::NoResponders) => "503",
                Err(ClientError::Timeout) => "timeout",
                Err(e) => {
                    ctx.trace.note(&ctx.name, format!("{subject} conn"));
                    c.close(&format!("request: {e}"));
                    continue 'outer;
                }
            };
            ctx.trace.note(&ctx.name, format!("{subject} {outcome}"));
            if outcome == "timeout" {
                // The link may be dead: a fresh connection costs little here.
                c.close("request timeout");
                continue 'outer;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        c.close("done");
    }
    Ok(())
}

fn notes(o: &Outcome, client: &str, after: Duration) -> Vec<String> {
    o.events
        .iter()
        .filter(|e| e.client == client && e.at >= after)
        .filter_map(|e| match &e.kind {
            EventKind::Note(n) => Some(n.clone()),
            _ => None,
        })
        .collect()
}

fn run(seed: u64, fault_phase: Duration, kinds: FaultKinds) -> Result<Outcome, String> {
    let heal = fault_phase;
    let until = heal + Duration::from_secs(5);
    let o = Scenario::new("reqreply", seed)
        .server("n1", two_account_options())
        .client("resp", move |ctx: ClientCtx| async move {
            let opts = ctx.opts("n1").user("a2", PASSWORD);
            responder(
                ctx,
                opts,
                "svc.echo",
                Some("svc"),
                until + Duration::from_secs(1),
            )
            .await
            .map(drop)
        })
        .client("ra", move |ctx| requester(ctx, "a1", until))
        .client("rb", move |ctx| requester(ctx, "b1", until))
        .faults(FaultConfig::new(fault_phase, 4, kinds))
        .duration(until + Duration::from_secs(10))
        .run()?;
    let check = || -> Result<(), String> {
        checkers::no_cross_account(&o.events, |_| None)?;
        // Account B has no responder: it must never get an answer, only 503s (or timeouts).
        if let Some(n) = notes(&o, "rb", Duration::ZERO)
            .iter()
            .find(|n| n.ends_with(" ok"))
        {
            return Err(format!("rb (account B) got a reply from account A: {n}"));
        }
        // Once healed (and reconnected), every request gets the right outcome.
        let settle = if o.plan.actions.is_empty() {
            Duration::ZERO
        } else {
            heal + Duration::from_secs(2)
        };
        let ra = notes(&o, "ra", settle);
        let rb = notes(&o, "rb", settle);
        if ra.len() < 20 || rb.len() < 20 {
            return Err(format!(
                "too few requests after {settle:?}: ra {}, rb {}",
                ra.len(),
                rb.len()
            ));
        }
        for n in &ra {
            let want = if n.starts_with("svc.none") {
                "svc.none 503"
            } else {
                "svc.echo ok"
            };
            if n != want {
                return Err(format!("ra after {settle:?}: {n}, want {want}"));
            }
        }
        for n in &rb {
            if !n.ends_with(" 503") {
                return Err(format!("rb after {settle:?}: {n}, want 503"));
            }
        }
        Ok(())
    };
    check().map_err(|e| format!("{e}\nfault plan:\n{}", o.plan.describe()))?;
    Ok(o)
}

#[test]
fn request_reply_no_faults() {
    sweep(module_path!(), "request_reply_no_faults", 10, |seed| {
        run(seed, Duration::ZERO, FaultKinds::NONE).map(drop)
    });
}

#[test]
fn request_reply_faults() {
    sweep(module_path!(), "request_reply_faults", 30, |seed| {
        run(seed, Duration::from_secs(6), FaultKinds::ALL).map(drop)
    });
}
