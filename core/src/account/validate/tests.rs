use super::*;
use crate::options::{ExportConfig, ResponseType};

fn export(kind: ExportKind, subject: &str, accounts: Option<&[&str]>) -> ExportConfig {
    ExportConfig {
        kind,
        subject: subject.to_owned(),
        accounts: accounts.map(|l| l.iter().map(|s| (*s).to_owned()).collect()),
        response_type: ResponseType::Singleton,
        response_threshold: None,
    }
}

fn import(kind: ExportKind, account: &str, subject: &str, to: Option<&str>) -> ImportConfig {
    ImportConfig {
        kind,
        account: account.to_owned(),
        subject: subject.to_owned(),
        to: to.map(str::to_owned),
        prefix: None,
    }
}

fn svc_export(s: &str) -> ExportConfig {
    export(ExportKind::Service, s, None)
}
fn strm_export(s: &str) -> ExportConfig {
    export(ExportKind::Stream, s, None)
}
fn svc_import(acc: &str, s: &str, to: Option<&str>) -> ImportConfig {
    import(ExportKind::Service, acc, s, to)
}
fn strm_import(acc: &str, s: &str, to: Option<&str>) -> ImportConfig {
    import(ExportKind::Stream, acc, s, to)
}

fn acc(name: &str, exports: Vec<ExportConfig>, imports: Vec<ImportConfig>) -> AccountConfig {
    AccountConfig {
        name: name.to_owned(),
        exports,
        imports,
        ..AccountConfig::default()
    }
}

fn opts(accounts: Vec<AccountConfig>) -> Options {
    Options {
        accounts,
        ..Options::default()
    }
}

fn is_cycle(r: Result<(), AccountConfigError>) -> bool {
    matches!(r, Err(AccountConfigError::ImportCycle { .. }))
}

fn user(name: &str) -> User {
    User {
        username: Some(name.to_owned()),
        password: Some("p".into()),
        ..User::default()
    }
}

#[test]
fn valid_config_passes() {
    let o = opts(vec![
        acc("A", vec![svc_export("help"), strm_export("news.>")], vec![]),
        acc(
            "B",
            vec![],
            vec![
                svc_import("A", "help", None),
                strm_import("A", "news.sports", None),
            ],
        ),
    ]);
    assert_eq!(validate_accounts(&o), Ok(()));
    assert_eq!(validate_accounts(&Options::default()), Ok(()));
}

#[test]
fn unknown_import_account() {
    let o = opts(vec![acc("A", vec![], vec![svc_import("Nope", "x", None)])]);
    let e = validate_accounts(&o).unwrap_err();
    assert!(
        matches!(&e, AccountConfigError::UnknownImportAccount { account, .. } if account == "Nope")
    );
    assert!(
        e.to_string()
            .contains("\"Nope\" account not defined for service import"),
        "{e}"
    );
}

#[test]
fn unknown_export_account() {
    let o = opts(vec![acc(
        "A",
        vec![export(ExportKind::Stream, "x", Some(&["Ghost"]))],
        vec![],
    )]);
    assert!(matches!(
        validate_accounts(&o),
        Err(AccountConfigError::UnknownExportAccount { .. })
    ));
}

#[test]
fn import_of_unexported_subject() {
    let o = opts(vec![
        acc("A", vec![svc_export("help")], vec![]),
        acc("B", vec![], vec![svc_import("A", "other", None)]),
    ]);
    let e = validate_accounts(&o).unwrap_err();
    assert!(matches!(e, AccountConfigError::ImportNotAuthorized { .. }));
    assert!(
        e.to_string().contains("service import not authorized"),
        "{e}"
    );
    // Wrong kind: a stream export does not authorize a service import.
    let o = opts(vec![
        acc("A", vec![strm_export("help")], vec![]),
        acc("B", vec![], vec![svc_import("A", "help", None)]),
    ]);
    assert!(matches!(
        validate_accounts(&o),
        Err(AccountConfigError::ImportNotAuthorized { .. })
    ));
    // Broader than the export.
    let o = opts(vec![
        acc("A", vec![strm_export("news.sports")], vec![]),
        acc("B", vec![], vec![strm_import("A", "news.*", None)]),
    ]);
    assert!(matches!(
        validate_accounts(&o),
        Err(AccountConfigError::ImportNotAuthorized { .. })
    ));
}

