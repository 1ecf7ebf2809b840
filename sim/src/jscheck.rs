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
        for (seq, payload) in &o.acked {
            match at.get(seq) {
                Some(p) if *p == payload.as_bytes() => {}
                Some(p) => {
                    return Err(format!(
                        "n{id}: acknowledged {payload} at seq {seq} holds {}",
                        String::from_utf8_lossy(p)
                    ))
                }
                None => return Err(format!("n{id}: lost acknowledged {payload} (seq {seq})")),
            }
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
