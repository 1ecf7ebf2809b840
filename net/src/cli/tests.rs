//! Command-line tests.

use super::*;

fn args(list: &[&str]) -> Result<Cli, CliError> {
    parse_args(list.iter().map(|s| (*s).to_owned()))
}

fn ok(list: &[&str]) -> Cli {
    args(list).unwrap_or_else(|e| panic!("{list:?}: {e}"))
}

#[test]
fn empty_is_default() {
    assert_eq!(ok(&[]), Cli::default());
}

#[test]
fn value_forms_and_dashes() {
    for form in [
        &["-p", "4333"][..],
        &["--p", "4333"],
        &["-port=4333"],
        &["--port", "4333"],
        &["--port=4333"],
        &["-p", "0x10ED"],
        &["-p", "010355"],
    ] {
        assert_eq!(ok(form).port, Some(4333), "{form:?}");
    }
    let c = ok(&["-a", "127.0.0.1", "--net=::1", "-n", "srv"]);
    assert_eq!(c.host.as_deref(), Some("::1"));
    assert_eq!(c.server_name.as_deref(), Some("srv"));
    assert_eq!(
        ok(&["--server_name", "x"]).server_name.as_deref(),
        Some("x")
    );
    assert_eq!(ok(&["--addr", "h"]).host.as_deref(), Some("h"));
}

#[test]
fn bool_flags() {
    let c = ok(&["-D", "--trace", "-T=false"]);
    assert_eq!(
        (c.debug, c.trace, c.logtime),
        (Some(true), Some(true), Some(false))
    );
    let c = ok(&["-D=false", "-V=0", "--debug=t"]);
    assert_eq!((c.debug, c.trace), (Some(true), Some(false)));
    assert!(matches!(
        args(&["-D=maybe"]),
        Err(CliError::BadValue { .. })
    ));
    // A bool flag does not eat the next argument: `true` is then a stray command.
    assert!(matches!(
        args(&["-D", "true"]),
        Err(CliError::UnknownCommand(_))
    ));
}

#[test]
fn combined_debug_trace_flags() {
    let c = ok(&["-DV"]);
    assert_eq!(
        (c.debug, c.trace, c.later.trace_verbose),
        (Some(true), Some(true), None)
    );
    let c = ok(&["-DVV"]);
    assert_eq!(
        (c.debug, c.trace, c.later.trace_verbose),
        (Some(true), Some(true), Some(true))
    );
    let c = ok(&["-VV"]);
    assert_eq!(
        (c.debug, c.trace, c.later.trace_verbose),
        (None, Some(true), Some(true))
    );
    // Not a bundle: -VD is no flag.
    assert_eq!(args(&["-VD"]), Err(CliError::UnknownFlag("VD".into())));
}

#[test]
fn unknown_and_missing() {
    assert_eq!(
        args(&["--max_payload", "1"]),
        Err(CliError::UnknownFlag("max_payload".into()))
    );
    assert_eq!(args(&["-x"]), Err(CliError::UnknownFlag("x".into())));
    assert_eq!(args(&["-p"]), Err(CliError::MissingValue("p".into())));
    assert!(matches!(
        args(&["-p", "abc"]),
        Err(CliError::BadValue { .. })
    ));
    assert!(matches!(
        args(&["-p", "-2"]),
        Err(CliError::BadValue { .. })
    ));
    assert!(matches!(
        args(&["-p", "70000"]),
        Err(CliError::BadValue { .. })
    ));
    assert!(matches!(
        args(&["---p", "1"]),
        Err(CliError::UnknownFlag(_))
    ));
    assert_eq!(
        args(&["-x"]).unwrap_err().to_string(),
        "flag provided but not defined: -x"
    );
}

#[test]
fn commands_and_terminators() {
    assert!(ok(&["version"]).version);
    assert!(ok(&["help"]).help);
    assert!(ok(&["-v"]).version && ok(&["--version"]).version);
    assert!(ok(&["-h"]).help && ok(&["--help"]).help && ok(&["--help_tls"]).help_tls);
    assert_eq!(
        args(&["start"]),
        Err(CliError::UnknownCommand("start".into()))
    );
    // Parsing stops at `--`: what follows is positional.
    assert!(ok(&["-D", "--", "version"]).version);
    assert_eq!(
        args(&["--", "-D"]),
        Err(CliError::UnknownCommand("-D".into()))
    );
}

#[test]
fn config_check_signal_and_files() {
    let c = ok(&[
        "-c",
        "/etc/natsd.conf",
        "-t",
        "-P",
        "/run/n.pid",
        "-l",
        "n.log",
    ]);
    assert_eq!(c.config, Some(PathBuf::from("/etc/natsd.conf")));
    assert!(c.check_config);
    assert_eq!(c.pid_file, Some(PathBuf::from("/run/n.pid")));
    assert_eq!(c.log_file, Some(PathBuf::from("n.log")));
    let c = ok(&["--signal", "reload=/run/n.pid", "--ports_file_dir", "/tmp"]);
    assert_eq!(
        c.signal,
        Some(SignalRequest {
            command: "reload".into(),
            pid: Some("/run/n.pid".into())
        })
    );
    assert_eq!(ok(&["-sl", "ldm"]).signal.unwrap().pid, None);
    assert!(matches!(
        args(&["--signal", "kill"]),
        Err(CliError::BadValue { .. })
    ));
    assert!(matches!(
        args(&["--signal", "stop="]),
        Err(CliError::BadValue { .. })
    ));
}

