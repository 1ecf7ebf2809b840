use super::*;
use crate::options::{AccountConfig, Authorization, SubjectPermission, TlsConfig};

fn user(name: &str, pass: &str) -> User {
    User {
        username: Some(name.to_owned()),
        password: Some(pass.to_owned()),
        ..User::default()
    }
}

fn connect(user: Option<&str>, pass: Option<&str>) -> ConnectInfo {
    ConnectInfo {
        user: user.map(str::to_owned),
        pass: pass.map(str::to_owned),
        echo: true,
        ..ConnectInfo::default()
    }
}

fn perms(allow_pub: &str) -> Permissions {
    Permissions {
        publish: Some(SubjectPermission {
            allow: vec![allow_pub.to_owned()],
            deny: vec![],
        }),
        ..Permissions::default()
    }
}

fn auth(opts: &Options, c: &ConnectInfo) -> Result<AuthOutcome, AuthError> {
    Authenticator::new(opts).authenticate(c, b"nonce", &[], ConnType::Standard)
}

#[test]
fn no_auth_configured_lets_everyone_into_global() {
    let opts = Options::default();
    let a = Authenticator::new(&opts);
    assert!(!a.auth_required() && !a.info_auth_required() && !a.needs_nonce() && !a.uses_bcrypt());
    let out = auth(&opts, &connect(Some("anyone"), Some("x"))).unwrap();
    assert_eq!(out, AuthOutcome::global());
}

#[test]
fn single_user_plain() {
    let mut opts = Options::default();
    opts.authorization.user = Some("derek".into());
    opts.authorization.pass = Some("s3cr3t".into());
    assert!(Authenticator::new(&opts).auth_required());
    let out = auth(&opts, &connect(Some("derek"), Some("s3cr3t"))).unwrap();
    assert_eq!(out.user.as_deref(), Some("derek"));
    assert_eq!(out.account, GLOBAL_ACCOUNT);
    assert_eq!(
        auth(&opts, &connect(Some("derek"), Some("nope"))),
        Err(AuthError::BadPassword("derek".into()))
    );
    assert_eq!(
        auth(&opts, &connect(Some("other"), Some("s3cr3t"))),
        Err(AuthError::UnknownUser("other".into()))
    );
    assert_eq!(
        auth(&opts, &connect(None, None)),
        Err(AuthError::NoCredentials)
    );
    assert!(auth(&opts, &connect(Some("derek"), None)).is_err());
}

#[test]
fn single_user_bcrypt_all_prefixes() {
    let hash = bcrypt::hash("s3cr3t", 4).unwrap();
    for prefix in ["$2a$", "$2b$", "$2y$"] {
        let h = format!("{prefix}{}", &hash[4..]);
        let mut opts = Options::default();
        opts.authorization.user = Some("derek".into());
        opts.authorization.pass = Some(h.clone());
        assert!(Authenticator::new(&opts).uses_bcrypt(), "{h}");
        assert!(
            auth(&opts, &connect(Some("derek"), Some("s3cr3t"))).is_ok(),
            "{prefix}"
        );
        assert!(auth(&opts, &connect(Some("derek"), Some("wrong"))).is_err());
        assert!(
            auth(&opts, &connect(Some("derek"), Some(&h))).is_err(),
            "the hash is not the password"
        );
    }
}

#[test]
fn token_plain_and_bcrypt() {
    let mut opts = Options::default();
    opts.authorization.token = Some("tok".into());
    opts.authorization.permissions = Some(perms("only"));
    let ok = ConnectInfo {
        auth_token: Some("tok".into()),
        ..ConnectInfo::default()
    };
    let out = auth(&opts, &ok).unwrap();
    assert_eq!(out.account, GLOBAL_ACCOUNT);
    assert_eq!(out.user, None);
    assert_eq!(out.permissions, Some(perms("only")));
    let bad = ConnectInfo {
        auth_token: Some("tok2".into()),
        ..ConnectInfo::default()
    };
    assert_eq!(auth(&opts, &bad), Err(AuthError::BadToken));
    assert_eq!(
        auth(&opts, &ConnectInfo::default()),
        Err(AuthError::BadToken)
    );

    opts.authorization.token = Some(bcrypt::hash("tok", 4).unwrap());
    assert!(Authenticator::new(&opts).uses_bcrypt());
    assert!(auth(&opts, &ok).is_ok());
    assert!(auth(&opts, &bad).is_err());
}

