//! Mapping tests: small config texts to [`Options`] fields.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::*;
use crate::options::*;

fn map(src: &str) -> Result<(Options, ConfReport), ConfError> {
    let m = parse(src, Path::new("t.conf"), &NoIncludes, &NoEnv)?;
    options_from_conf(&m)
}

fn opts(src: &str) -> Options {
    match map(src) {
        Ok((o, _)) => o,
        Err(e) => panic!("mapping failed: {e}\n---\n{src}"),
    }
}

fn err(src: &str) -> ConfError {
    match map(src) {
        Ok((o, _)) => panic!("expected an error, got {o:?}"),
        Err(e) => e,
    }
}

#[test]
fn empty_config_is_defaults() {
    assert_eq!(opts(""), Options::default());
}

#[test]
fn listen_host_and_port() {
    let o = opts("listen: 127.0.0.1:4333");
    assert_eq!((o.host.as_str(), o.port), ("127.0.0.1", Some(4333)));
    let o = opts("listen: \":4334\"");
    assert_eq!((o.host.as_str(), o.port), ("0.0.0.0", Some(4334)));
    let o = opts("listen: 4335");
    assert_eq!(o.port, Some(4335));
    let o = opts("listen: \"[::1]:4336\"");
    assert_eq!((o.host.as_str(), o.port), ("::1", Some(4336)));
    let o = opts("host: 10.0.0.1\nport: 5222");
    assert_eq!((o.host.as_str(), o.port), ("10.0.0.1", Some(5222)));
    assert_eq!(opts("net: localhost").host, "localhost");
    assert!(err("listen: nohostport")
        .message
        .contains("could not parse"));
    assert!(err("port: 70000").message.contains("invalid port"));
}

#[test]
fn port_minus_one_is_random_and_zero_is_default() {
    assert_eq!(opts("port: -1").port, None);
    assert_eq!(opts("port: 0").port, Some(DEFAULT_PORT));
}

#[test]
fn names_and_advertise() {
    let o = opts("server_name: srv-1\nclient_advertise: \"nats.example.com:4222\"");
    assert_eq!(o.server_name.as_deref(), Some("srv-1"));
    assert_eq!(o.client_advertise.as_deref(), Some("nats.example.com:4222"));
    assert!(err("server_name: \"a b\"").message.contains("spaces"));
}

#[test]
fn monitoring_ports() {
    let o = opts("http: 8222\nhttps_port: 8443\nhttp_base_path: /mon");
    assert_eq!((o.http_port, o.https_port), (Some(8222), Some(8443)));
    assert_eq!(o.http_base_path, "/mon");
    let o = opts("http: \"127.0.0.1:8223\"");
    assert_eq!(
        (o.http_host.as_str(), o.http_port),
        ("127.0.0.1", Some(8223))
    );
    assert_eq!(opts("monitor_port: -1").http_port, Some(0));
    assert_eq!(opts("http_port: 0").http_port, None);
    let o = opts("https: \"0.0.0.0:9443\"");
    assert_eq!(o.https_port, Some(9443));
}

#[test]
fn limits_with_size_suffixes() {
    let o = opts(concat!(
        "max_payload: 2MB\nmax_control_line: 8KB\nmax_pending: 100MB\n",
        "max_conn: 100\nmax_subs: 50\nping_max: 5\nmax_closed_clients: 7\n"
    ));
    assert_eq!(o.max_payload, 2 << 20);
    assert_eq!(o.max_control_line, 8192);
    assert_eq!(o.max_pending, 100 << 20);
    assert_eq!(
        (o.max_connections, o.max_subscriptions, o.ping_max),
        (100, 50, 5)
    );
    assert_eq!(o.max_closed_clients, 7);
    assert_eq!(opts("max_connections: 9").max_connections, 9);
    assert_eq!(opts("max_subscriptions: 9").max_subscriptions, 9);
}

#[test]
fn limit_errors_have_positions() {
    let e = err("\nmax_payload: -1");
    assert_eq!(
        e.to_string(),
        "t.conf:2:14: \"max_payload\" can not be negative"
    );
    let e = err("max_payload: \"big\"");
    assert!(e.message.contains("expects an integer, got string"), "{e}");
    assert!(err("max_payload: 3GB").message.contains("too big"));
    let e = err("max_pending: 1MB\nmax_payload: 2MB");
    assert!(
        e.message.contains("cannot be higher than max_pending"),
        "{e}"
    );
}