#[test]
fn later_features_are_recorded_with_warnings() {
    let c = ok(&[
        "-js",
        "-sd",
        "/data",
        "--cluster",
        "nats://0.0.0.0:6222",
        "--routes",
        "nats://a:6222",
        "--cluster_name",
        "c",
        "--no_advertise",
        "--connect_retries",
        "3",
        "-s",
    ]);
    assert_eq!(c.later.jetstream, Some(true));
    assert_eq!(c.later.store_dir.as_deref(), Some("/data"));
    assert_eq!(c.cluster_listen.as_deref(), Some("nats://0.0.0.0:6222"));
    assert_eq!(c.routes.as_deref(), Some("nats://a:6222"));
    assert_eq!(c.cluster_name.as_deref(), Some("c"));
    assert_eq!(c.connect_retries, Some(3));
    assert_eq!(c.later.syslog, Some(true));
    assert_eq!(c.no_advertise, Some(true));
    assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
    // -js and -sd are real now.
    let mut o = Options::default();
    c.apply(&mut o);
    let js = o.jetstream.unwrap();
    assert_eq!(js.store_dir.as_deref(), Some(std::path::Path::new("/data")));
}

#[test]
fn cluster_flags_become_cluster_options() {
    let c = ok(&[
        "--cluster",
        "nats://ruser:pw@127.0.0.1:6333",
        "--routes",
        "nats://127.0.0.1:6334, nats-route://u:p@127.0.0.1:6335",
        "--cluster_name",
        "c1",
        "--connect_retries",
        "2",
    ]);
    let mut o = Options::default();
    c.apply(&mut o);
    let cl = o.cluster.expect("cluster");
    assert_eq!((cl.host.as_str(), cl.port), ("127.0.0.1", Some(6333)));
    assert_eq!(
        (cl.user.as_deref(), cl.password.as_deref()),
        (Some("ruser"), Some("pw"))
    );
    assert_eq!(
        cl.routes,
        ["nats://127.0.0.1:6334", "nats-route://u:p@127.0.0.1:6335"]
    );
    assert_eq!(cl.name.as_deref(), Some("c1"));
    assert_eq!(cl.connect_retries, 2);
    let mut o = Options::default();
    ok(&["-p", "4333"]).apply(&mut o);
    assert!(o.cluster.is_none());
}

#[test]
fn apply_overrides_the_config() {
    let mut o = Options {
        debug: true,
        host: "10.0.0.1".into(),
        ..Options::default()
    };
    let c = ok(&[
        "-p",
        "-1",
        "-D=false",
        "-V",
        "-T=false",
        "--user",
        "u",
        "--pass",
        "p",
        "-m",
        "-1",
        "-ms",
        "8443",
        "--client_advertise",
        "adv:1",
        "-c",
        "x.conf",
    ]);
    c.apply(&mut o);
    assert_eq!(o.port, None);
    assert_eq!(o.host, "10.0.0.1");
    assert!(!o.debug && o.trace && !o.logtime);
    assert_eq!(o.authorization.user.as_deref(), Some("u"));
    assert_eq!(o.authorization.pass.as_deref(), Some("p"));
    assert_eq!((o.http_port, o.https_port), (Some(0), Some(8443)));
    assert_eq!(o.client_advertise.as_deref(), Some("adv:1"));
    assert_eq!(o.config_file, Some(PathBuf::from("x.conf")));
    // Zero ports and empty strings do not override.
    let mut o = Options {
        port: Some(5000),
        http_port: Some(8222),
        ..Options::default()
    };
    ok(&["-p", "0", "-m", "0", "-a", ""]).apply(&mut o);
    assert_eq!(
        (o.port, o.http_port, o.host.as_str()),
        (Some(5000), Some(8222), "0.0.0.0")
    );
    let mut o = Options::default();
    ok(&["--auth", "tok", "-p", "4333"]).apply(&mut o);
    assert_eq!(o.authorization.token.as_deref(), Some("tok"));
    assert_eq!(o.port, Some(4333));
}

#[test]
fn tls_flags() {
    assert_eq!(
        args(&["--tls"]),
        Err(CliError::Tls(
            "TLS Server certificate must be present and valid"
        ))
    );
    assert_eq!(
        args(&["--tlscert", "c.pem"]),
        Err(CliError::Tls(
            "TLS Server private key must be present and valid"
        ))
    );
    let c = ok(&[
        "--tlsverify",
        "--tlscert",
        "c.pem",
        "--tlskey",
        "k.pem",
        "--tlscacert",
        "ca",
    ]);
    let mut o = Options::default();
    c.apply(&mut o);
    let t = o.tls.unwrap();
    assert_eq!(t.cert_file, PathBuf::from("c.pem"));
    assert_eq!(t.key_file, PathBuf::from("k.pem"));
    assert_eq!(t.ca_file, Some(PathBuf::from("ca")));
    assert!(t.verify);
    // -tls=false wins over the other TLS flags and over the config file.
    let mut o = Options {
        tls: Some(TlsConfig::new("a".into(), "b".into())),
        ..Options::default()
    };
    ok(&["-tls=false", "--tlscert", "c"]).apply(&mut o);
    assert_eq!(o.tls, None);
}

#[test]
fn usage_mentions_every_main_flag() {
    for f in [
        "--port",
        "--config",
        "--signal",
        "-DVV",
        "--tlscert",
        "--http_port",
        "-ms",
    ] {
        assert!(USAGE.contains(f), "{f}");
    }
}
