//! Parser tests: every syntax form, includes through an in-memory loader, variables from a map
//! environment, and error positions.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::*;

fn p(src: &str) -> Result<ConfMap, ConfError> {
    parse(src, Path::new("test.conf"), &NoIncludes, &NoEnv)
}

fn ok(src: &str) -> ConfMap {
    match p(src) {
        Ok(m) => m,
        Err(e) => panic!("parse failed: {e}\n---\n{src}"),
    }
}

fn get<'a>(m: &'a ConfMap, key: &str) -> &'a Value {
    m.get(key)
        .unwrap_or_else(|| panic!("no key {key} in {m:?}"))
}

fn s(v: &str) -> Value {
    Value::String(v.to_owned())
}

fn err(src: &str) -> ConfError {
    match p(src) {
        Ok(m) => panic!("expected an error, got {m:?}"),
        Err(e) => e,
    }
}

#[test]
fn three_assignment_styles() {
    let m = ok("a: 1\nb = 2\nc 3\nd:4\ne=5\n");
    for (k, v) in [("a", 1), ("b", 2), ("c", 3), ("d", 4), ("e", 5)] {
        assert_eq!(get(&m, k), &Value::Int(v), "{k}");
    }
    assert_eq!(
        m.entries()
            .iter()
            .map(|e| e.key.as_str())
            .collect::<Vec<_>>(),
        ["a", "b", "c", "d", "e"]
    );
}

#[test]
fn terminators_and_comments() {
    let m = ok("a: 1; b: 2, c: 3 # hash\n// slashes\nd: 'x' // trailing\n# last");
    assert_eq!(get(&m, "a"), &Value::Int(1));
    assert_eq!(get(&m, "b"), &Value::Int(2));
    assert_eq!(get(&m, "c"), &Value::Int(3));
    assert_eq!(get(&m, "d"), &s("x"));
    assert_eq!(m.len(), 4);
}

#[test]
fn maps_in_every_form() {
    let m = ok("a { x: 1 }\nb: { y = 2 }\nc = {\n  z 3\n  nested { deep: true }\n}\nd {}\n");
    let Value::Map(a) = get(&m, "a") else {
        panic!()
    };
    assert_eq!(get(a, "x"), &Value::Int(1));
    let Value::Map(b) = get(&m, "b") else {
        panic!()
    };
    assert_eq!(get(b, "y"), &Value::Int(2));
    let Value::Map(c) = get(&m, "c") else {
        panic!()
    };
    let Value::Map(n) = get(c, "nested") else {
        panic!()
    };
    assert_eq!(get(n, "deep"), &Value::Bool(true));
    assert_eq!(get(&m, "d"), &Value::Map(ConfMap::new()));
}

#[test]
fn map_entries_separated_by_commas_and_semicolons() {
    let m = ok("a { x: 1, y: 2; z: 3 }");
    let Value::Map(a) = get(&m, "a") else {
        panic!()
    };
    assert_eq!(a.len(), 3);
}

#[test]
fn brace_without_space_ends_key() {
    let m = ok("authorization{ user: a }");
    assert!(matches!(get(&m, "authorization"), Value::Map(_)));
}

#[test]
fn arrays_inline_and_multiline() {
    let m = ok("a: [1, 2, 3]\nb: [\n  'x'\n  \"y\" # comment\n  z\n]\nc = []\nd [ {k: v}, [1] ]");
    let ints = |v: &Value| match v {
        Value::Array(items) => items.iter().map(|n| n.value.clone()).collect::<Vec<_>>(),
        _ => panic!(),
    };
    assert_eq!(
        ints(get(&m, "a")),
        [Value::Int(1), Value::Int(2), Value::Int(3)]
    );
    assert_eq!(ints(get(&m, "b")), [s("x"), s("y"), s("z")]);
    assert_eq!(ints(get(&m, "c")), []);
    let d = ints(get(&m, "d"));
    assert!(matches!(&d[0], Value::Map(mm) if mm.get("k") == Some(&s("v"))));
    assert!(matches!(&d[1], Value::Array(x) if x.len() == 1));
}