#[test]
fn durations_strings_and_legacy_seconds() {
    let (o, rep) = map("ping_interval: \"30s\"\nwrite_deadline: \"1m30s\"").unwrap();
    assert_eq!(o.ping_interval, Duration::from_secs(30));
    assert_eq!(o.write_deadline, Duration::from_secs(90));
    assert!(rep.warnings.is_empty());
    let (o, rep) = map("ping_interval: 45\nwrite_deadline: 3").unwrap();
    assert_eq!(o.ping_interval, Duration::from_secs(45));
    assert_eq!(o.write_deadline, Duration::from_secs(3));
    assert_eq!(rep.warnings.len(), 2);
    assert!(rep.warnings[0]
        .message
        .contains("should be converted to a duration"));
    let e = err("ping_interval: \"10 parsecs\"");
    assert!(e.message.contains("error parsing ping_interval"), "{e}");
    assert!(err("write_deadline: true").message.contains("duration"));
}

#[test]
fn lame_duck_settings() {
    let o = opts("lame_duck_duration: \"1m\"\nlame_duck_grace_period: \"5s\"");
    assert_eq!(o.lame_duck_duration, Duration::from_secs(60));
    assert_eq!(o.lame_duck_grace_period, Duration::from_secs(5));
    assert!(err("lame_duck_duration: \"10s\"")
        .message
        .contains("minimum is 30 seconds"));
    assert!(err("lame_duck_grace_period: \"-1s\"")
        .message
        .contains("positive"));
    // Go type-asserts a string here: a bare integer is an error.
    assert!(err("lame_duck_duration: 60")
        .message
        .contains("duration string"));
}

#[test]
fn logging_and_files() {
    let o = opts(concat!(
        "debug: true\ntrace: yes\nlogtime: false\nlog_file: /var/log/n.log\n",
        "pidfile: /run/n.pid\nports_file_dir: /tmp\n"
    ));
    assert!(o.debug && o.trace && !o.logtime);
    assert_eq!(o.log_file, Some(PathBuf::from("/var/log/n.log")));
    assert_eq!(o.pid_file, Some(PathBuf::from("/run/n.pid")));
    assert_eq!(o.ports_file_dir, Some(PathBuf::from("/tmp")));
    let o = opts("logfile: a.log\npid_file: b.pid");
    assert_eq!(o.log_file, Some(PathBuf::from("a.log")));
    assert_eq!(o.pid_file, Some(PathBuf::from("b.pid")));
    assert!(err("debug: 1").message.contains("boolean"));
}

#[test]
fn keys_are_case_insensitive() {
    let o = opts("PORT: 4999\nDebug: true");
    assert_eq!(o.port, Some(4999));
    assert!(o.debug);
}

#[test]
fn unknown_keys_error_at_the_key() {
    let e = err("port: 1\n  foo: 2");
    assert_eq!(e.to_string(), "t.conf:2:3: unknown field \"foo\"");
    let e = err("authorization { usr: a }");
    assert!(e.message.contains("unknown field \"usr\""), "{e}");
    let e = err("tls { cert_file: a, key_file: b, bogus: 1 }");
    assert!(e.message.contains("bogus"), "{e}");
}

#[test]
fn keys_used_as_variables_are_not_unknown() {
    let o = opts("my_port = 4777\nport: $my_port");
    assert_eq!(o.port, Some(4777));
    assert!(err("my_port = 4777").message.contains("my_port"));
}

#[test]
fn features_not_yet_implemented_are_ignored_and_reported() {
    let (o, rep) = map(concat!(
        "cluster { name: c1, listen: 0.0.0.0:6222, no_advertise: true }\n",
        "jetstream { store_dir: /data }\n",
        "websocket { port: 8080 }\nmqtt { port: 1883 }\noperator: /op.jwt\nresolver: MEMORY\n",
        "syslog: true\nserver_tags: [a]\n"
    ))
    .unwrap();
    assert!(o.no_advertise);
    let keys: Vec<&str> = rep.ignored.iter().map(|k| k.key.as_str()).collect();
    assert_eq!(
        keys,
        ["websocket", "mqtt", "operator", "resolver", "syslog",]
    );
    assert_eq!(rep.ignored[0].pos.line, 3);
    assert_eq!(o.server_tags, ["a"]);
}

