//! Stream config checks that need nothing but the config (Go: server/stream.go
//! checkStreamCfg and the update rules of configUpdateCheck). Checks against the other
//! streams of the account (origins, cycles, overlaps) live in the service.

use std::time::Duration;

use super::super::api::{err, ApiError, StreamConfig, StreamSource};
use super::super::sourcing::durable::{self, check_consumer_source};
use super::super::sourcing::external::{check_prefixes, cname, iname_base};
use super::super::store::{Discard, StoreConfig};
use super::super::transform::Transform;
use crate::subject;

/// Go: `JSMaxDescriptionLen`.
const MAX_DESCRIPTION: usize = 4 * 1024;
/// Go: `JSMaxMetadataLen`.
const MAX_METADATA: usize = 128 * 1024;
/// nats-server's default duplicate window.
const DEFAULT_DUP_WINDOW: u64 = 120_000_000_000;

/// A stream name is a single token without wildcards or path separators (Go: isValidName
/// plus the path-separator check).
pub fn validate_name(name: &str, path_err: fn() -> ApiError) -> Result<(), ApiError> {
    if name.is_empty() {
        return Err(err::stream_invalid_config("stream name is required"));
    }
    if name.contains(['/', '\\']) {
        return Err(path_err());
    }
    if !is_valid_asset_name(name) {
        return Err(ApiError::new(
            400,
            10003,
            "invalid stream name - stream name cannot contain ' ', '.', '*', '>'",
        ));
    }
    Ok(())
}

/// Go: isValidName for streams named in mirrors and sources.
fn is_valid_asset_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && !name.chars().any(|c| {
            matches!(c, '.' | '*' | '>' | '/' | '\\') || c.is_whitespace() || c.is_control()
        })
}

/// Checks a transform list of a mirror or source: valid filters and destinations, no two
/// filters overlapping.
fn check_transforms(
    s: &StreamSource,
    bad_src: fn(&str) -> ApiError,
    bad_dest: fn(&str) -> ApiError,
    overlap: fn() -> ApiError,
) -> Result<(), ApiError> {
    for (i, t) in s.subject_transforms.iter().enumerate() {
        if !t.src.is_empty() && !subject::is_valid_subject(t.src.as_bytes()) {
            return Err(bad_src(&format!("invalid subject {}", t.src)));
        }
        Transform::new(&t.src, &t.dest).map_err(|e| bad_dest(&e))?;
        let a = if t.src.is_empty() { ">" } else { &t.src };
        for (j, o) in s.subject_transforms.iter().enumerate() {
            let b = if o.src.is_empty() { ">" } else { &o.src };
            if i != j && subject::overlaps(a.as_bytes(), b.as_bytes()) {
                return Err(overlap());
            }
        }
    }
    Ok(())
}

/// The identity of a source within its stream (Go: composeIName): the origin, the filters
/// and the destinations. Also the first fields of the `Nats-Stream-Source` header.
pub fn source_iname(s: &StreamSource) -> String {
    if s.subject_transforms.is_empty() {
        let f = if s.filter_subject.is_empty() {
            ">"
        } else {
            &s.filter_subject
        };
        return format!("{} {f} >", iname_base(s));
    }
    let or_fwc = |x: &str| {
        if x.is_empty() {
            ">".to_owned()
        } else {
            x.to_owned()
        }
    };
    let srcs: Vec<String> = s
        .subject_transforms
        .iter()
        .map(|t| or_fwc(&t.src))
        .collect();
    let dests: Vec<String> = s
        .subject_transforms
        .iter()
        .map(|t| or_fwc(&t.dest))
        .collect();
    format!(
        "{} {} {}",
        iname_base(s),
        srcs.join("\x0c"),
        dests.join("\x0c")
    )
}

fn check_mirror(c: &StreamConfig, m: &StreamSource) -> Result<(), ApiError> {
    if c.first_seq > 0 {
        return Err(err::mirror_with_first_seq());
    }
    if !c.subjects.is_empty() {
        return Err(err::mirror_with_subjects());
    }
    if !c.sources.is_empty() {
        return Err(err::mirror_with_sources());
    }
    check_consumer_source(m, is_valid_asset_name, durable::mirror_consumer_cfg_invalid)?;
    if !m.filter_subject.is_empty() && !m.subject_transforms.is_empty() {
        return Err(err::mirror_multiple_filters());
    }
    if c.subject_delete_marker_ttl > 0 {
        return Err(err::stream_invalid_config(
            "subject delete markers forbidden on mirrors",
        ));
    }
    if m.opt_start_seq > 0 && m.opt_start_time.is_some() {
        return Err(err::mirror_with_start_seq_and_time());
    }
    check_transforms(
        m,
        err::mirror_invalid_subject_filter,
        err::mirror_invalid_transform_dest,
        err::mirror_overlapping_filters,
    )?;
    if m.external.is_none() && !is_valid_asset_name(&m.name) {
        return Err(err::mirror_invalid_stream_name());
    }
    Ok(())
}