#[test]
fn import_not_exported_to_this_importer() {
    let o = opts(vec![
        acc(
            "A",
            vec![export(ExportKind::Stream, "s", Some(&["C"]))],
            vec![],
        ),
        acc("B", vec![], vec![strm_import("A", "s", None)]),
        acc("C", vec![], vec![strm_import("A", "s", None)]),
    ]);
    let all = validate_accounts_all(&o);
    assert_eq!(all.len(), 1, "{all:?}");
    assert!(
        matches!(&all[0], AccountConfigError::ImportNotAuthorized { importer, .. } if importer == "B")
    );
    // An empty list is public, as in nats-server.
    let o = opts(vec![
        acc(
            "A",
            vec![export(ExportKind::Stream, "s", Some(&[]))],
            vec![],
        ),
        acc("B", vec![], vec![strm_import("A", "s", None)]),
    ]);
    assert_eq!(validate_accounts(&o), Ok(()));
}

#[test]
fn duplicate_users() {
    let mut o = opts(vec![AccountConfig {
        name: "A".into(),
        users: vec![user("bob")],
        ..AccountConfig::default()
    }]);
    o.authorization.users = vec![user("bob")];
    assert_eq!(
        validate_accounts(&o),
        Err(AccountConfigError::DuplicateUser("bob".into()))
    );
    let o = opts(vec![
        AccountConfig {
            name: "A".into(),
            users: vec![user("x")],
            ..AccountConfig::default()
        },
        AccountConfig {
            name: "B".into(),
            users: vec![user("x")],
            ..AccountConfig::default()
        },
    ]);
    assert_eq!(
        validate_accounts(&o),
        Err(AccountConfigError::DuplicateUser("x".into()))
    );
    let k = nkeys::KeyPair::new_user().public_key();
    let nk = User {
        nkey: Some(k.clone()),
        ..User::default()
    };
    let o = opts(vec![AccountConfig {
        name: "A".into(),
        users: vec![nk.clone(), nk],
        ..AccountConfig::default()
    }]);
    assert_eq!(
        validate_accounts(&o),
        Err(AccountConfigError::DuplicateNkey(k))
    );
}

#[test]
fn bad_nkeys_and_nameless_users() {
    let acct = nkeys::KeyPair::new_account().public_key();
    let mut o = Options::default();
    o.authorization.users = vec![User {
        nkey: Some(acct.clone()),
        ..User::default()
    }];
    assert_eq!(
        validate_accounts(&o),
        Err(AccountConfigError::InvalidUserNkey(acct))
    );
    o.authorization.users = vec![User::default()];
    assert_eq!(
        validate_accounts(&o),
        Err(AccountConfigError::UserWithoutName)
    );
}

#[test]
fn user_bound_to_unknown_account() {
    let mut o = opts(vec![acc("A", vec![], vec![])]);
    let mut u = user("bob");
    u.account = Some("Z".into());
    o.authorization.users = vec![u];
    assert_eq!(
        validate_accounts(&o),
        Err(AccountConfigError::UnknownUserAccount {
            user: "bob".into(),
            account: "Z".into()
        })
    );
    o.authorization.users[0].account = Some("A".into());
    assert_eq!(validate_accounts(&o), Ok(()));
}

#[test]
fn reserved_and_duplicate_accounts() {
    let o = opts(vec![acc("$G", vec![], vec![])]);
    assert_eq!(
        validate_accounts(&o),
        Err(AccountConfigError::ReservedAccount("$G".into()))
    );
    let o = opts(vec![acc("A", vec![], vec![]), acc("A", vec![], vec![])]);
    assert_eq!(
        validate_accounts(&o),
        Err(AccountConfigError::DuplicateAccount("A".into()))
    );
    let mut o = opts(vec![acc("A", vec![], vec![])]);
    o.system_account = Some("SYS".into());
    assert_eq!(
        validate_accounts(&o),
        Err(AccountConfigError::UnknownSystemAccount("SYS".into()))
    );
    o.system_account = Some(DEFAULT_SYSTEM_ACCOUNT.into());
    assert_eq!(validate_accounts(&o), Ok(()));
}