#[test]
fn cluster_block() {
    let o = opts(concat!(
        "cluster {\n  name: c1\n  listen: 127.0.0.1:6333\n  advertise: \"10.0.0.1:6333\"\n",
        "  routes: [nats-route://ruser:T0p@127.0.0.1:6334, \"nats://127.0.0.1:6335\"]\n",
        "  authorization { user: ruser, password: T0p, timeout: 0.5 }\n",
        "  permissions { import: [\"a.>\"], export: { allow: [\"b.>\"], deny: [\"b.x\"] } }\n",
        "  connect_retries: 3\n  pool_size: 3\n  no_advertise: true\n",
        "  accounts: [A, B]\n  write_deadline: \"2s\"\n}\n"
    ));
    let c = o.cluster.expect("cluster");
    assert_eq!(c.name.as_deref(), Some("c1"));
    assert_eq!((c.host.as_str(), c.port), ("127.0.0.1", Some(6333)));
    assert_eq!(c.advertise.as_deref(), Some("10.0.0.1:6333"));
    assert_eq!(
        c.routes,
        [
            "nats-route://ruser:T0p@127.0.0.1:6334",
            "nats://127.0.0.1:6335"
        ]
    );
    assert_eq!(
        (c.user.as_deref(), c.password.as_deref()),
        (Some("ruser"), Some("T0p"))
    );
    assert_eq!(c.auth_timeout, Duration::from_millis(500));
    assert_eq!(c.import.expect("import").allow, ["a.>"]);
    assert_eq!(c.export.expect("export").deny, ["b.x"]);
    assert_eq!((c.connect_retries, c.pool_size), (3, Some(3)));
    assert_eq!(c.pinned_accounts, ["A", "B"]);
    assert_eq!(c.write_deadline, Some(Duration::from_secs(2)));
    assert!(o.no_advertise);
}

#[test]
fn cluster_port_forms_and_errors() {
    assert_eq!(opts("cluster { port: -1 }").cluster.expect("c").port, None);
    let c = opts("cluster { host: 127.0.0.1, port: 0 }")
        .cluster
        .expect("c");
    assert_eq!((c.host.as_str(), c.port), ("127.0.0.1", Some(6222)));
    assert!(err("cluster { bogus: 1 }").message.contains("bogus"));
    assert!(err("cluster { name: \"a b\" }").message.contains("spaces"));
    assert!(err("cluster { authorization { users: [] } }")
        .message
        .contains("multiple users"));
}

#[test]
fn single_user_and_token() {
    let o = opts("authorization { user: derek, password: s3cr3t, timeout: 3 }");
    let a = &o.authorization;
    assert_eq!(
        (a.user.as_deref(), a.pass.as_deref()),
        (Some("derek"), Some("s3cr3t"))
    );
    assert_eq!(a.timeout, Some(Duration::from_secs(3)));
    assert!(o.auth_required());
    let o = opts("authorization { token: $2a$11$abc, timeout: 0.5 }");
    assert_eq!(o.authorization.token.as_deref(), Some("$2a$11$abc"));
    assert_eq!(o.authorization.timeout, Some(Duration::from_millis(500)));
    let o = opts("authorization { username: a, pass: b, timeout: \"2s\" }");
    assert_eq!(o.authorization.user.as_deref(), Some("a"));
    assert_eq!(o.authorization.timeout, Some(Duration::from_secs(2)));
    assert!(err("authorization { user: a, token: t }")
        .message
        .contains("user/pass and token"));
}