#[test]
fn users_list_and_accounts_users() {
    let mut opts = Options::default();
    opts.authorization.users = vec![user("alice", "a"), user("bob", "b")];
    opts.accounts = vec![AccountConfig {
        name: "A".into(),
        users: vec![user("carol", "c")],
        ..AccountConfig::default()
    }];
    let out = auth(&opts, &connect(Some("alice"), Some("a"))).unwrap();
    assert_eq!(
        (out.account.as_str(), out.user.as_deref()),
        (GLOBAL_ACCOUNT, Some("alice"))
    );
    let out = auth(&opts, &connect(Some("carol"), Some("c"))).unwrap();
    assert_eq!(
        (out.account.as_str(), out.user.as_deref()),
        ("A", Some("carol"))
    );
    assert!(auth(&opts, &connect(Some("carol"), Some("a"))).is_err());
    assert_eq!(
        auth(&opts, &connect(Some("dave"), Some("d"))),
        Err(AuthError::UnknownUser("dave".into()))
    );
    assert_eq!(
        auth(&opts, &connect(None, None)),
        Err(AuthError::NoCredentials)
    );
    // A bcrypt user in the list.
    opts.authorization
        .users
        .push(user("erin", &bcrypt::hash("e", 4).unwrap()));
    assert!(Authenticator::new(&opts).uses_bcrypt());
    assert!(auth(&opts, &connect(Some("erin"), Some("e"))).is_ok());
    assert!(auth(&opts, &connect(Some("erin"), Some("x"))).is_err());
}

#[test]
fn permission_precedence() {
    let mut opts = Options::default();
    opts.authorization.default_permissions = Some(perms("global"));
    let mut own = user("own", "p");
    own.permissions = Some(perms("own"));
    opts.authorization.users = vec![own, user("plain", "p")];
    opts.accounts = vec![
        AccountConfig {
            name: "A".into(),
            users: vec![user("in_a", "p")],
            default_permissions: Some(perms("acc")),
            ..AccountConfig::default()
        },
        AccountConfig {
            name: "B".into(),
            users: vec![user("in_b", "p")],
            ..AccountConfig::default()
        },
    ];
    let p = |n: &str| {
        auth(&opts, &connect(Some(n), Some("p")))
            .unwrap()
            .permissions
    };
    assert_eq!(p("own"), Some(perms("own")));
    assert_eq!(p("plain"), Some(perms("global")));
    assert_eq!(p("in_a"), Some(perms("acc")));
    assert_eq!(p("in_b"), Some(perms("global")));
}

fn nkey_opts(kp: &nkeys::KeyPair) -> Options {
    Options {
        accounts: vec![AccountConfig {
            name: "A".into(),
            users: vec![User {
                nkey: Some(kp.public_key()),
                ..User::default()
            }],
            ..AccountConfig::default()
        }],
        ..Options::default()
    }
}

#[test]
fn nkey_users_sign_the_nonce() {
    let kp = nkeys::KeyPair::new_user();
    let opts = nkey_opts(&kp);
    let a = Authenticator::new(&opts);
    assert!(a.needs_nonce() && a.auth_required());
    let mut rng = SplitMix64::new(9);
    let nonce = new_nonce(&mut rng);
    let sig = kp.sign(nonce.as_bytes()).unwrap();
    let mut c = ConnectInfo {
        nkey: Some(kp.public_key()),
        sig: Some(b64::encode_url_raw(&sig)),
        ..ConnectInfo::default()
    };
    let out = a
        .authenticate(&c, nonce.as_bytes(), &[], ConnType::Standard)
        .unwrap();
    assert_eq!(out.account, "A");
    assert_eq!(out.nkey, Some(kp.public_key()));
    assert_eq!(out.user, None);
    // Standard base64 with padding is accepted too.
    c.sig = Some(std_b64(&sig));
    assert!(a
        .authenticate(&c, nonce.as_bytes(), &[], ConnType::Standard)
        .is_ok());
    // Another nonce, a missing or mangled signature, another key: all refused.
    assert!(matches!(
        a.authenticate(&c, b"other-nonce", &[], ConnType::Standard),
        Err(AuthError::BadSignature(_))
    ));
    c.sig = None;
    assert!(matches!(
        a.authenticate(&c, nonce.as_bytes(), &[], ConnType::Standard),
        Err(AuthError::MissingSignature(_))
    ));
    c.sig = Some("!!!".into());
    assert!(matches!(
        a.authenticate(&c, nonce.as_bytes(), &[], ConnType::Standard),
        Err(AuthError::BadSignatureEncoding(_))
    ));
    let other = nkeys::KeyPair::new_user();
    let c2 = ConnectInfo {
        nkey: Some(other.public_key()),
        sig: Some(b64::encode_url_raw(&other.sign(nonce.as_bytes()).unwrap())),
        ..ConnectInfo::default()
    };
    assert!(matches!(
        a.authenticate(&c2, nonce.as_bytes(), &[], ConnType::Standard),
        Err(AuthError::UnknownNkey(_))
    ));
    // Someone else's signature over the right nonce, presented with our key.
    let c3 = ConnectInfo {
        nkey: Some(kp.public_key()),
        ..c2
    };
    assert!(matches!(
        a.authenticate(&c3, nonce.as_bytes(), &[], ConnType::Standard),
        Err(AuthError::BadSignature(_))
    ));
}

