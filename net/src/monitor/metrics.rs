//! `/metrics`: Prometheus text exposition (OpenMetrics) of the `/varz` counters, plus
//! per-account series. natsd serves these natively; nats-server needs an exporter sidecar.

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::server::Shared;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AccountLabel {
    account: String,
}

fn gauge(reg: &mut Registry, name: &str, help: &str, v: u64) {
    let g: Gauge = Gauge::default();
    g.set(i64::try_from(v).unwrap_or(i64::MAX));
    reg.register(name, help, g);
}

fn counter(reg: &mut Registry, name: &str, help: &str, v: u64) {
    let c: Counter = Counter::default();
    c.inc_by(v);
    reg.register(name, help, c);
}

/// Renders the current figures. A fresh registry per scrape: the values already live in the
/// server's atomics, and accounts come and go with reloads.
pub(crate) fn render(srv: &Shared) -> String {
    let v = srv.varz();
    let mut reg = Registry::with_prefix("natsd");
    gauge(
        &mut reg,
        "connections",
        "Open client connections",
        v.connections,
    );
    counter(
        &mut reg,
        "connections_accepted",
        "Client connections accepted since start",
        v.total_connections,
    );
    counter(
        &mut reg,
        "in_msgs",
        "Messages received from clients",
        v.in_msgs,
    );
    counter(
        &mut reg,
        "out_msgs",
        "Messages delivered to clients",
        v.out_msgs,
    );
    counter(
        &mut reg,
        "in_bytes",
        "Payload bytes received from clients",
        v.in_bytes,
    );
    counter(
        &mut reg,
        "out_bytes",
        "Payload bytes delivered to clients",
        v.out_bytes,
    );
    counter(
        &mut reg,
        "slow_consumers",
        "Connections closed as slow consumers",
        v.slow_consumers,
    );
    gauge(
        &mut reg,
        "subscriptions",
        "Subscriptions in all accounts",
        v.subscriptions,
    );
    gauge(&mut reg, "mem_bytes", "Resident memory", v.mem);

    let conns = Family::<AccountLabel, Gauge>::default();
    let subs = Family::<AccountLabel, Gauge>::default();
    let in_msgs = Family::<AccountLabel, Counter>::default();
    let in_bytes = Family::<AccountLabel, Counter>::default();
    let out_msgs = Family::<AccountLabel, Counter>::default();
    let out_bytes = Family::<AccountLabel, Counter>::default();
    let slow = Family::<AccountLabel, Counter>::default();
    for acc in srv.accounts_snapshot() {
        let st = srv.account_stat(&acc);
        let l = AccountLabel {
            account: acc.name.clone(),
        };
        conns
            .get_or_create(&l)
            .set(i64::try_from(st.conns).unwrap_or(i64::MAX));
        subs.get_or_create(&l).set(i64::from(acc.sublist.count()));
        in_msgs.get_or_create(&l).inc_by(st.received.msgs);
        in_bytes.get_or_create(&l).inc_by(st.received.bytes);
        out_msgs.get_or_create(&l).inc_by(st.sent.msgs);
        out_bytes.get_or_create(&l).inc_by(st.sent.bytes);
        slow.get_or_create(&l).inc_by(st.slow_consumers);
    }
    reg.register("account_connections", "Open connections per account", conns);
    reg.register("account_subscriptions", "Subscriptions per account", subs);
    reg.register(
        "account_in_msgs",
        "Messages published into the account",
        in_msgs,
    );
    reg.register(
        "account_in_bytes",
        "Bytes published into the account",
        in_bytes,
    );
    reg.register(
        "account_out_msgs",
        "Messages delivered to the account's clients",
        out_msgs,
    );
    reg.register(
        "account_out_bytes",
        "Bytes delivered to the account's clients",
        out_bytes,
    );
    reg.register("account_slow_consumers", "Slow consumers per account", slow);

    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = encode(&mut out, &reg);
    out
}