#[test]
fn users_array_with_permissions() {
    let nkey = nkeys::KeyPair::new_user().public_key();
    let src = format!(
        r#"
authorization {{
  default_permissions = {{ publish: "pub.>", subscribe: ["a", "b"] }}
  users = [
    {{ user: alice, password: a1, permissions: {{ publish: {{ allow: ["x.>"], deny: "x.y" }}, subscribe: {{ deny: [">"] }} }} }}
    {{ user: bob, password: b1, allowed_connection_types: ["STANDARD", "websocket"] }}
    {{ nkey: {nkey}, permissions: {{ sub: "q g", allow_responses: true }} }}
  ]
}}
"#
    );
    let o = opts(&src);
    let a = &o.authorization;
    let dp = a.default_permissions.as_ref().unwrap();
    assert_eq!(dp.publish.as_ref().unwrap().allow, ["pub.>"]);
    assert_eq!(dp.subscribe.as_ref().unwrap().allow, ["a", "b"]);
    assert_eq!(a.users.len(), 3);
    let alice = &a.users[0];
    assert_eq!(alice.username.as_deref(), Some("alice"));
    let p = alice.permissions.as_ref().unwrap();
    assert_eq!(p.publish.as_ref().unwrap().allow, ["x.>"]);
    assert_eq!(p.publish.as_ref().unwrap().deny, ["x.y"]);
    assert_eq!(p.subscribe.as_ref().unwrap().deny, [">"]);
    assert!(p.subscribe.as_ref().unwrap().allow.is_empty());
    assert_eq!(
        a.users[1].allowed_connection_types,
        ["STANDARD", "WEBSOCKET"]
    );
    assert!(a.users[1].permissions.is_none());
    let n = &a.users[2];
    assert_eq!(n.nkey.as_deref(), Some(nkey.as_str()));
    let np = n.permissions.as_ref().unwrap();
    assert_eq!(np.subscribe.as_ref().unwrap().allow, ["q g"]);
    assert_eq!(np.allow_responses, Some(ResponsePermission::default()));
    // allow_responses turns off the blanket publish allow.
    assert_eq!(np.publish, Some(SubjectPermission::default()));
}

#[test]
fn allow_responses_map_form() {
    let o = opts(
        "authorization { users: [ {user: a, permissions: { allow_responses: { max: 5, expires: \"1m\" } } } ] }",
    );
    let p = o.authorization.users[0].permissions.clone().unwrap();
    assert_eq!(
        p.allow_responses,
        Some(ResponsePermission {
            max: 5,
            expires: Duration::from_secs(60)
        })
    );
    let o =
        opts("authorization { users: [ {user: a, permissions: { allow_responses: false } } ] }");
    let p = o.authorization.users[0].permissions.clone().unwrap();
    assert_eq!((p.allow_responses, p.publish), (None, None));
    assert!(err(
        "authorization { users: [ {user: a, permissions: { allow_responses: { expires: 5 } } } ] }"
    )
    .message
    .contains("not a duration string"));
}

#[test]
fn user_errors() {
    assert!(err("authorization { users: [ {password: x} ] }")
        .message
        .contains("requires a user"));
    assert!(err("authorization { users: [ {nkey: UBAD} ] }")
        .message
        .contains("nkey"));
    assert!(err("authorization { users: [ {user: a}, {user: a} ] }")
        .message
        .contains("Duplicate user"));
    assert!(err("authorization { user: x, users: [ {user: a} ] }")
        .message
        .contains("users array"));
    assert!(
        err("authorization { users: [ {user: a, permissions: { publish: \"a..b\" } } ] }")
            .message
            .contains("not a valid subject")
    );
    assert!(
        err("authorization { users: [ {user: a, permissions: { pubish: \"a\" } } ] }")
            .message
            .contains("pubish")
    );
    assert!(
        err("authorization { users: [ {user: a, clients: [\"CARRIER_PIGEON\"]} ] }")
            .message
            .contains("connection type")
    );
    assert!(err("authorization { users: {user: a} }")
        .message
        .contains("array"));
}