#[test]
fn strings_quoted_and_bare() {
    let m = ok(concat!(
        "a: \"tab\\there\\nnl \\\"q\\\" back\\\\ \\x41\"\n",
        "b: 'raw \\n stays'\n",
        "c: bare.string-with_stuff\n",
        "d: nats://host:4222\n",
        "e: \"multi word\"\n",
        "'quoted key': 1\n",
        "\"dq key\" = 2\n",
        "f: \"é ünicode\"\n",
    ));
    assert_eq!(get(&m, "a"), &s("tab\there\nnl \"q\" back\\ A"));
    assert_eq!(get(&m, "b"), &s("raw \\n stays"));
    assert_eq!(get(&m, "c"), &s("bare.string-with_stuff"));
    assert_eq!(get(&m, "d"), &s("nats://host:4222"));
    assert_eq!(get(&m, "e"), &s("multi word"));
    assert_eq!(get(&m, "quoted key"), &Value::Int(1));
    assert_eq!(get(&m, "dq key"), &Value::Int(2));
    assert_eq!(get(&m, "f"), &s("é ünicode"));
}

#[test]
fn bad_escape_is_an_error() {
    let e = err("a: \"x\\q\"");
    assert!(e.message.contains("invalid escape"), "{e}");
    let e = err("a: \"\\xZZ\"");
    assert!(e.message.contains("hexadecimal"), "{e}");
}

#[test]
fn unterminated_strings() {
    assert!(err("a: \"abc").message.contains("end of file"));
    assert!(err("a: 'abc").message.contains("end of file"));
}

#[test]
fn size_suffixes_like_nats_server() {
    let cases = [
        ("1k", 1_000),
        ("1K", 1_000),
        ("1kb", 1024),
        ("1KB", 1024),
        ("2ki", 2048),
        ("1KiB", 1024),
        ("1m", 1_000_000),
        ("1MB", 1 << 20),
        ("1mib", 1 << 20),
        ("1g", 1_000_000_000),
        ("1GB", 1 << 30),
        ("1t", 1_000_000_000_000),
        ("1tb", 1 << 40),
        ("1p", 1_000_000_000_000_000),
        ("1pb", 1 << 50),
        ("1e", 1_000_000_000_000_000_000),
        ("2eb", 2 << 60),
        ("-2k", -2000),
    ];
    for (text, want) in cases {
        let m = ok(&format!("v: {text}\n"));
        assert_eq!(get(&m, "v"), &Value::Int(want), "{text}");
    }
    assert!(err("v: 8eb").message.contains("out of range"));
    assert!(err("v: 99999999999999999999")
        .message
        .contains("out of range"));
    assert!(err("v: 1kbb").message.contains("size suffix"));
}

#[test]
fn unquoted_2m_is_two_million_like_go() {
    // Go lexes `2m` as an integer with a size suffix, not a duration: quote durations.
    assert_eq!(get(&ok("v: 2m"), "v"), &Value::Int(2_000_000));
}

#[test]
fn number_prefixed_strings() {
    for text in ["10s", "1h30m", "500ms", "4222abc", "1x"] {
        assert_eq!(get(&ok(&format!("v: {text}")), "v"), &s(text), "{text}");
    }
}

#[test]
fn floats_ips_and_negatives() {
    let m = ok("a: 1.5\nb: -0.25\nc: 127.0.0.1:4222\nd: -42\ne: 0.0.0.0");
    assert_eq!(get(&m, "a"), &Value::Float(1.5));
    assert_eq!(get(&m, "b"), &Value::Float(-0.25));
    assert_eq!(get(&m, "c"), &s("127.0.0.1:4222"));
    assert_eq!(get(&m, "d"), &Value::Int(-42));
    assert_eq!(get(&m, "e"), &s("0.0.0.0"));
    assert!(err("a: .5").message.contains("digit"));
    assert!(err("a: 1.x").message.contains("digit after"));
    assert!(err("a: -x").message.contains("digit"));
}

#[test]
fn booleans_every_spelling() {
    for (t, b) in [
        ("true", true),
        ("TRUE", true),
        ("yes", true),
        ("on", true),
        ("On", true),
        ("false", false),
        ("no", false),
        ("off", false),
        ("False", false),
    ] {
        assert_eq!(get(&ok(&format!("v: {t}")), "v"), &Value::Bool(b), "{t}");
    }
    // Quoted, they stay strings.
    assert_eq!(get(&ok("v: \"true\""), "v"), &s("true"));
}

#[test]
fn datetimes() {
    let m = ok("d: 1979-05-27T07:32:00Z\ne: 1970-01-01T00:00:00Z");
    assert_eq!(get(&m, "d"), &Value::DateTime(296_638_320));
    assert_eq!(get(&m, "e"), &Value::DateTime(0));
    assert!(err("d: 1979-05-27").message.contains("ISO8601"));
    assert!(err("d: 1979-13-27T07:32:00Z")
        .message
        .contains("not a valid datetime"));
    assert!(err("d: 12-05").message.contains("Zulu"));
}