fn check_sources(c: &StreamConfig) -> Result<(), ApiError> {
    let mut seen = Vec::new();
    let mut consumers = Vec::new();
    for s in &c.sources {
        if !is_valid_asset_name(&s.name) {
            return Err(err::source_invalid_stream_name());
        }
        let iname = source_iname(s);
        if seen.contains(&iname) {
            return Err(err::source_duplicate());
        }
        seen.push(iname);
        if !s.filter_subject.is_empty() && !s.subject_transforms.is_empty() {
            return Err(err::source_multiple_filters());
        }
        check_transforms(
            s,
            err::source_invalid_subject_filter,
            err::source_invalid_transform_dest,
            err::source_overlapping_filters,
        )?;
        check_consumer_source(s, is_valid_asset_name, durable::source_consumer_cfg_invalid)?;
        // Go: one consumer serves one source of the stream.
        if s.consumer.is_some() {
            let cn = cname(s);
            if consumers.contains(&cn) {
                return Err(durable::source_consumer_duplicate());
            }
            consumers.push(cn);
        }
    }
    Ok(())
}

fn check_subjects(c: &StreamConfig) -> Result<(), ApiError> {
    let bad = |t: &str| Err(err::stream_invalid_config(t));
    for (i, s) in c.subjects.iter().enumerate() {
        if !subject::is_valid_subject(s.as_bytes()) {
            return bad(&format!("invalid subject {s:?}"));
        }
        if subject::overlaps(s.as_bytes(), b"$JS.API.>") {
            return bad("subjects that overlap with jetstream api require no-ack to be true");
        }
        if c.subjects[..i].iter().any(|o| o == s) {
            return bad("duplicate subjects detected");
        }
    }
    Ok(())
}

fn check_transform_and_republish(c: &mut StreamConfig) -> Result<(), ApiError> {
    if let Some(t) = &c.subject_transform {
        if !t.src.is_empty() && !subject::is_valid_subject(t.src.as_bytes()) {
            return Err(err::stream_transform_invalid_source(&format!(
                "invalid subject {}",
                t.src
            )));
        }
        Transform::new(&t.src, &t.dest).map_err(|e| err::stream_transform_invalid_dest(&e))?;
    }
    let transform = c.subject_transform.clone();
    let subjects = c.subjects.clone();
    if let Some(rp) = &mut c.republish {
        if rp.src.is_empty() {
            rp.src = ">".to_owned();
        }
        // `>` to `>` on a stream whose only subject is transformed republishes the
        // transformed subjects (Go: the implicit republish).
        if let Some(t) = &transform {
            if rp.src == ">" && rp.dest == ">" && subjects.len() == 1 && t.src == subjects[0] {
                rp.src.clone_from(&t.dest);
                rp.dest.clone_from(&t.dest);
            }
        }
        if subjects
            .iter()
            .any(|s| subject::overlaps(rp.dest.as_bytes(), s.as_bytes()))
        {
            return Err(err::stream_invalid_config(
                "stream configuration for republish destination forms a cycle",
            ));
        }
        if rp.dest.is_empty() || Transform::new(&rp.src, &rp.dest).is_err() {
            return Err(err::stream_invalid_config(&format!(
                "stream configuration for republish with transform from '{}' to '{}' not valid",
                rp.src, rp.dest
            )));
        }
    }
    Ok(())
}