fn std_b64(data: &[u8]) -> String {
    let url = b64::encode_url_raw(data);
    let mut s: String = url
        .chars()
        .map(|c| match c {
            '-' => '+',
            '_' => '/',
            c => c,
        })
        .collect();
    while s.len() % 4 != 0 {
        s.push('=');
    }
    s
}

#[test]
fn nonce_shape() {
    let mut rng = SplitMix64::new(1);
    let n1 = new_nonce(&mut rng);
    let n2 = new_nonce(&mut rng);
    assert_eq!(n1.len(), 15);
    assert_ne!(n1, n2);
    assert!(n1
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
    assert_eq!(
        new_nonce(&mut SplitMix64::new(1)),
        n1,
        "seeded: reproducible"
    );
}

#[test]
fn no_auth_user_used_only_without_credentials() {
    let opts = Options {
        accounts: vec![AccountConfig {
            name: "A".into(),
            users: vec![user("anon", "whatever"), user("real", "pw")],
            ..AccountConfig::default()
        }],
        no_auth_user: Some("anon".into()),
        ..Options::default()
    };
    let a = Authenticator::new(&opts);
    assert!(a.auth_required());
    assert!(
        !a.info_auth_required(),
        "clients are not asked for credentials"
    );
    let out = auth(&opts, &connect(None, None)).unwrap();
    assert_eq!(
        (out.account.as_str(), out.user.as_deref()),
        ("A", Some("anon"))
    );
    // Credentials that fail do not fall back to the no_auth_user.
    assert!(auth(&opts, &connect(Some("real"), Some("bad"))).is_err());
    assert!(
        auth(&opts, &connect(None, Some("pw"))).is_err(),
        "a password alone is a credential"
    );
    let tok = ConnectInfo {
        auth_token: Some("t".into()),
        ..ConnectInfo::default()
    };
    assert!(auth(&opts, &tok).is_err());
    assert_eq!(
        auth(&opts, &connect(Some("real"), Some("pw")))
            .unwrap()
            .user
            .as_deref(),
        Some("real")
    );
}

#[test]
fn no_auth_user_respects_allowed_connection_types() {
    let mut anon = user("anon", "");
    anon.allowed_connection_types = vec!["websocket".into()];
    let mut opts = Options::default();
    opts.authorization.users = vec![anon, user("real", "pw")];
    opts.no_auth_user = Some("anon".into());
    let a = Authenticator::new(&opts);
    let none = connect(None, None);
    assert!(matches!(
        a.authenticate(&none, b"", &[], ConnType::Standard),
        Err(AuthError::ConnectionTypeNotAllowed { .. })
    ));
    assert!(a.authenticate(&none, b"", &[], ConnType::Websocket).is_ok());
    assert!(a.authenticate(&none, b"", &[], ConnType::Leafnode).is_err());
}

#[test]
fn no_auth_user_as_nkey() {
    let kp = nkeys::KeyPair::new_user();
    let mut opts = nkey_opts(&kp);
    opts.accounts[0].users.push(user("real", "pw"));
    opts.no_auth_user = Some(kp.public_key());
    let a = Authenticator::new(&opts);
    let out = a
        .authenticate(&connect(None, None), b"n", &[], ConnType::Standard)
        .unwrap();
    assert_eq!(out.nkey, Some(kp.public_key()));
    assert_eq!(out.account, "A");
    assert!(a
        .authenticate(
            &connect(Some("real"), Some("pw")),
            b"n",
            &[],
            ConnType::Standard
        )
        .is_ok());
}

#[test]
fn allowed_connection_types() {
    let mut u = user("u", "p");
    u.allowed_connection_types = vec!["STANDARD".into(), "mqtt".into()];
    let mut bogus = user("v", "p");
    bogus.allowed_connection_types = vec!["CARRIER_PIGEON".into()];
    let mut opts = Options::default();
    opts.authorization.users = vec![u, bogus];
    let a = Authenticator::new(&opts);
    let c = connect(Some("u"), Some("p"));
    assert!(a.authenticate(&c, b"", &[], ConnType::Standard).is_ok());
    assert!(a.authenticate(&c, b"", &[], ConnType::Mqtt).is_ok());
    assert!(a.authenticate(&c, b"", &[], ConnType::Websocket).is_err());
    assert!(a.authenticate(&c, b"", &[], ConnType::Leafnode).is_err());
    let c = connect(Some("v"), Some("p"));
    assert!(
        a.authenticate(&c, b"", &[], ConnType::Standard).is_err(),
        "unknown types allow nothing"
    );
    // Nkey users too.
    let kp = nkeys::KeyPair::new_user();
    let mut opts = nkey_opts(&kp);
    opts.accounts[0].users[0].allowed_connection_types = vec!["LEAFNODE".into()];
    let a = Authenticator::new(&opts);
    let c = ConnectInfo {
        nkey: Some(kp.public_key()),
        sig: Some(b64::encode_url_raw(&kp.sign(b"n").unwrap())),
        ..ConnectInfo::default()
    };
    assert!(a.authenticate(&c, b"n", &[], ConnType::Leafnode).is_ok());
    assert!(matches!(
        a.authenticate(&c, b"n", &[], ConnType::Standard),
        Err(AuthError::ConnectionTypeNotAllowed { .. })
    ));
}

fn tls_map_opts() -> Options {
    let mut tls = TlsConfig::new("cert.pem".into(), "key.pem".into());
    tls.verify = true;
    tls.verify_and_map = true;
    let mut opts = Options {
        tls: Some(tls),
        ..Options::default()
    };
    let mut ws_only = User {
        username: Some("ws@example.com".into()),
        ..User::default()
    };
    ws_only.allowed_connection_types = vec!["WEBSOCKET".into()];
    opts.authorization.users = vec![
        User {
            username: Some("CN=alice,O=Acme".into()),
            ..User::default()
        },
        User {
            username: Some("bob@example.com".into()),
            ..User::default()
        },
        ws_only,
        user("pwuser", "pw"),
    ];
    opts
}

#[test]
fn verify_and_map_matches_certificate_identities() {
    let opts = tls_map_opts();
    let a = Authenticator::new(&opts);
    let c = connect(None, None);
    let ids = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    let out = a.authenticate(
        &c,
        b"",
        &ids(&["host.example.com", "CN=alice,O=Acme"]),
        ConnType::Standard,
    );
    assert_eq!(out.unwrap().user.as_deref(), Some("CN=alice,O=Acme"));
    let out = a.authenticate(
        &c,
        b"",
        &ids(&["bob@example.com", "CN=alice,O=Acme"]),
        ConnType::Standard,
    );
    assert_eq!(
        out.unwrap().user.as_deref(),
        Some("bob@example.com"),
        "first identity wins"
    );
    // An identity naming a user barred from this kind is skipped.
    let out = a.authenticate(
        &c,
        b"",
        &ids(&["ws@example.com", "CN=alice,O=Acme"]),
        ConnType::Standard,
    );
    assert_eq!(out.unwrap().user.as_deref(), Some("CN=alice,O=Acme"));
    assert_eq!(
        a.authenticate(&c, b"", &ids(&["ws@example.com"]), ConnType::Standard),
        Err(AuthError::NoCertificateMatch)
    );
    assert_eq!(
        a.authenticate(&c, b"", &[], ConnType::Standard),
        Err(AuthError::NoCertificateMatch)
    );
    // CONNECT credentials do not replace the certificate.
    let pw = connect(Some("pwuser"), Some("pw"));
    assert_eq!(
        a.authenticate(&pw, b"", &[], ConnType::Standard),
        Err(AuthError::NoCertificateMatch)
    );
    // A claimed identity in CONNECT does not select a user either.
    let claim = connect(Some("CN=alice,O=Acme"), None);
    assert_eq!(
        a.authenticate(&claim, b"", &ids(&["CN=mallory"]), ConnType::Standard),
        Err(AuthError::NoCertificateMatch)
    );
}

#[test]
fn certificate_only_users_need_a_certificate_elsewhere() {
    // On a listener that does not map (websocket here), a password-less user that the client
    // port's map could select must not log in by name alone.
    let opts = tls_map_opts();
    let a = Authenticator::new(&opts);
    let c = connect(Some("CN=alice,O=Acme"), None);
    assert_eq!(
        a.authenticate(&c, b"", &[], ConnType::Websocket),
        Err(AuthError::CertificateRequired("CN=alice,O=Acme".into()))
    );
    // A user limited to websocket is not selectable by the client port's map: Go lets it
    // in with its (empty) password.
    let c = connect(Some("ws@example.com"), None);
    assert!(a.authenticate(&c, b"", &[], ConnType::Websocket).is_ok());
    let c = connect(Some("pwuser"), Some("pw"));
    assert!(a.authenticate(&c, b"", &[], ConnType::Websocket).is_ok());
}

fn sys_only() -> Options {
    Options {
        system_account: Some("SYS".into()),
        accounts: vec![AccountConfig {
            name: "SYS".into(),
            users: vec![user("admin", "pw")],
            ..AccountConfig::default()
        }],
        ..Options::default()
    }
}

#[test]
fn sys_only_accounts_without_auth_block_get_implicit_global_no_auth() {
    let opts = sys_only();
    let a = Authenticator::new(&opts);
    assert!(a.info_auth_required());
    assert_eq!(
        a.authenticate(&connect(None, None), b"", &[], ConnType::Standard),
        Ok(AuthOutcome::global())
    );
    let out = a
        .authenticate(
            &connect(Some("admin"), Some("pw")),
            b"",
            &[],
            ConnType::Standard,
        )
        .unwrap();
    assert_eq!(out.account, "SYS");
    assert!(a
        .authenticate(
            &connect(Some("admin"), Some("no")),
            b"",
            &[],
            ConnType::Standard
        )
        .is_err());
}

#[test]
fn cve_2023_47090_sys_only_accounts_with_auth_block_keep_auth() {
    let mut opts = sys_only();
    opts.authorization = Authorization {
        users: vec![user("app", "apppw")],
        ..Authorization::default()
    };
    let a = Authenticator::new(&opts);
    assert_eq!(
        a.authenticate(&connect(None, None), b"", &[], ConnType::Standard),
        Err(AuthError::NoCredentials),
        "authentication must not be silently disabled"
    );
    assert!(a
        .authenticate(
            &connect(Some("app"), Some("apppw")),
            b"",
            &[],
            ConnType::Standard
        )
        .is_ok());
    // Even a block holding only a timeout counts as an authorization block.
    opts.authorization = Authorization {
        timeout: Some(std::time::Duration::from_secs(3)),
        ..Authorization::default()
    };
    let a = Authenticator::new(&opts);
    assert!(a
        .authenticate(&connect(None, None), b"", &[], ConnType::Standard)
        .is_err());
}

#[test]
fn errors_say_nothing_on_the_wire() {
    for e in [
        AuthError::NoCredentials,
        AuthError::BadPassword("x".into()),
        AuthError::BadSignature("U".into()),
        AuthError::NoCertificateMatch,
    ] {
        assert_eq!(e.wire_message(), "Authorization Violation");
        assert!(!e.to_string().is_empty());
    }
}

#[test]
fn helpers() {
    assert!(ct_eq(b"abc", b"abc"));
    assert!(!ct_eq(b"abc", b"abd"));
    assert!(!ct_eq(b"abc", b"ab"));
    assert!(!ct_eq(b"ab", b"abc"));
    assert!(ct_eq(b"", b""));
    assert!(!ct_eq(b"", b"\xff"));
    assert!(is_bcrypt("$2a$04$abc"));
    assert!(is_bcrypt("$2x$10$"));
    assert!(!is_bcrypt("$2c$04$abc"));
    assert!(!is_bcrypt("$2a$4$abc"));
    assert!(!is_bcrypt("plain"));
    assert_eq!(ConnType::parse("leafnode"), Some(ConnType::Leafnode));
    assert_eq!(ConnType::parse("MQTT_WS"), Some(ConnType::MqttWs));
    assert_eq!(ConnType::parse("nope"), None);
}