#[test]
fn auth_setting_conflicts() {
    let mut o = Options::default();
    o.authorization.user = Some("u".into());
    o.authorization.token = Some("t".into());
    assert_eq!(
        validate_accounts(&o),
        Err(AccountConfigError::UserPassAndToken)
    );
    let mut o = Options::default();
    o.authorization.user = Some("u".into());
    o.authorization.users = vec![user("v")];
    assert_eq!(
        validate_accounts(&o),
        Err(AccountConfigError::SingleUserAndUsers)
    );
    let mut o = opts(vec![AccountConfig {
        name: "A".into(),
        users: vec![user("v")],
        ..AccountConfig::default()
    }]);
    o.authorization.token = Some("t".into());
    assert_eq!(
        validate_accounts(&o),
        Err(AccountConfigError::TokenAndUsers)
    );
}

#[test]
fn no_auth_user_must_exist() {
    let mut o = Options {
        no_auth_user: Some("ghost".into()),
        ..Options::default()
    };
    assert_eq!(
        validate_accounts(&o),
        Err(AccountConfigError::NoAuthUserWithoutUsers("ghost".into()))
    );
    o.authorization.users = vec![user("real")];
    assert_eq!(
        validate_accounts(&o),
        Err(AccountConfigError::UnknownNoAuthUser("ghost".into()))
    );
    o.no_auth_user = Some("real".into());
    assert_eq!(validate_accounts(&o), Ok(()));
}

#[test]
fn unknown_connection_type() {
    let mut o = Options::default();
    let mut u = user("a");
    u.allowed_connection_types = vec!["standard".into(), "TELEPATHY".into()];
    o.authorization.users = vec![u];
    assert_eq!(
        validate_accounts(&o),
        Err(AccountConfigError::UnknownConnectionType {
            user: "a".into(),
            conn_type: "TELEPATHY".into()
        })
    );
}

#[test]
fn stream_prefix_and_to() {
    let mut i = strm_import("A", "s", Some("t"));
    i.prefix = Some("p".into());
    let o = opts(vec![
        acc("A", vec![strm_export("s")], vec![]),
        acc("B", vec![], vec![i]),
    ]);
    assert!(matches!(
        validate_accounts(&o),
        Err(AccountConfigError::PrefixAndTo { .. })
    ));
}

#[test]
fn cve_2023_47090_rule() {
    let sys_only = |auth: Authorization| Options {
        system_account: Some("SYS".into()),
        accounts: vec![AccountConfig {
            name: "SYS".into(),
            users: vec![user("admin")],
            ..AccountConfig::default()
        }],
        authorization: auth,
        ..Options::default()
    };
    assert!(implicit_no_auth_user(&sys_only(Authorization::default())));
    let with_block = sys_only(Authorization {
        users: vec![user("app")],
        ..Authorization::default()
    });
    assert!(
        !implicit_no_auth_user(&with_block),
        "an authorization block keeps auth on"
    );
    assert_eq!(validate_accounts(&with_block), Ok(()));
    // `$SYS` defined without `system_account` is the system account too.
    let mut o = sys_only(Authorization::default());
    o.system_account = None;
    o.accounts[0].name = DEFAULT_SYSTEM_ACCOUNT.into();
    assert!(implicit_no_auth_user(&o));
    // More accounts than the system one, or an explicit no_auth_user: no implicit user.
    let mut o = sys_only(Authorization::default());
    o.accounts.push(acc("A", vec![], vec![]));
    assert!(!implicit_no_auth_user(&o));
    let mut o = sys_only(Authorization::default());
    o.no_auth_user = Some("admin".into());
    assert!(!implicit_no_auth_user(&o));
}

// ---- Cycles: nats-server's test/accounts_cycles_test.go cases. ----

