//! Connection churn: storms of short-lived clients, and good and bad credentials interleaved.

use std::time::Duration;

use natsd_sim::checkers::{self, MsgId};
use natsd_sim::client::{Client, ClientError};
use natsd_sim::faults::{FaultConfig, FaultKinds};
use natsd_sim::seeds::sweep;
use natsd_sim::trace::EventKind;
use natsd_sim::workloads::{account_of_user, two_account_options, OP_TIMEOUT, PASSWORD};
use natsd_sim::{ClientCtx, Outcome, Scenario};

const SESSIONS: u64 = 6;
const CYCLES: u64 = 4;

/// One session: connect, subscribe to its own subject and the shared one, publish to both,
/// see its own message come back, leave. Returns false when the network got in the way.
async fn cycle(
    ctx: &ClientCtx,
    label: &str,
    user: &str,
    epoch: u32,
    seq: u64,
) -> Result<bool, ClientError> {
    let mut opts = ctx.opts("n1").user(user, PASSWORD);
    opts.name = label.to_owned();
    let mut c = Client::connect(&ctx.trace, &opts, epoch, Duration::from_secs(2)).await?;
    let own = format!("storm.{label}");
    c.subscribe(&own, None, OP_TIMEOUT).await?;
    c.subscribe("storm.all", None, OP_TIMEOUT).await?;
    let id = MsgId::new(account_of_user(user), label, epoch, seq).to_string();
    c.publish(&own, id.as_bytes(), OP_TIMEOUT).await?;
    c.publish("storm.all", id.as_bytes(), OP_TIMEOUT).await?;
    let mut seen = 0;
    while seen < 2 {
        match c.next_msg(OP_TIMEOUT).await? {
            Some(m) if m.payload.as_ref() == id.as_bytes() => seen += 1,
            Some(_) => {}
            None => {
                c.close("no echo");
                return Ok(false);
            }
        }
    }
    c.close("cycle done");
    Ok(true)
}

/// A host running `SESSIONS` concurrent sessions of `CYCLES` cycles, alternating accounts.
async fn storm_host(ctx: ClientCtx) -> Result<(), String> {
    let mut set = tokio::task::JoinSet::new();
    for i in 0..SESSIONS {
        let mut ctx = ctx.clone();
        ctx.rng = ctx.rng.fork();
        set.spawn_local(async move {
            let user = if i % 2 == 0 { "a1" } else { "b1" };
            let label = format!("{}-{i}", ctx.name);
            for k in 0..CYCLES {
                let jitter = Duration::from_millis(ctx.rng.below(300));
                tokio::time::sleep(jitter).await;
                let ok = matches!(
                    cycle(&ctx, &label, user, k as u32 + 1, k + 1).await,
                    Ok(true)
                );
                ctx.trace
                    .note(&label, if ok { "cycle ok" } else { "cycle failed" });
            }
        });
    }
    while set.join_next().await.is_some() {}
    Ok(())
}

fn storm_run(seed: u64, fault_phase: Duration, kinds: FaultKinds) -> Result<Outcome, String> {
    let o = Scenario::new("storm", seed)
        .server("n1", two_account_options())
        .client("h1", storm_host)
        .client("h2", storm_host)
        .client("h3", storm_host)
        .faults(FaultConfig::new(fault_phase, 3, kinds))
        .duration(Duration::from_secs(60))
        .run()?;
    let ev = &o.events;
    let check = || -> Result<(), String> {
        checkers::at_most_once_in_order(ev)?;
        checkers::no_cross_account(ev, |c| {
            let i: u64 = c.rsplit('-').next()?.parse().ok()?;
            Some(if i % 2 == 0 { "A" } else { "B" }.to_owned())
        })?;
        let failed = ev
            .iter()
            .filter(|e| e.kind == EventKind::Note("cycle failed".into()))
            .count();
        let ok = ev
            .iter()
            .filter(|e| e.kind == EventKind::Note("cycle ok".into()))
            .count();
        if ok + failed != (3 * SESSIONS * CYCLES) as usize {
            return Err(format!(
                "{ok} ok + {failed} failed cycles, want {}",
                3 * SESSIONS * CYCLES
            ));
        }
        if o.plan.actions.is_empty() && failed > 0 {
            return Err(format!("{failed} cycles failed without any fault"));
        }
        Ok(())
    };
    check().map_err(|e| format!("{e}\nfault plan:\n{}", o.plan.describe()))?;
    Ok(o)
}