#[test]
fn block_strings() {
    let m = ok("b (\n  line one\n  line (two)\n)\nafter: 1\n");
    assert_eq!(get(&m, "b"), &s("\n  line one\n  line (two)"));
    assert_eq!(get(&m, "after"), &Value::Int(1));
    assert!(err("b (\n never closed").message.contains("block"));
}

#[test]
fn json_style_file() {
    let m = ok("{\n  \"port\": 4222,\n  \"debug\": true,\n  \"auth\": {\"user\": \"a\"}\n}\n");
    assert_eq!(get(&m, "port"), &Value::Int(4222));
    assert_eq!(get(&m, "debug"), &Value::Bool(true));
    assert!(matches!(get(&m, "auth"), Value::Map(_)));
}

#[test]
fn newline_between_key_and_value_in_maps() {
    let m = ok("a {\n  x\n  =\n  1\n}");
    let Value::Map(a) = get(&m, "a") else {
        panic!()
    };
    assert_eq!(get(a, "x"), &Value::Int(1));
    assert!(err("x =\n 1").message.contains("new line"));
}

#[test]
fn duplicate_key_keeps_place_takes_last_value() {
    let m = ok("a: 1\nb: 2\na: 3");
    assert_eq!(m.entries()[0].key, "a");
    assert_eq!(get(&m, "a"), &Value::Int(3));
    assert_eq!(m.entries()[0].value.pos.line, 3);
}

#[test]
fn positions_of_keys_and_values() {
    let m = ok("# comment\n\n  port: 4222\nauth {\n    user: \"bob\"\n}");
    let e = m.get_entry("port").unwrap();
    assert_eq!((e.key_pos.line, e.key_pos.col), (3, 3));
    assert_eq!((e.value.pos.line, e.value.pos.col), (3, 9));
    let Value::Map(a) = get(&m, "auth") else {
        panic!()
    };
    let u = a.get_entry("user").unwrap();
    assert_eq!((u.key_pos.line, u.key_pos.col), (5, 5));
    assert_eq!(u.value.pos.to_string(), "test.conf:5:11");
}

#[test]
fn error_positions_name_file_line_column() {
    let e = err("a: 1\nb: 2 3\n");
    assert_eq!((e.pos.line, e.pos.col), (2, 6));
    assert!(e.to_string().starts_with("test.conf:2:6: "), "{e}");
    let e = err("a {\n  x: 1\n");
    assert!(e.message.contains("end of file"), "{e}");
    let e = err("a: [1, 2");
    assert!(e.message.contains("end of file"), "{e}");
    let e = err("a: [,1]");
    assert!(e.message.contains("','"), "{e}");
    let e = err("= 1");
    assert!(e.message.contains("separator"), "{e}");
}

#[test]
fn variables_from_earlier_keys() {
    let m = ok("port_var: 4333\nport: $port_var\nname = \"srv\"\nn2: $name");
    assert_eq!(get(&m, "port"), &Value::Int(4333));
    assert_eq!(get(&m, "n2"), &s("srv"));
    assert!(m.get_entry("port_var").unwrap().used_as_variable);
    assert!(!m.get_entry("port").unwrap().used_as_variable);
    // The copied value carries the reference's position.
    assert_eq!(m.get_entry("port").unwrap().value.pos.line, 2);
}

#[test]
fn variables_are_block_scoped() {
    let src =
        "x: outer\na {\n  x: inner\n  v: $x\n}\nb {\n  v: $x\n  c { w: $x }\n}\nusers: [ {u: $x} ]";
    let m = ok(src);
    let Value::Map(a) = get(&m, "a") else {
        panic!()
    };
    assert_eq!(get(a, "v"), &s("inner"));
    let Value::Map(b) = get(&m, "b") else {
        panic!()
    };
    assert_eq!(get(b, "v"), &s("outer"));
    let Value::Map(c) = get(b, "c") else { panic!() };
    assert_eq!(get(c, "w"), &s("outer"));
    let Value::Array(us) = get(&m, "users") else {
        panic!()
    };
    assert!(matches!(&us[0].value, Value::Map(mm) if mm.get("u") == Some(&s("outer"))));
}