#[test]
fn service_cycle_direct() {
    let o = opts(vec![
        acc(
            "A",
            vec![svc_export("help")],
            vec![svc_import("B", "help", None)],
        ),
        acc(
            "B",
            vec![svc_export("help")],
            vec![svc_import("A", "help", None)],
        ),
    ]);
    let e = validate_accounts(&o).unwrap_err();
    assert!(e.to_string().contains("import forms a cycle"), "{e}");
}

#[test]
fn service_cycle_wildcards() {
    let o = opts(vec![
        acc(
            "A",
            vec![svc_export("*")],
            vec![svc_import("B", "help", None)],
        ),
        acc(
            "B",
            vec![svc_export("help")],
            vec![svc_import("A", "*", None)],
        ),
    ]);
    assert!(is_cycle(validate_accounts(&o)));
    let o = opts(vec![
        acc(
            "A",
            vec![svc_export("*")],
            vec![svc_import("B", "help", None)],
        ),
        acc(
            "B",
            vec![svc_export("help")],
            vec![svc_import("C", "help", None)],
        ),
        acc("C", vec![svc_export("*")], vec![svc_import("A", "*", None)]),
    ]);
    assert!(is_cycle(validate_accounts(&o)));
}

#[test]
fn stream_cycles() {
    let o = opts(vec![
        acc(
            "A",
            vec![strm_export("strm")],
            vec![strm_import("B", "strm", None)],
        ),
        acc(
            "B",
            vec![strm_export("strm")],
            vec![strm_import("A", "strm", None)],
        ),
    ]);
    assert!(is_cycle(validate_accounts(&o)));
    // With mapping (nats-server refuses this one).
    let o = opts(vec![
        acc(
            "A",
            vec![strm_export("*")],
            vec![strm_import("B", "bar", None)],
        ),
        acc(
            "B",
            vec![strm_export("bar")],
            vec![strm_import("A", "foo", Some("bar"))],
        ),
    ]);
    assert!(is_cycle(validate_accounts(&o)));
}

#[test]
fn stream_non_cycle_with_mapping() {
    let o = opts(vec![
        acc(
            "A",
            vec![strm_export("foo")],
            vec![strm_import("B", "bar", None)],
        ),
        acc(
            "B",
            vec![strm_export("bar")],
            vec![strm_import("C", "baz", Some("bar"))],
        ),
        acc(
            "C",
            vec![strm_export("baz")],
            vec![strm_import("A", "foo", Some("bar"))],
        ),
    ]);
    assert_eq!(validate_accounts(&o), Ok(()));
}

#[test]
fn service_cycle_with_mapping() {
    let o = opts(vec![
        acc(
            "A",
            vec![svc_export("a")],
            vec![svc_import("B", "b", Some("a"))],
        ),
        acc(
            "B",
            vec![svc_export("b")],
            vec![svc_import("A", "a", Some("b"))],
        ),
    ]);
    assert!(is_cycle(validate_accounts(&o)));
}

#[test]
fn service_non_cycles() {
    let o = opts(vec![
        acc(
            "A",
            vec![svc_export("*")],
            vec![svc_import("B", "help", None)],
        ),
        acc(
            "B",
            vec![svc_export("help")],
            vec![svc_import("C", "nohelp", None)],
        ),
        acc("C", vec![svc_export("*")], vec![svc_import("A", "*", None)]),
    ]);
    assert_eq!(validate_accounts(&o), Ok(()));
    let o = opts(vec![
        acc(
            "A",
            vec![svc_export("help")],
            vec![svc_import("B", "help", None)],
        ),
        acc(
            "B",
            vec![svc_export("help")],
            vec![svc_import("C", "help", None)],
        ),
        acc(
            "C",
            vec![svc_export("help")],
            vec![svc_import("D", "help", None)],
        ),
        acc("D", vec![svc_export("help")], vec![]),
    ]);
    assert_eq!(validate_accounts(&o), Ok(()));
    // nats-server issue 1769: a full-wildcard service import is not a cycle by itself.
    let o = opts(vec![
        acc("A", vec![], vec![svc_import("B", ">", None)]),
        acc("B", vec![svc_export(">")], vec![svc_import("C", ">", None)]),
        acc("C", vec![svc_export(">")], vec![]),
    ]);
    assert_eq!(validate_accounts(&o), Ok(()));
}