#[test]
fn connect_storm_no_faults() {
    sweep(module_path!(), "connect_storm_no_faults", 20, |seed| {
        storm_run(seed, Duration::ZERO, FaultKinds::NONE).map(drop)
    });
}

#[test]
fn connect_storm_faults() {
    sweep(module_path!(), "connect_storm_faults", 40, |seed| {
        storm_run(seed, Duration::from_secs(2), FaultKinds::ALL).map(drop)
    });
}

/// Interleaves good and bad credentials (drawn from the client's rng). A bad one must be
/// rejected with "Authorization Violation" (or be lost to a fault), never accepted; a good
/// one must never be rejected, and its traffic stays in its account.
async fn churner(mut ctx: ClientCtx, until: Duration) -> Result<(), String> {
    let users = ["a1", "a2", "b1", "b2", "limited"];
    let mut epoch = 0;
    while ctx.now() < until {
        epoch += 1;
        let user = users[ctx.rng.below(users.len() as u64) as usize];
        let bad = ctx.rng.below(2) == 0;
        let (u, p) = match (bad, ctx.rng.below(2)) {
            (false, _) => (user, PASSWORD.to_owned()),
            (true, 0) => (user, format!("{PASSWORD}-wrong")),
            (true, _) => ("nobody", PASSWORD.to_owned()),
        };
        let opts = ctx.opts("n1").user(u, &p);
        match (bad, ctx.connect(&opts, epoch).await) {
            (true, Ok(_)) => return Err(format!("{u}/{p} was accepted")),
            (true, Err(ClientError::Rejected(e))) => {
                if !e.contains("Authorization Violation") {
                    return Err(format!("bad credentials rejected with {e:?}"));
                }
                ctx.trace.note(&ctx.name, "bad rejected");
            }
            (false, Err(ClientError::Rejected(e))) => return Err(format!("{u} rejected: {e}")),
            (false, Ok(mut c)) => {
                let subject = format!("churn.{}", ctx.name);
                let id =
                    MsgId::new(account_of_user(u), &ctx.name, epoch, u64::from(epoch)).to_string();
                let echoed = async {
                    c.subscribe(&subject, None, OP_TIMEOUT).await?;
                    c.publish(&subject, id.as_bytes(), OP_TIMEOUT).await?;
                    c.next_msg(OP_TIMEOUT).await
                }
                .await;
                let ok = matches!(&echoed, Ok(Some(m)) if m.payload.as_ref() == id.as_bytes());
                ctx.trace
                    .note(&ctx.name, if ok { "good ok" } else { "good lost" });
                c.close("churn");
            }
            (_, Err(_)) => ctx.trace.note(&ctx.name, "lost to fault"),
        }
        tokio::time::sleep(Duration::from_millis(20 + ctx.rng.below(80))).await;
    }
    Ok(())
}

fn auth_run(seed: u64, fault_phase: Duration, kinds: FaultKinds) -> Result<Outcome, String> {
    let until = fault_phase + Duration::from_secs(4);
    let o = Scenario::new("auth_churn", seed)
        .server("n1", two_account_options())
        .client("u1", move |ctx| churner(ctx, until))
        .client("u2", move |ctx| churner(ctx, until))
        .client("u3", move |ctx| churner(ctx, until))
        .faults(FaultConfig::new(fault_phase, 3, kinds))
        .duration(until + Duration::from_secs(20))
        .run()?;
    let ev = &o.events;
    checkers::at_most_once_in_order(ev)?;
    let count = |n: &str| {
        ev.iter()
            .filter(|e| e.kind == EventKind::Note(n.into()))
            .count()
    };
    if count("bad rejected") < 5 || count("good ok") < 5 {
        return Err(format!(
            "too little churn: {} rejected, {} good",
            count("bad rejected"),
            count("good ok")
        ));
    }
    if o.plan.actions.is_empty() && (count("good lost") + count("lost to fault")) > 0 {
        return Err("connections lost without any fault".into());
    }
    Ok(o)
}

#[test]
fn auth_churn_no_faults() {
    sweep(module_path!(), "auth_churn_no_faults", 20, |seed| {
        auth_run(seed, Duration::ZERO, FaultKinds::NONE).map(drop)
    });
}

#[test]
fn auth_churn_faults() {
    sweep(module_path!(), "auth_churn_faults", 40, |seed| {
        auth_run(seed, Duration::from_secs(3), FaultKinds::ALL).map(drop)
    });
}
