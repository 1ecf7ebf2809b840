//! `accounts { A { jetstream … } }` mapping and which accounts get JetStream.

use std::path::Path;

use crate::conf::{options_from_conf, parse, ConfError, NoEnv, NoIncludes};
use crate::jetstream::limits::{jetstream_accounts, AccountLimits};
use crate::options::Options;

fn map(src: &str) -> Result<Options, ConfError> {
    let m = parse(src, Path::new("t.conf"), &NoIncludes, &NoEnv)?;
    options_from_conf(&m).map(|(o, _)| o)
}

fn opts(src: &str) -> Options {
    map(src).unwrap_or_else(|e| panic!("mapping failed: {e}\n---\n{src}"))
}

fn js_of(o: &Options, name: &str) -> Option<AccountLimits> {
    o.accounts
        .iter()
        .find(|a| a.name == name)
        .unwrap()
        .jetstream
}

#[test]
fn enabled_disabled_and_bool_forms() {
    let o = opts(
        "accounts { A: { jetstream: enabled }, B: { jetstream: disabled },
         C: { jetstream: true }, D: { jetstream: false }, E: { jetstream: ENABLE }, F: {} }",
    );
    assert_eq!(js_of(&o, "A"), Some(AccountLimits::default()));
    assert_eq!(js_of(&o, "B"), None);
    assert_eq!(js_of(&o, "C"), Some(AccountLimits::default()));
    assert_eq!(js_of(&o, "D"), None);
    assert_eq!(js_of(&o, "E"), Some(AccountLimits::default()));
    assert_eq!(js_of(&o, "F"), None);
}

#[test]
fn limits_map_with_sizes_and_aliases() {
    let o = opts(
        "accounts { A: { jetstream: { max_mem: 1G, max_file: 10G, max_streams: 10,
           max_consumers: 100, max_ack_pending: 50, mem_max_stream_bytes: 1M,
           store_max_stream_bytes: 2M, max_bytes_required: true } },
         B: { jetstream { memory: 5, disk: 6, streams: 7, consumers: 8 } } }",
    );
    assert_eq!(
        js_of(&o, "A"),
        Some(AccountLimits {
            // The config lexer's G and M are decimal (GB/MB are binary).
            max_memory: 1_000_000_000,
            max_storage: 10_000_000_000,
            max_streams: 10,
            max_consumers: 100,
            max_ack_pending: 50,
            memory_max_stream_bytes: 1_000_000,
            storage_max_stream_bytes: 2_000_000,
            max_bytes_required: true,
        })
    );
    let b = js_of(&o, "B").unwrap();
    assert_eq!(
        (b.max_memory, b.max_storage, b.max_streams, b.max_consumers),
        (5, 6, 7, 8)
    );
    assert_eq!(b.max_ack_pending, -1, "unset limits stay unlimited");
    assert!(!b.max_bytes_required);
}

#[test]
fn bad_jetstream_values_are_errors() {
    let e = map("accounts { A: { jetstream: maybe } }").unwrap_err();
    assert!(
        e.message.contains("Expected 'enabled' or 'disabled'"),
        "{e}"
    );
    let e = map("accounts { A: { jetstream: 5 } }").unwrap_err();
    assert!(e.message.contains("Expected map, bool or string"), "{e}");
    let e = map("accounts { A: { jetstream: { max_mem: abc } } }").unwrap_err();
    assert!(e.message.contains("parseable size"), "{e}");
    let e = map("accounts { A: { jetstream: { max_bytes_required: 3 } } }").unwrap_err();
    assert!(e.message.contains("parseable bool"), "{e}");
    let e = map("accounts { A: { jetstream: { max_widgets: 3 } } }").unwrap_err();
    assert!(e.message.contains("unknown field"), "{e}");
}

#[test]
fn which_accounts_get_jetstream() {
    // JetStream off: nobody.
    assert!(jetstream_accounts(&opts("accounts { A: { jetstream: enabled } }")).is_empty());
    // No accounts: the global account, unlimited.
    assert_eq!(
        jetstream_accounts(&opts("jetstream { max_mem: 1M }")),
        [("$G".to_owned(), AccountLimits::default())]
    );
    // Only the system account configured: still the global account.
    let o = opts("jetstream: enabled\naccounts { SYS: {} }\nsystem_account: SYS");
    assert_eq!(jetstream_accounts(&o)[0].0, "$G");
    // Accounts configured: only those that enable it; never the global account.
    let o = opts(
        "jetstream: enabled
         accounts { A: { jetstream: { max_streams: 2 } }, B: {}, SYS: { jetstream: enabled } }
         system_account: SYS",
    );
    let got = jetstream_accounts(&o);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0, "A");
    assert_eq!(got[0].1.max_streams, 2);
}
