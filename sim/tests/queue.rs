//! Queue groups under faults, and a stalled subscriber that must not hold back the others.

use std::time::Duration;

use natsd_sim::checkers::{self, receipts};
use natsd_sim::client::ClientError;
use natsd_sim::faults::{FaultConfig, FaultKinds};
use natsd_sim::seeds::sweep;
use natsd_sim::trace::EventKind;
use natsd_sim::workloads::{
    publisher, subscriber, two_account_options, PublisherPlan, SubscriberPlan, OP_TIMEOUT, PASSWORD,
};
use natsd_sim::{ClientCtx, Outcome, Scenario};

fn queue_run(seed: u64, fault_phase: Duration, kinds: FaultKinds) -> Result<Outcome, String> {
    let heal = fault_phase;
    let pub_until = heal + Duration::from_secs(4);
    let sub_until = heal + Duration::from_secs(5);
    let member = move |user: &'static str| {
        move |ctx: ClientCtx| async move {
            let plan = SubscriberPlan {
                opts: ctx.opts("n1").user(user, PASSWORD),
                subs: vec![("jobs.*".to_owned(), Some("workers".to_owned()))],
                until: sub_until,
            };
            subscriber(ctx, plan).await.map(drop)
        }
    };
    let o = Scenario::new("queue", seed)
        .server("n1", two_account_options())
        .client("pa", move |ctx: ClientCtx| async move {
            let opts = ctx.opts("n1").user("a1", PASSWORD);
            let plan = PublisherPlan::new(
                opts,
                "A",
                &["jobs.1", "jobs.2"],
                Duration::from_millis(300),
                pub_until,
            );
            publisher(ctx, plan).await.map(drop)
        })
        .client("q1", member("a2"))
        .client("q2", member("a3"))
        .client("qb", member("b1"))
        .faults(FaultConfig::new(fault_phase, 4, kinds))
        .duration(sub_until + Duration::from_secs(10))
        .run()?;
    let ev = &o.events;
    let r = (|| {
        checkers::at_most_once_in_order(ev)?;
        checkers::no_cross_account(ev, |c| Some(if c == "qb" { "B" } else { "A" }.into()))?;
        let members = ["q1", "q2"];
        checkers::queue_exactly_once(
            ev,
            &members,
            |s| s.starts_with("jobs."),
            o.plan.actions.is_empty(),
        )?;
        let after = heal + Duration::from_secs(1);
        let recovered = receipts(ev)
            .iter()
            .any(|r| members.contains(&r.client) && r.at >= after + Duration::from_secs(1));
        if !recovered {
            return Err(format!("no queue member received anything after {after:?}"));
        }
        Ok(())
    })();
    r.map_err(|e: String| format!("{e}\nfault plan:\n{}", o.plan.describe()))?;
    Ok(o)
}

#[test]
fn queue_group_no_faults() {
    sweep(module_path!(), "queue_group_no_faults", 10, |seed| {
        queue_run(seed, Duration::ZERO, FaultKinds::NONE).map(drop)
    });
}

#[test]
fn queue_group_faults() {
    sweep(module_path!(), "queue_group_faults", 30, |seed| {
        queue_run(seed, Duration::from_secs(6), FaultKinds::ALL).map(drop)
    });
}

const BULK: u64 = 1500;

/// A subscriber that reads nothing while 1500 × ~600 B flow past (max_pending 64 KiB): it is
/// cut off as a slow consumer, and the fast subscriber still gets everything. The publisher is
/// held back (the stall) while the stopped subscriber's queue is past half of max_pending, so
/// what cuts it is the write deadline, well before the stopped subscriber reads again.
fn slow_consumer_run(seed: u64) -> Result<Outcome, String> {
    let opts = natsd::Options {
        max_pending: 64 * 1024,
        write_deadline: Duration::from_secs(2),
        ..two_account_options()
    };
    let o = Scenario::new("slow_consumer", seed)
        .server("n1", opts)
        // Few segments in flight, so a reader that stops really backs the server up.
        .tcp_capacity(64)
        .client("pa", |ctx: ClientCtx| async move {
            let mut plan = PublisherPlan::new(
                ctx.opts("n1").user("a1", PASSWORD),
                "A",
                &["bulk.a", "bulk.b"],
                Duration::from_millis(300),
                Duration::from_secs(20),
            );
            plan.interval = Duration::from_micros(500);
            plan.flush_every = 50;
            plan.pad = 600;
            plan.max_msgs = BULK;
            let n = publisher(ctx, plan).await?;
            if n != BULK {
                return Err(format!("publisher sent {n} of {BULK}"));
            }
            Ok(())
        })
        .client("fast", |ctx: ClientCtx| async move {
            let plan = SubscriberPlan {
                opts: ctx.opts("n1").user("a2", PASSWORD),
                subs: vec![("bulk.>".to_owned(), None)],
                until: Duration::from_secs(8),
            };
            subscriber(ctx, plan).await.map(drop)
        })
        .client("stalled", |ctx: ClientCtx| async move {
            let mut c = ctx
                .connect(&ctx.opts("n1").user("a3", PASSWORD), 1)
                .await
                .map_err(|e| e.to_string())?;
            c.subscribe("bulk.>", None, OP_TIMEOUT)
                .await
                .map_err(|e| e.to_string())?;
            c.flush(OP_TIMEOUT).await.map_err(|e| e.to_string())?;
            // Stall while the burst goes by.
            ctx.sleep_until(Duration::from_secs(6)).await;
            let mut got = 0u64;
            loop {
                match c.next_msg(Duration::from_secs(2)).await {
                    Ok(Some(_)) => got += 1,
                    // turmoil drops a FIN that finds the receive queue full, so the close may
                    // arrive as silence: a PING tells a live connection from a dead one.
                    Ok(None) => match c.flush(OP_TIMEOUT).await {
                        Ok(()) => {
                            return Err(format!(
                                "stalled subscriber was never cut off ({got} read)"
                            ))
                        }
                        Err(_) => break,
                    },
                    Err(ClientError::Closed | ClientError::Io(_)) => break,
                    Err(e) => return Err(format!("stalled subscriber: unexpected {e}")),
                }
            }
            ctx.trace
                .note(&ctx.name, format!("cut off after reading {got}"));
            c.close("cut off");
            if got >= BULK {
                return Err("stalled subscriber received everything: no backpressure".into());
            }
            Ok(())
        })
        .duration(Duration::from_secs(30))
        .run()?;
    checkers::at_most_once_in_order(&o.events)?;
    checkers::received_all(&o.events, "fast", |s| s.starts_with("bulk."))?;
    let cut = checkers::count(
        &o.events,
        "stalled",
        |k| matches!(k, EventKind::Note(n) if n.starts_with("cut off")),
    );
    if cut != 1 {
        return Err("stalled subscriber was not cut off".into());
    }
    Ok(o)
}

#[test]
fn slow_consumer_is_cut_off_others_unaffected() {
    sweep(
        module_path!(),
        "slow_consumer_is_cut_off_others_unaffected",
        10,
        |seed| slow_consumer_run(seed).map(drop),
    );
}