#[test]
fn map_values_can_be_variables() {
    let m = ok("perms = { publish: \"a.>\" }\nuser { permissions: $perms }");
    let Value::Map(u) = get(&m, "user") else {
        panic!()
    };
    assert!(matches!(get(u, "permissions"), Value::Map(_)));
}

#[test]
fn undefined_variable_is_an_error_at_the_reference() {
    let e = err("a: 1\nb: $nope");
    assert!(e.message.contains("'nope'"), "{e}");
    assert_eq!((e.pos.line, e.pos.col), (2, 4));
    // Later keys are not visible.
    assert!(p("a: $b\nb: 1").is_err());
}

#[test]
fn environment_fallback_is_parsed_as_a_value() {
    let env: BTreeMap<String, String> = [
        ("PORT", "4555"),
        ("NAME", "hello"),
        ("LIST", "[a, b]"),
        ("SIZE", "2MB"),
        ("SELF", "$SELF"),
        ("BAD", "\"open"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let m = parse(
        "p: $PORT\nn: $NAME\nl: $LIST\ns: $SIZE",
        Path::new("e.conf"),
        &NoIncludes,
        &env,
    )
    .unwrap();
    assert_eq!(get(&m, "p"), &Value::Int(4555));
    assert_eq!(get(&m, "n"), &s("hello"));
    assert!(matches!(get(&m, "l"), Value::Array(a) if a.len() == 2));
    assert_eq!(get(&m, "s"), &Value::Int(2 << 20));
    // Config keys shadow the environment.
    let m = parse("PORT: 1\np: $PORT", Path::new("e.conf"), &NoIncludes, &env).unwrap();
    assert_eq!(get(&m, "p"), &Value::Int(1));
    // A self-referencing variable errors instead of recursing forever.
    let e = parse("p: $SELF", Path::new("e.conf"), &NoIncludes, &env).unwrap_err();
    assert!(e.message.contains("SELF"), "{e}");
    let e = parse("p: $BAD", Path::new("e.conf"), &NoIncludes, &env).unwrap_err();
    assert_eq!(e.pos.line, 1);
    assert!(e.message.contains("BAD"), "{e}");
}

#[test]
fn bcrypt_hashes_are_not_variables() {
    let m = ok("pass: $2a$11$W2zko751KUvVy59mUTWmpOdWjpEm7Qs6hNB8QPnSmSBtzfCzUwnxK");
    assert_eq!(
        get(&m, "pass"),
        &s("$2a$11$W2zko751KUvVy59mUTWmpOdWjpEm7Qs6hNB8QPnSmSBtzfCzUwnxK")
    );
}

fn files(list: &[(&str, &str)]) -> BTreeMap<PathBuf, String> {
    list.iter()
        .map(|(p, s)| (PathBuf::from(p), (*s).to_owned()))
        .collect()
}

#[test]
fn includes_relative_to_the_including_file() {
    let fs = files(&[
        (
            "/etc/nats/main.conf",
            "port: 1\ninclude 'auth.conf'\ndebug: true\n",
        ),
        (
            "/etc/nats/auth.conf",
            "authorization { include \"sub/users.conf\" }\nport: 2\n",
        ),
        ("/etc/nats/sub/users.conf", "user: alice\npass = secret"),
    ]);
    let m = parse_file(Path::new("/etc/nats/main.conf"), &fs, &NoEnv).unwrap();
    assert_eq!(get(&m, "port"), &Value::Int(2));
    assert_eq!(get(&m, "debug"), &Value::Bool(true));
    let Value::Map(a) = get(&m, "authorization") else {
        panic!()
    };
    assert_eq!(get(a, "user"), &s("alice"));
    let pos = &a.get_entry("pass").unwrap().key_pos;
    assert_eq!(pos.to_string(), "/etc/nats/sub/users.conf:2:1");
}

#[test]
fn include_forms() {
    let fs = files(&[
        ("/x/a.conf", "a: 1"),
        ("/x/b.conf", "b: 2"),
        ("/x/c.conf", "c: 3"),
    ]);
    let m = parse(
        "include a.conf\ninclude 'b.conf'; include \"c.conf\" # done",
        Path::new("/x/main.conf"),
        &fs,
        &NoEnv,
    )
    .unwrap();
    assert_eq!(m.len(), 3);
    // `include` followed by a separator is an ordinary key.
    let m = ok("include: 5");
    assert_eq!(get(&m, "include"), &Value::Int(5));
}

#[test]
fn include_errors() {
    let fs = files(&[("/x/a.conf", "bad = ")]);
    let e = parse("include missing.conf", Path::new("/x/m.conf"), &fs, &NoEnv).unwrap_err();
    assert!(e.message.contains("missing.conf"), "{e}");
    assert_eq!(e.pos.to_string(), "/x/m.conf:1:9");
    let e = parse("\ninclude a.conf", Path::new("/x/m.conf"), &fs, &NoEnv).unwrap_err();
    assert_eq!(&*e.pos.file, Path::new("/x/a.conf"));
    let e = parse("include [a]", Path::new("/x/m.conf"), &fs, &NoEnv).unwrap_err();
    assert!(e.message.contains("include"), "{e}");
}

#[test]
fn include_cycles_error() {
    let fs = files(&[
        ("/c/a.conf", "x: 1\ninclude b.conf"),
        ("/c/b.conf", "include a.conf"),
        ("/c/self.conf", "include self.conf"),
    ]);
    let e = parse_file(Path::new("/c/a.conf"), &fs, &NoEnv).unwrap_err();
    assert!(e.message.contains("cycle"), "{e}");
    let e = parse_file(Path::new("/c/self.conf"), &fs, &NoEnv).unwrap_err();
    assert!(e.message.contains("cycle"), "{e}");
}

#[test]
fn include_depth_is_bounded() {
    // Each file includes one a directory deeper, so no path repeats: only the depth bound
    // stops it.
    struct Endless;
    impl ConfLoader for Endless {
        fn load(&self, _path: &Path) -> std::io::Result<String> {
            Ok("include sub/x.conf".to_owned())
        }
    }
    let e = parse(
        "include sub/x.conf",
        Path::new("/d/m.conf"),
        &Endless,
        &NoEnv,
    )
    .unwrap_err();
    assert!(e.message.contains("nest"), "{e}");
}

#[test]
fn included_files_do_not_see_outer_variables() {
    let fs = files(&[("/v/inc.conf", "y: $x")]);
    let e = parse(
        "x: 1\ninclude inc.conf",
        Path::new("/v/m.conf"),
        &fs,
        &NoEnv,
    )
    .unwrap_err();
    assert!(e.message.contains("'x'"), "{e}");
}

#[test]
fn value_after_include_without_terminator_errors() {
    assert!(p("a: 1 b: 2").is_err());
    assert!(p("a: [1 2]").is_err());
    assert!(p("a { b: 1 c }").is_err());
}

#[test]
fn never_panics_on_odd_input() {
    for src in [
        "",
        "   ",
        "#",
        "//",
        "/",
        "{",
        "}",
        "[",
        "]",
        "a",
        "a:",
        "a: [",
        "a: {",
        "a: (",
        "a: \"",
        "a: '",
        "a: \\",
        "a: -",
        "a: 1.",
        "a: 1999-",
        "a: $",
        "include",
        "include ",
        "'k",
        "\"k",
        "a: \"\\x4\"",
        "a b c d",
        ":::",
        "a { include }",
        "a: 0x10",
        "\u{feff}a: 1",
        "a: 1e",
    ] {
        let _ = p(src);
    }
}

#[test]
fn top_level_empty_and_comment_only_files() {
    assert!(ok("").is_empty());
    assert!(ok("# nothing\n// at all\n\n").is_empty());
}

#[test]
fn nesting_is_bounded() {
    let deep_maps = format!("a{}", "{a".repeat(2000));
    let err = parse(&deep_maps, Path::new("deep.conf"), &NoIncludes, &NoEnv).unwrap_err();
    assert!(err.to_string().contains("nest deeper"), "{err}");
    let deep_arrays = format!("a: {}", "[".repeat(8000));
    assert!(parse(&deep_arrays, Path::new("deep.conf"), &NoIncludes, &NoEnv).is_err());
    let ok = format!("a: {}1{}", "[".repeat(100), "]".repeat(100));
    assert!(parse(&ok, Path::new("ok.conf"), &NoIncludes, &NoEnv).is_ok());
}

#[test]
fn variable_expansion_is_bounded() {
    let mut src = String::from("b0: [1, 2]\n");
    for i in 1..40 {
        src.push_str(&format!("b{i}: [$b{}, $b{}]\n", i - 1, i - 1));
    }
    let err = parse(&src, Path::new("vars.conf"), &NoIncludes, &NoEnv).unwrap_err();
    assert!(err.to_string().contains("expand to more than"), "{err}");
}
