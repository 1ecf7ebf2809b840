//! The rule that forms the meta group exactly once (see the `cluster` module docs), as a
//! pure function of what this server heard.

use std::collections::BTreeSet;

use natsd_raft::NodeId;

/// What one other server's last heartbeat said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Report {
    /// The servers it has heard from, itself included.
    pub(super) seen: BTreeSet<NodeId>,
    /// It is in a meta group.
    pub(super) in_group: bool,
}

/// The voters this server (`me`) initialises the meta group with, or `None` while the rule
/// does not let it: it is in a group already, its set of servers is still growing
/// (`settled` false) or has fewer than two, another server has the lowest id, some server
/// reports another set or a group.
pub(super) fn voters<'a>(
    me: NodeId,
    in_group: bool,
    settled: bool,
    others: impl IntoIterator<Item = (NodeId, &'a Report)>,
) -> Option<BTreeSet<NodeId>> {
    if in_group || !settled {
        return None;
    }
    let others: Vec<(NodeId, &Report)> = others.into_iter().collect();
    let mut set: BTreeSet<NodeId> = others.iter().map(|(id, _)| *id).collect();
    set.insert(me);
    if set.len() < 2 || set.first() != Some(&me) {
        return None;
    }
    let agreed = others.iter().all(|(_, r)| !r.in_group && r.seen == set);
    agreed.then_some(set)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(seen: &[NodeId], in_group: bool) -> Report {
        Report {
            seen: seen.iter().copied().collect(),
            in_group,
        }
    }

    #[test]
    fn the_lowest_id_initialises_once_everyone_agrees() {
        let (b, c) = (report(&[1, 2, 3], false), report(&[1, 2, 3], false));
        let got = voters(1, false, true, [(2, &b), (3, &c)]);
        assert_eq!(got, Some(BTreeSet::from([1, 2, 3])));
        // The others never do.
        let a = report(&[1, 2, 3], false);
        assert_eq!(voters(2, false, true, [(1, &a), (3, &c)]), None);
    }

    #[test]
    fn no_initialisation_while_unsettled_alone_in_a_group_or_disagreeing() {
        let b = report(&[1, 2], false);
        assert_eq!(voters(1, false, false, [(2, &b)]), None, "still growing");
        assert_eq!(voters(1, true, true, [(2, &b)]), None, "already in a group");
        assert_eq!(voters(1, false, true, []), None, "alone");
        let c = report(&[1, 2, 3], false);
        assert_eq!(voters(1, false, true, [(2, &b), (3, &c)]), None, "b lags");
    }

    #[test]
    fn a_server_reporting_a_group_stops_the_initialisation() {
        // 1 and 2 formed a group; 0 comes later with the lowest id and must wait to be
        // added rather than form a second group.
        let one = report(&[0, 1, 2], true);
        let two = report(&[0, 1, 2], true);
        assert_eq!(voters(0, false, true, [(1, &one), (2, &two)]), None);
    }

    /// Sets only grow, so two agreed sets that meet are nested, and the smaller one's
    /// initialiser reports a group by the time it reports the larger set: for every
    /// interleaving of three servers learning of each other, at most one initialises.
    #[test]
    fn growing_views_never_form_two_groups() {
        // Each step: server `who` hears of server `of`; after each step every server that
        // may initialise does so (and then reports being in a group).
        let servers = [1u64, 2, 3];
        let pairs: Vec<(u64, u64)> = servers
            .iter()
            .flat_map(|a| servers.iter().map(move |b| (*a, *b)))
            .filter(|(a, b)| a != b)
            .collect();
        // Every order of the six "hears of" events.
        let mut orders = vec![Vec::new()];
        for _ in 0..pairs.len() {
            let mut next = Vec::new();
            for o in &orders {
                for p in &pairs {
                    if !o.contains(p) {
                        let mut o2 = o.clone();
                        o2.push(*p);
                        next.push(o2);
                    }
                }
            }
            orders = next;
        }
        for order in orders {
            let mut seen: std::collections::BTreeMap<u64, BTreeSet<u64>> =
                servers.iter().map(|s| (*s, BTreeSet::from([*s]))).collect();
            // What each server last heard from each other: (seen, in_group).
            let mut heard: std::collections::BTreeMap<(u64, u64), Report> = Default::default();
            let mut grouped: BTreeSet<u64> = BTreeSet::new();
            let mut initialisers = 0;
            for (who, of) in &order {
                seen.get_mut(who).unwrap().insert(*of);
                // `who` gets `of`'s current heartbeat.
                heard.insert(
                    (*who, *of),
                    Report {
                        seen: seen[of].clone(),
                        in_group: grouped.contains(of),
                    },
                );
                // Heartbeats keep flowing between servers that know each other.
                let keys: Vec<(u64, u64)> = heard.keys().copied().collect();
                for (w, o) in keys {
                    heard.insert(
                        (w, o),
                        Report {
                            seen: seen[&o].clone(),
                            in_group: grouped.contains(&o),
                        },
                    );
                }
                for s in servers {
                    let others: Vec<(u64, &Report)> = heard
                        .iter()
                        .filter(|((w, _), _)| *w == s)
                        .map(|((_, o), r)| (*o, r))
                        .collect();
                    if let Some(v) = voters(s, grouped.contains(&s), true, others) {
                        assert!(v.contains(&s));
                        initialisers += 1;
                        // Only the initialiser knows at once; the others learn it from the
                        // group's first entries.
                        grouped.insert(s);
                    }
                }
            }
            // Once everyone knows everyone, exactly one group was formed.
            assert_eq!(initialisers, 1, "{order:?}");
        }
    }
}