#[test]
fn accounts_with_users_exports_imports() {
    let src = r#"
accounts {
  A {
    users: [ {user: a, password: pa} ]
    exports: [
      {stream: "a.>", accounts: [B]}
      {service: "svc.a", response: stream, threshold: "3s"}
      {service: "svc.c", response_type: chunked}
      {stream: "public.>"}
    ]
    default_permissions { publish: "a.>" }
  }
  B: {
    users = [ {user: b, pass: pb} ]
    imports = [
      {stream: {account: A, subject: "a.>"}, prefix: "from_a"}
      {stream: {account: A, subject: "public.>"}, to: "pub.>"}
      {service: {account: A, subject: "svc.a"}, to: "local.svc"}
      {service: {account: A, subject: "svc.c"}}
    ]
  }
  C {}
}
no_auth_user: b
system_account: C
"#;
    let (o, rep) = map(src).unwrap();
    assert!(rep.ignored.is_empty(), "{rep:?}");
    assert_eq!(o.system_account.as_deref(), Some("C"));
    assert_eq!(o.no_auth_user.as_deref(), Some("b"));
    let names: Vec<_> = o.accounts.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["A", "B", "C"]);
    let a = &o.accounts[0];
    assert_eq!(a.users[0].account.as_deref(), Some("A"));
    assert_eq!(
        a.default_permissions
            .as_ref()
            .unwrap()
            .publish
            .as_ref()
            .unwrap()
            .allow,
        ["a.>"]
    );
    assert_eq!(
        a.exports[0],
        ExportConfig {
            kind: ExportKind::Stream,
            subject: "a.>".into(),
            accounts: Some(vec!["B".into()]),
            response_type: ResponseType::Singleton,
            response_threshold: None,
        }
    );
    assert_eq!(a.exports[1].kind, ExportKind::Service);
    assert_eq!(a.exports[1].response_type, ResponseType::Stream);
    assert_eq!(
        a.exports[1].response_threshold,
        Some(Duration::from_secs(3))
    );
    assert_eq!(a.exports[2].response_type, ResponseType::Chunked);
    assert_eq!(a.exports[3].accounts, None);
    let b = &o.accounts[1];
    assert_eq!(b.users[0].account.as_deref(), Some("B"));
    let im = &b.imports;
    assert_eq!(
        im[0],
        ImportConfig {
            kind: ExportKind::Stream,
            account: "A".into(),
            subject: "a.>".into(),
            to: None,
            prefix: Some("from_a".into()),
        }
    );
    assert_eq!(im[1].to.as_deref(), Some("pub.>"));
    assert_eq!(
        (im[2].kind, im[2].to.as_deref()),
        (ExportKind::Service, Some("local.svc"))
    );
    assert_eq!(im[3].to, None);
    assert!(o.auth_required());
}

#[test]
fn accounts_as_name_list() {
    let o = opts("accounts: [A, B]");
    assert_eq!(o.accounts.len(), 2);
    assert!(o.accounts[1].users.is_empty());
}

#[test]
fn account_errors() {
    assert!(err("accounts { $G {} }").message.contains("Reserved"));
    assert!(err("accounts: [A, A]")
        .message
        .contains("Duplicate Account"));
    assert!(err("accounts { A: 1 }").message.contains("Expected map"));
    assert!(
        err("accounts { A { exports: [ {stream: a, response: stream} ] } }")
            .message
            .contains("non-service")
    );
    assert!(
        err("accounts { A { exports: [ {service: a, response: weird} ] } }")
            .message
            .contains("Unknown response type")
    );
    assert!(
        err("accounts { A { imports: [ {stream: {account: B}} ] } }")
            .message
            .contains("account name and a subject")
    );
    assert!(err(
        "accounts { A { imports: [ {stream: {account: B, subject: x}, to: y, prefix: z} ] } }"
    )
    .message
    .contains("'prefix' and a 'to'"));
    assert!(err("accounts { A { users: [{user: u}] }, B { users: [{user: u}] } }\nauthorization { timeout: 1 }")
        .message
        .contains("Duplicate user"));
    assert!(
        err("accounts { A { users: [{user: u}] } }\nauthorization { user: x, pass: y }")
            .message
            .contains("single user/pass and accounts")
    );
    assert!(err("accounts { A { bogus: 1 } }").message.contains("bogus"));
}

#[test]
fn account_features_not_yet_implemented_are_ignored() {
    let (_, rep) = map("accounts { A { jetstream: enabled, limits: {max_conn: 1} } }").unwrap();
    let keys: Vec<_> = rep.ignored.iter().map(|k| k.key.as_str()).collect();
    // `jetstream` is mapped now (AccountConfig::jetstream).
    assert_eq!(keys, ["accounts.A.limits"]);
}

#[test]
fn no_auth_user_must_exist() {
    assert!(err("no_auth_user: ghost")
        .message
        .contains("users are not defined"));
    assert!(
        err("authorization { users: [{user: a}] }\nno_auth_user: ghost")
            .message
            .contains("not present")
    );
}

