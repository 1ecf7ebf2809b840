//! The checkers of the clustered JetStream simulation, on what a run left behind.

use std::collections::BTreeMap;

use crate::jscluster::Outcome;

/// The checkers: no acknowledged publish lost on any replica, replicas identical after the
/// heal (no divergence, no lost middle), no stream vanished (nor any stream assignment), no
/// safety violation seen while running.
pub fn check(o: &Outcome) -> Result<(), String> {
    if let Some(v) = o.violations.first() {
        return Err(v.clone());
    }
    if o.acked.is_empty() {
        return Err("nothing was acknowledged".into());
    }
    for (id, msgs) in &o.stored {
        if msgs.is_empty() {
            return Err(format!("n{id}: the stream is empty"));
        }
        let at: BTreeMap<u64, &[u8]> = msgs.iter().map(|(s, _, p)| (*s, p.as_slice())).collect();
        let mut lost = Vec::new();
        for (seq, payload) in &o.acked {
            match at.get(seq) {
                Some(p) if *p == payload.as_bytes() => {}
                Some(p) => {
                    return Err(format!(
                        "n{id}: acknowledged {payload} at seq {seq} holds {}",
                        String::from_utf8_lossy(p)
                    ))
                }
                None => lost.push(*seq),
            }
        }
        if !lost.is_empty() {
            // Jepsen's split: lost before anything the replica holds, among it, after it.
            let first = at.keys().next().copied().unwrap_or(0);
            let last = at.keys().next_back().copied().unwrap_or(0);
            let prefix = lost.iter().filter(|s| **s < first).count();
            let postfix = lost.iter().filter(|s| **s > last).count();
            let middle = lost.len() - prefix - postfix;
            return Err(format!(
                "n{id}: lost {} acknowledged publishes (prefix {prefix}, middle {middle}, \
                 postfix {postfix}), first at seq {}",
                lost.len(),
                lost[0]
            ));
        }
    }
    let mut all = o.stored.iter();
    if let Some((first, reference)) = all.next() {
        for (id, msgs) in all {
            if msgs != reference {
                let diff = msgs
                    .iter()
                    .zip(reference)
                    .find(|(a, b)| a != b)
                    .map(|(a, b)| format!("n{id} {a:?} vs n{first} {b:?}"))
                    .unwrap_or_else(|| format!("{} vs {} messages", msgs.len(), reference.len()));
                return Err(format!("replicas differ after the heal: {diff}"));
            }
        }
    }
    for (id, names) in &o.assigned {
        for want in &o.assigned_acked {
            if !names.contains(want) {
                return Err(format!("n{id}: stream assignment {want} dropped"));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    type Msgs = Vec<(u64, String, Vec<u8>)>;

    fn msgs(seqs: &[u64]) -> Msgs {
        seqs.iter()
            .map(|s| (*s, "s.jepsen".to_owned(), format!("p-{s}").into_bytes()))
            .collect()
    }

    fn outcome(stored: Vec<Msgs>) -> Outcome {
        Outcome {
            hash: 0,
            acked: (1..=4).map(|s| (s, format!("p-{s}"))).collect(),
            stored: stored.into_iter().zip(1..).map(|(m, id)| (id, m)).collect(),
            assigned: BTreeMap::new(),
            assigned_acked: Vec::new(),
            violations: Vec::new(),
            troubles: BTreeMap::new(),
            repairs: BTreeMap::new(),
            raft_damaged: BTreeSet::new(),
            changes: Vec::new(),
            plan: Vec::new(),
        }
    }

    #[test]
    fn identical_replicas_holding_every_ack_pass() {
        let all = msgs(&[1, 2, 3, 4, 5]);
        assert_eq!(check(&outcome(vec![all.clone(), all])), Ok(()));
    }

    #[test]
    fn a_lost_middle_is_named() {
        let e = check(&outcome(vec![msgs(&[1, 2, 3, 4]), msgs(&[1, 3, 4])])).unwrap_err();
        assert!(e.contains("n2: lost 1") && e.contains("middle 1"), "{e}");
    }

    #[test]
    fn a_replica_with_an_extra_message_differs() {
        let e = check(&outcome(vec![msgs(&[1, 2, 3, 4]), msgs(&[1, 2, 3, 4, 5])])).unwrap_err();
        assert!(e.contains("replicas differ"), "{e}");
    }

    #[test]
    fn a_dropped_assignment_is_named() {
        let mut o = outcome(vec![msgs(&[1, 2, 3, 4])]);
        o.assigned_acked = vec!["S".into()];
        o.assigned.insert(1, Vec::new());
        assert!(check(&o).unwrap_err().contains("assignment S dropped"));
    }
}
