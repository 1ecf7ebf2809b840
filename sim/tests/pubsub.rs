//! Publish/subscribe across two accounts and a restricted user, with network faults and
//! server crashes, then a fault-free phase that must converge.

use std::time::Duration;

use natsd_sim::checkers;
use natsd_sim::faults::{FaultConfig, FaultKinds};
use natsd_sim::seeds::sweep;
use natsd_sim::workloads::{
    publisher, subscriber, two_account_options, PublisherPlan, SubscriberPlan, PASSWORD,
};
use natsd_sim::{ClientCtx, Outcome, Scenario};

const SUBJECTS: [&str; 3] = ["orders.x", "orders.y", "orders.secret"];

fn account_of(client: &str) -> Option<String> {
    match client {
        "pa" | "sa" | "sl" => Some("A".into()),
        "pb" | "sb" => Some("B".into()),
        _ => None,
    }
}

/// Builds and runs the pub/sub scenario; `fault_phase` zero means no faults.
pub fn run(seed: u64, fault_phase: Duration, kinds: FaultKinds) -> Result<Outcome, String> {
    let heal = fault_phase;
    let pub_until = heal + Duration::from_secs(4);
    let sub_until = heal + Duration::from_secs(5);
    let pubr = move |user: &'static str, acct: &'static str| {
        move |ctx: ClientCtx| async move {
            let plan = PublisherPlan::new(
                ctx.opts("n1").user(user, PASSWORD),
                acct,
                &SUBJECTS,
                Duration::from_millis(300),
                pub_until,
            );
            publisher(ctx, plan).await.map(drop)
        }
    };
    let subr = move |user: &'static str, subs: &'static [&'static str]| {
        move |ctx: ClientCtx| async move {
            let plan = SubscriberPlan {
                opts: ctx.opts("n1").user(user, PASSWORD),
                subs: subs.iter().map(|s| ((*s).to_owned(), None)).collect(),
                until: sub_until,
            };
            subscriber(ctx, plan).await.map(drop)
        }
    };
    let outcome = Scenario::new("pubsub", seed)
        .server("n1", two_account_options())
        .client("pa", pubr("a1", "A"))
        .client("pb", pubr("b1", "B"))
        .client("sa", subr("a2", &["orders.>"]))
        .client("sb", subr("b2", &["orders.*"]))
        .client(
            "sl",
            subr("limited", &["orders.>", "orders.*", "orders.secret"]),
        )
        .faults(FaultConfig::new(fault_phase, 4, kinds))
        .duration(sub_until + Duration::from_secs(10))
        .run()?;
    check(&outcome, heal)?;
    Ok(outcome)
}

fn check(o: &Outcome, heal: Duration) -> Result<(), String> {
    let ev = &o.events;
    let with_plan =
        |r: Result<(), String>| r.map_err(|e| format!("{e}\nfault plan:\n{}", o.plan.describe()));
    with_plan(checkers::at_most_once_in_order(ev))?;
    with_plan(checkers::no_cross_account(ev, account_of))?;
    with_plan(checkers::never_received(ev, "sl", |s| s == "orders.secret"))?;
    let after = heal + Duration::from_secs(1);
    with_plan(checkers::converged(ev, &["sa", "sl"], &["pa"], after))?;
    with_plan(checkers::converged(ev, &["sb"], &["pb"], after))?;
    if o.plan.actions.is_empty() {
        // Nothing went wrong, so nothing may be missing.
        with_plan(received_all_from(ev, "sa", "pa", |_| true))?;
        with_plan(received_all_from(ev, "sb", "pb", |_| true))?;
        with_plan(received_all_from(ev, "sl", "pa", |s| s != "orders.secret"))?;
    }
    Ok(())
}