#[test]
fn tls_block() {
    let o = opts(concat!(
        "tls {\n cert_file: \"./server.pem\"\n key_file: './key.pem'\n ca_file: ca.pem\n",
        " verify: true\n timeout: 3\n handshake_first: true\n cipher_suites: [a]\n}\n"
    ));
    let t = o.tls.as_ref().unwrap();
    assert_eq!(t.cert_file, PathBuf::from("./server.pem"));
    assert_eq!(t.key_file, PathBuf::from("./key.pem"));
    assert_eq!(t.ca_file, Some(PathBuf::from("ca.pem")));
    assert!(t.verify && !t.verify_and_map);
    assert_eq!(t.timeout, Duration::from_secs(3));
    assert_eq!(t.handshake_first, Some(Duration::ZERO));
    assert_eq!(o.auth_timeout(), Duration::from_secs(4));
    let o = opts("tls { cert_file: c, key_file: k, verify_and_map: true, timeout: \"500ms\", handshake_first: \"300ms\" }");
    let t = o.tls.unwrap();
    assert!(t.verify && t.verify_and_map);
    assert_eq!(t.timeout, Duration::from_millis(500));
    assert_eq!(t.handshake_first, Some(Duration::from_millis(300)));
    let t = opts("tls { cert_file: c, key_file: k, handshake_first: auto }")
        .tls
        .unwrap();
    assert_eq!(t.handshake_first, Some(Duration::from_millis(50)));
    let t = opts("tls { cert_file: c, key_file: k, timeout: 1.5, first: false }")
        .tls
        .unwrap();
    assert_eq!(
        (t.timeout, t.handshake_first),
        (Duration::from_millis(1500), None)
    );
    assert!(err("tls { key_file: k }").message.contains("cert_file"));
    assert!(
        err("tls { cert_file: c, key_file: k, handshake_first: sometimes }")
            .message
            .contains("invalid")
    );
}

#[test]
fn apply_keeps_what_the_file_does_not_set() {
    let mut o = Options {
        debug: true,
        ..Options::default()
    };
    let m = parse("port: 1234", Path::new("t.conf"), &NoIncludes, &NoEnv).unwrap();
    apply_conf(&mut o, &m).unwrap();
    assert!(o.debug);
    assert_eq!(o.port, Some(1234));
}

#[test]
fn a_realistic_file() {
    let src = r#"
# natsd test server
server_name: $NAME
listen: 0.0.0.0:4222
http: 8222
max_payload: 1MB
ping_interval: "2m"
include 'auth.conf'
"#;
    let fs: BTreeMap<PathBuf, String> = [(
        PathBuf::from("/etc/auth.conf"),
        "authorization { users = [ {user: $USER, password: $PASS} ] }".to_owned(),
    )]
    .into_iter()
    .collect();
    let env: BTreeMap<String, String> = [("NAME", "n1"), ("USER", "u"), ("PASS", "p")]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let m = parse(src, Path::new("/etc/natsd.conf"), &fs, &env).unwrap();
    let (o, _) = options_from_conf(&m).unwrap();
    assert_eq!(o.server_name.as_deref(), Some("n1"));
    assert_eq!(o.http_port, Some(8222));
    assert_eq!(o.max_payload, 1 << 20);
    assert_eq!(o.ping_interval, Duration::from_secs(120));
    assert_eq!(o.authorization.users[0].username.as_deref(), Some("u"));
    assert_eq!(o.authorization.users[0].password.as_deref(), Some("p"));
}

#[test]
fn jetstream_block_and_shorthands() {
    let o = opts("jetstream { store_dir: /data, max_mem: 1GB, max_file_store: -1, domain: hub, sync_interval: 1s }");
    let js = o.jetstream.unwrap();
    assert_eq!(js.store_dir, Some(PathBuf::from("/data")));
    assert_eq!(js.max_memory_store, Some(1 << 30));
    assert_eq!(js.max_file_store, None);
    assert_eq!(js.domain.as_deref(), Some("hub"));
    assert_eq!(js.sync_interval, Some(Duration::from_secs(1)));
    assert!(opts("jetstream: enabled").jetstream.is_some());
    assert!(opts("jetstream: true").jetstream.is_some());
    assert!(opts("jetstream: disabled").jetstream.is_none());
    assert!(opts("jetstream { enabled: false }").jetstream.is_none());
    assert!(opts("jetstream { sync_interval: always }")
        .jetstream
        .unwrap()
        .sync_interval
        .is_none());
    assert!(map("jetstream: 5").is_err());
}

#[test]
fn jetstream_strict_defaults_on_and_takes_a_boolean() {
    // Go 2.12: strict unless `strict: false`; anything but a boolean is a config error.
    assert!(opts("jetstream: enabled").jetstream.unwrap().strict);
    assert!(opts("jetstream { strict: true }").jetstream.unwrap().strict);
    assert!(
        !opts("jetstream { strict: false }")
            .jetstream
            .unwrap()
            .strict
    );
    assert!(map("jetstream { strict: 1 }").is_err());
    assert!(JetStreamConfig::default().strict);
}