#[test]
fn cycles_through_renaming() {
    let o = opts(vec![
        acc(
            "A",
            vec![svc_export("*")],
            vec![svc_import("B", "foo", Some("foo"))],
        ),
        acc(
            "B",
            vec![svc_export("foo")],
            vec![svc_import("A", "*", Some("$1"))],
        ),
    ]);
    assert!(is_cycle(validate_accounts(&o)));
    let o = opts(vec![
        acc(
            "A",
            vec![strm_export("*")],
            vec![strm_import("B", "foo", Some("foo"))],
        ),
        acc(
            "B",
            vec![strm_export("foo")],
            vec![strm_import("A", "*", Some("$1"))],
        ),
    ]);
    assert!(is_cycle(validate_accounts(&o)));
}

#[test]
fn no_false_positive_with_subject_mapping() {
    // nats-server issue 5752.
    let o = opts(vec![
        acc(
            "A",
            vec![svc_export("a.*")],
            vec![svc_import("B", "a.*", Some("b.*"))],
        ),
        acc(
            "B",
            vec![svc_export("a.*")],
            vec![svc_import("A", "a.foo", Some("c.foo"))],
        ),
    ]);
    assert_eq!(validate_accounts(&o), Ok(()));
}

#[test]
fn cycle_not_missed_after_narrowing() {
    // E -> A -> D -> E, with A's unrelated import from C listed first.
    let svc = opts(vec![
        acc(
            "A",
            vec![svc_export("*")],
            vec![
                svc_import("C", "narrow", None),
                svc_import("D", "other", None),
            ],
        ),
        acc("C", vec![svc_export("narrow")], vec![]),
        acc(
            "D",
            vec![svc_export("other")],
            vec![svc_import("E", "other", None)],
        ),
        acc("E", vec![svc_export("*")], vec![svc_import("A", "*", None)]),
    ]);
    assert!(is_cycle(validate_accounts(&svc)));
    let strm = opts(vec![
        acc(
            "A",
            vec![strm_export("*")],
            vec![
                strm_import("C", "narrow", Some("narrow")),
                strm_import("D", "other", Some("other")),
            ],
        ),
        acc("C", vec![strm_export("narrow")], vec![]),
        acc(
            "D",
            vec![strm_export("other")],
            vec![strm_import("E", "other", Some("other"))],
        ),
        acc(
            "E",
            vec![strm_export("*")],
            vec![strm_import("A", "*", None)],
        ),
    ]);
    assert!(is_cycle(validate_accounts(&strm)));
}

#[test]
fn renaming_loop_of_three_is_caught() {
    // A:x -> B:y -> C:z -> A:x, every hop renamed.
    let o = opts(vec![
        acc(
            "A",
            vec![svc_export("x")],
            vec![svc_import("B", "y", Some("x"))],
        ),
        acc(
            "B",
            vec![svc_export("y")],
            vec![svc_import("C", "z", Some("y"))],
        ),
        acc(
            "C",
            vec![svc_export("z")],
            vec![svc_import("A", "x", Some("z"))],
        ),
    ]);
    assert!(is_cycle(validate_accounts(&o)));
}

#[test]
fn long_chain_is_bounded_and_ok() {
    let n = 200;
    let accounts = (0..n)
        .map(|i| {
            let imports = if i + 1 < n {
                vec![svc_import(&format!("A{}", i + 1), "foo", None)]
            } else {
                vec![]
            };
            acc(&format!("A{i}"), vec![svc_export("*")], imports)
        })
        .collect();
    assert_eq!(validate_accounts(&opts(accounts)), Ok(()));
}

#[test]
fn untokenize_placeholders() {
    assert_eq!(untokenize("a.$1.b"), "a.*.b");
    assert_eq!(untokenize("a.{{wildcard(1)}}"), "a.*");
    assert_eq!(untokenize("a.$x"), "a.$x");
}
