//! `wasmgate check`: exit 0 for a good config; otherwise every error, naming entity and field.

use crate::support::config::check_files;
use crate::support::gateway::run_cli;

fn check(config: &str) -> (i32, String) {
    check_files(config, None)
}

#[test]
fn a_good_config_passes() {
    let (code, out) = check(
        "[[services]]\nname = \"s\"\nurl = \"http://127.0.0.1:9\"\n[[services.routes]]\nname = \"r\"\npaths = [\"/\"]\n",
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("configuration is valid"));
}

#[test]
fn unknown_fields_are_rejected_with_their_line() {
    let (code, out) = check("[[services]]\nname = \"s\"\nurl = \"http://127.0.0.1:9\"\nretrys = 3\n");
    assert_eq!(code, 1);
    assert!(out.contains("line 4") && out.contains("unknown field `retrys`"), "{out}");
}

#[test]
fn every_error_is_reported() {
    let config = r#"
[server]
trusted_ips = ["not-an-ip"]

[[services]]
name = "dup"
url = "http://127.0.0.1:9"

[[services]]
name = "dup"
host = "pool"

[[upstreams]]
name = "pool"
[[upstreams.targets]]
target = "10.0.0.1:99999"

[[routes]]
name = "orphan"
service = "missing"
paths = ["/x"]

[[routes]]
name = "regex"
service = "dup"
paths = ["~/(unclosed"]

[[routes]]
name = "hosts"
service = "dup"
hosts = ["*.*.example.com"]

[[routes]]
name = "nothing"
service = "dup"

[[routes]]
name = "hosts"
service = "dup"
paths = ["relative"]
headers = { host = ["x"] }
"#;
    let (code, out) = check(config);
    assert_eq!(code, 1);
    for expected in [
        r#"server: trusted_ips[0]: "not-an-ip" is not an IP address or CIDR"#,
        r#"service "dup": "dup" is used by another service"#,
        r#"upstream "pool": targets[0].target: invalid address "10.0.0.1:99999""#,
        r#"route "orphan": service: no service is named "missing""#,
        r#"route "regex": paths[0]: invalid regex"#,
        r#"route "hosts": hosts[0]: invalid host "*.*.example.com""#,
        r#"route "nothing": must have at least one of `hosts`, `paths`, `methods` or `headers`"#,
        r#"route "hosts": name "hosts" is used by another route"#,
        r#"paths[0]: "relative" must start with '/'"#,
        "headers.host: `host` cannot be matched as a header",
    ] {
        assert!(out.contains(expected), "missing {expected:?} in:\n{out}");
    }
    assert!(out.lines().all(|l| l.starts_with("error: ")), "{out}");
}

#[test]
fn the_examples_are_valid() {
    crate::support::plugins::built();
    let examples = crate::support::plugins::repo().join("examples");
    for file in ["gateway.toml", "health-checked.toml"] {
        let (code, out, err) = run_cli(&["check", "-c", file], &examples);
        assert_eq!(code, 0, "{file}: {out}{err}");
    }
    // The TLS example, with the certificate its comment tells the reader to make.
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(examples.join("tls.toml"), dir.path().join("tls.toml")).unwrap();
    std::fs::create_dir(dir.path().join("certs")).unwrap();
    crate::support::upstream::self_signed(&dir.path().join("certs"), "api", "api.example.test");
    let (code, out, err) = run_cli(&["check", "-c", "tls.toml"], dir.path());
    assert_eq!(code, 0, "tls.toml: {out}{err}");
}

#[test]
fn balancing_and_health_check_mistakes_name_the_field() {
    let (code, out) = check(
        "[[upstreams]]\nname = \"u\"\nalgorithm = \"fancy\"\nhash_on = \"header\"\n\
         [upstreams.healthchecks]\nthreshold = 150\n[upstreams.healthchecks.active]\ntype = \"udp\"\n",
    );
    assert_eq!(code, 1);
    for expected in [
        "algorithm: \"fancy\" is not one of",
        "hash_on: \"header\" needs `hash_on_header`",
        "healthchecks.threshold: 150 is out of range",
        "healthchecks.active.type: \"udp\"",
    ] {
        assert!(out.contains(expected), "{expected:?} in:\n{out}");
    }
}

/// `tests/corpus/`: broken `gateway.toml` and `plugins.toml` files, each starting with
/// `# expect: TEXT`, the text (naming the field) that `wasmgate check` must print.
#[test]
fn the_malformed_config_corpus_is_refused_with_the_field_named() {
    crate::support::plugins::built();
    let corpus = crate::support::plugins::repo().join("tests/corpus");
    let mut checked = 0;
    for (dir, is_plugins_file) in [("gateway", false), ("plugins", true)] {
        let dir = corpus.join(dir);
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(|c: char| c.is_ascii_digit()))
            .collect();
        files.sort();
        for file in files {
            let text = std::fs::read_to_string(dir.join(&file)).unwrap();
            let expect = text.lines().next().and_then(|l| l.strip_prefix("# expect: ")).expect("an expect line");
            let args: Vec<&str> = match is_plugins_file {
                true => vec!["check", "-c", "gateway.base.toml", "--plugins", &file],
                false => vec!["check", "-c", &file],
            };
            let (code, out, err) = run_cli(&args, &dir);
            assert_eq!(code, 1, "{file} must be refused:\n{out}{err}");
            assert!(format!("{out}{err}").contains(expect), "{file}: {expect:?} not in:\n{out}{err}");
            checked += 1;
        }
    }
    assert!(checked >= 40, "{checked} files");
}

#[test]
fn check_reads_the_default_certificate() {
    let dir = tempfile::tempdir().unwrap();
    crate::support::upstream::self_signed(dir.path(), "a", "a.test");
    crate::support::upstream::self_signed(dir.path(), "b", "b.test");
    let write = |key: &str| {
        let server =
            format!("[server]\nproxy_listen = \"127.0.0.1:1 ssl\"\nssl_cert = \"a.crt\"\nssl_cert_key = \"{key}\"\n");
        std::fs::write(dir.path().join("gateway.toml"), server).unwrap();
    };
    write("a.key");
    let (code, out, err) = run_cli(&["check", "-c", "gateway.toml"], dir.path());
    assert_eq!(code, 0, "{out}{err}");
    write("b.key");
    let (code, out, err) = run_cli(&["check", "-c", "gateway.toml"], dir.path());
    assert!(code == 1 && err.contains("server: ssl_cert: the key does not belong to the certificate"), "{out}{err}");
    write("missing.key");
    let (code, _, err) = run_cli(&["check", "-c", "gateway.toml"], dir.path());
    assert!(code == 1 && err.contains("server: ssl_cert_key: cannot read"), "{err}");
}