/// Checks and normalises a config (Go: checkStreamCfg). Returns the config to store.
pub fn check_config(mut c: StreamConfig) -> Result<StreamConfig, ApiError> {
    validate_name(&c.name, err::stream_name_path_separators)?;
    let bad = |t: &str| Err(err::stream_invalid_config(t));
    if c.description
        .as_ref()
        .is_some_and(|d| d.len() > MAX_DESCRIPTION)
    {
        return bad(&format!(
            "stream description is too long, maximum allowed is {MAX_DESCRIPTION}"
        ));
    }
    if c.metadata
        .iter()
        .map(|(k, v)| k.len() + v.len())
        .sum::<usize>()
        > MAX_METADATA
    {
        return bad(&format!(
            "stream metadata exceeds maximum size of {MAX_METADATA} bytes"
        ));
    }
    match c.compression.as_str() {
        "" => c.compression = "none".to_owned(),
        "none" | "s2" => {}
        _ => return bad("invalid compression"),
    }
    if c.num_replicas == 0 {
        c.num_replicas = 1;
    }
    if c.num_replicas > 1 {
        return Err(err::replicas_not_supported());
    }
    if c.num_replicas < 0 {
        return Err(ApiError::new(
            400,
            10133,
            "replicas count cannot be negative",
        ));
    }
    match c.storage.as_str() {
        "file" | "memory" => {}
        _ => return bad("invalid storage type"),
    }
    match c.retention.as_str() {
        "limits" | "interest" | "workqueue" => {}
        _ => return bad("invalid retention policy"),
    }
    match c.discard.as_str() {
        "old" | "new" => {}
        _ => return bad("invalid discard policy"),
    }
    for v in [
        &mut c.max_msgs,
        &mut c.max_bytes,
        &mut c.max_msgs_per_subject,
        &mut c.max_msg_size,
        &mut c.max_consumers,
    ] {
        if *v == 0 {
            *v = -1;
        }
        if *v < -1 {
            return bad("negative limits are not allowed");
        }
    }
    if c.max_age < 0 {
        return bad("max age needs to be >= 0");
    }
    let sourcing = c.mirror.is_some() || !c.sources.is_empty();
    if c.duplicate_window == super::super::signed::NEGATIVE {
        return bad("duplicates window can not be negative");
    }
    if c.duplicate_window == 0 && !sourcing {
        c.duplicate_window = DEFAULT_DUP_WINDOW;
    }
    if c.max_age > 0 && c.duplicate_window > c.max_age as u64 {
        c.duplicate_window = c.max_age as u64;
    }
    if c.deny_purge && c.allow_rollup_hdrs {
        return bad("roll-ups require the purge permission");
    }
    if c.discard_new_per_subject {
        if c.discard != "new" {
            return bad("discard new per subject requires discard new policy to be set");
        }
        if c.max_msgs_per_subject <= 0 {
            return bad("discard new per subject requires max msgs per subject > 0");
        }
    }
    if c.subject_delete_marker_ttl > 0 {
        if c.subject_delete_marker_ttl < 1_000_000_000 {
            return bad("subject delete marker TTL must be at least 1 second");
        }
        // Go (not pedantic): markers need TTLs and roll-ups, so they are switched on.
        c.allow_msg_ttl = true;
        c.allow_rollup_hdrs = true;
        c.deny_purge = false;
    }
    super::features::check(&mut c)?;
    if let Some(m) = c.mirror.clone() {
        check_mirror(&c, &m)?;
    }
    check_sources(&c)?;
    check_prefixes(&c)?;
    if c.subjects.is_empty() && !sourcing {
        c.subjects.push(c.name.clone());
    }
    check_subjects(&c)?;
    check_transform_and_republish(&mut c)?;
    if c.placement
        .as_ref()
        .is_some_and(|p| *p == Default::default())
    {
        c.placement = None;
    }
    if c.placement
        .as_ref()
        .is_some_and(|p| !p.preferred.is_empty())
    {
        return bad("preferred server not permitted in placement");
    }
    Ok(c)
}

/// The update rules (Go: configUpdateCheck): what an update may not change.
pub fn check_update(old: &StreamConfig, c: &StreamConfig) -> Result<(), ApiError> {
    let bad = |t: &str| Err(err::stream_invalid_config(t));
    if c.storage != old.storage {
        return bad("stream configuration update can not change storage type");
    }
    if c.retention != old.retention {
        return bad("stream configuration update can not change retention policy");
    }
    if old.sealed && !c.sealed {
        return bad("stream configuration update can not unseal a sealed stream");
    }
    if old.deny_delete && !c.deny_delete {
        return bad("stream configuration update can not cancel deny message deletes");
    }
    if old.deny_purge && !c.deny_purge {
        return bad("stream configuration update can not cancel deny purge");
    }
    if c.mirror.is_some() && c.mirror != old.mirror {
        return Err(err::mirror_not_updatable());
    }
    if old.allow_msg_ttl && !c.allow_msg_ttl {
        return bad("message TTL status can not be disabled");
    }
    super::features::check_update(old, c)
}

fn limit(v: i64) -> Option<u64> {
    u64::try_from(v).ok()
}

/// The store-level part of a stream config.
pub fn store_config(c: &StreamConfig) -> StoreConfig {
    StoreConfig {
        first_seq: c.first_seq,
        max_msgs: limit(c.max_msgs),
        max_bytes: limit(c.max_bytes),
        max_age: (c.max_age > 0).then(|| Duration::from_nanos(c.max_age as u64)),
        max_msgs_per_subject: limit(c.max_msgs_per_subject),
        max_msg_size: limit(c.max_msg_size),
        discard: if c.discard == "new" {
            Discard::New
        } else {
            Discard::Old
        },
        discard_new_per_subject: c.discard_new_per_subject,
        compress: c.compression == "s2",
    }
}