fn received_all_from(
    ev: &[natsd_sim::trace::Event],
    client: &str,
    publisher: &str,
    wanted: impl Fn(&str) -> bool,
) -> Result<(), String> {
    let mine: Vec<_> = ev
        .iter()
        .filter(|e| e.client == client || e.client == publisher)
        .cloned()
        .collect();
    checkers::received_all(&mine, client, wanted)
}

#[test]
fn pubsub_no_faults() {
    sweep(module_path!(), "pubsub_no_faults", 10, |seed| {
        run(seed, Duration::ZERO, FaultKinds::NONE).map(drop)
    });
}

#[test]
fn pubsub_network_faults() {
    sweep(module_path!(), "pubsub_network_faults", 30, |seed| {
        run(seed, Duration::from_secs(6), FaultKinds::NETWORK).map(drop)
    });
}

#[test]
fn pubsub_all_faults() {
    sweep(module_path!(), "pubsub_all_faults", 30, |seed| {
        run(seed, Duration::from_secs(6), FaultKinds::ALL).map(drop)
    });
}

/// Env var set on the child process of [`determinism_across_processes`].
const CHILD_VAR: &str = "NATS_SIM_DETERMINISM_CHILD";
const HASH_PREFIX: &str = "NATS_SIM_TRACE_HASH=";

#[test]
fn determinism_same_process() {
    sweep(module_path!(), "determinism_same_process", 5, |seed| {
        let a = run(seed, Duration::from_secs(6), FaultKinds::ALL)?;
        let b = run(seed, Duration::from_secs(6), FaultKinds::ALL)?;
        if a.events != b.events {
            let i = a
                .events
                .iter()
                .zip(&b.events)
                .position(|(x, y)| x != y)
                .unwrap_or(a.events.len().min(b.events.len()));
            if std::env::var_os("NATS_SIM_VERBOSE").is_some() {
                for j in i.saturating_sub(15)..(i + 5).min(a.events.len()).min(b.events.len()) {
                    eprintln!("{j}: {:?}\n    {:?}", a.events[j], b.events[j]);
                }
            }
            return Err(format!(
                "same seed, different traces: first difference at event {i}: {:?} vs {:?}",
                a.events.get(i),
                b.events.get(i)
            ));
        }
        assert_eq!(a.hash, b.hash);
        assert!(a.events.len() > 100, "trace too small to prove anything");
        Ok(())
    });
}

/// Runs one seed and prints its trace hash; the parent test runs this in fresh processes.
#[test]
fn determinism_child() {
    sweep(module_path!(), "determinism_child", 1, |seed| {
        let o = run(seed, Duration::from_secs(6), FaultKinds::ALL)?;
        if std::env::var_os(CHILD_VAR).is_some() {
            println!("{HASH_PREFIX}{:016x}", o.hash);
        }
        Ok(())
    });
}

fn child_hash(seed: u64) -> Result<String, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let out = std::process::Command::new(exe)
        .args([
            "determinism_child",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("NATS_SIM_SEED", seed.to_string())
        .env_remove("NATS_SIM_SEEDS")
        .env(CHILD_VAR, "1")
        .output()
        .map_err(|e| e.to_string())?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(format!(
            "child failed: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    stdout
        .lines()
        .find_map(|l| l.split_once(HASH_PREFIX))
        // libtest prints "test name ... " before the test's own output on the same line.
        .map(|(_, h)| h.trim().to_owned())
        .ok_or_else(|| format!("child printed no hash: {stdout}"))
}

#[test]
fn determinism_across_processes() {
    if std::env::var_os(CHILD_VAR).is_some() {
        return; // never recurse
    }
    sweep(module_path!(), "determinism_across_processes", 2, |seed| {
        let here = format!(
            "{:016x}",
            run(seed, Duration::from_secs(6), FaultKinds::ALL)?.hash
        );
        let first = child_hash(seed)?;
        let second = child_hash(seed)?;
        if first != second || first != here {
            return Err(format!(
                "trace hash differs across processes: {first} vs {second} (in process: {here})"
            ));
        }
        Ok(())
    });
}
