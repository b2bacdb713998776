//! Probe settings checked at load: headers and paths that no probe could
//! ever send are errors (file:line:col and key path, like every rule), and
//! secret-looking headers sent where they can be read are warnings, logged
//! at warn level on load and reload and shown in the status report.

mod common;
use common::backend::{Backend, Mode};
use common::*;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use trafficmgr::{Engine, LogLevel};

const ZONE: &str = "[[zone]]\nname = \"tm.example\"\nnameservers = [\"ns1.tm.example\"]\n";

/// A profile `p` (line 4) whose monitor has the `monitor` lines (from line 10)
/// and one endpoint `a` probing 127.0.0.1:`port` with `probe` extra fields.
fn cfg(monitor: &str, probe: &str, port: u16) -> String {
    format!(
        "{ZONE}[[profile]]\nname = \"p\"\nrouting = \"priority\"\n[profile.monitor]\ninterval = \"1s\"\ntimeout = \"500ms\"\n{monitor}\n\
         [[profile.endpoint]]\nname = \"a\"\naddresses = [\"192.0.2.1\"]\nprobe = {{ host = \"127.0.0.1\", port = {port}{probe} }}\n"
    )
}

fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Before: each of these loaded, and the endpoint stayed Degraded forever
/// with "invalid uri character" or a header error from the HTTP client.
#[test]
fn unsendable_probe_headers_and_paths_are_rejected_at_load() {
    let port = closed_port();
    // (monitor lines, probe fields, key path, line, column, message part)
    let cases: &[(&str, &str, &str, usize, usize, &str)] = &[
        (
            "headers = { \"X-A\" = \"a\\r\\nX-Injected: 1\" }",
            "",
            "profile[0].monitor.headers.X-A",
            10,
            13,
            "line break",
        ),
        (
            "headers = { \"X-A\" = \"a\\nb\" }",
            "",
            "profile[0].monitor.headers.X-A",
            10,
            13,
            "line break",
        ),
        (
            "headers = { \"X-A\" = \"a\\u0000b\" }",
            "",
            "profile[0].monitor.headers.X-A",
            10,
            13,
            "NUL",
        ),
        (
            "headers = { \"X A\" = \"1\" }",
            "",
            "profile[0].monitor.headers.X A",
            10,
            13,
            "not a valid header name",
        ),
        (
            "headers = { \"X:A\" = \"1\" }",
            "",
            "profile[0].monitor.headers.X:A",
            10,
            13,
            "not a valid header name",
        ),
        (
            "headers = { \"\" = \"1\" }",
            "",
            "profile[0].monitor.headers.",
            10,
            13,
            "not a valid header name",
        ),
        (
            "headers = { Host = \"a b.example\" }",
            "",
            "profile[0].monitor.headers.Host",
            10,
            13,
            "not a host name",
        ),
        (
            "path = \"/health check\"",
            "",
            "profile[0].monitor.path",
            10,
            1,
            "not a valid URL path",
        ),
        (
            "path = \"/a\\tb\"",
            "",
            "profile[0].monitor.path",
            10,
            1,
            "not a valid URL path",
        ),
        (
            "path = \"/status#main\"",
            "",
            "profile[0].monitor.path",
            10,
            1,
            "fragment",
        ),
        (
            "path = \"health\"",
            "",
            "profile[0].monitor.path",
            10,
            1,
            "must start with `/`",
        ),
        (
            "",
            ", path = \"/up now\"",
            "profile[0].endpoint[0].probe.path",
            14,
            45,
            "not a valid URL path",
        ),
    ];
    for (monitor, probe, path, line, col, msg) in cases {
        let text = cfg(monitor, probe, port);
        let e = Engine::from_toml(&text, None).expect_err(&text);
        assert_eq!(e.path, *path, "{e}\n---\n{text}");
        assert_eq!((e.line, e.col), (*line, *col), "{e}\n---\n{text}");
        assert!(e.message.contains(msg), "{e}\n---\n{text}");
        assert!(
            e.to_string()
                .starts_with(&format!("<string>:{line}:{col}: {path}: ")),
            "{e}"
        );
        // Control characters of the input are shown escaped.
        assert!(!e.message.contains(['\r', '\n', '\0', '\t']), "{e:?}");
    }
}

/// What loads is what the probe sends: unusual but valid paths and header
/// values pass validation and the probe, and the backend sees them.
#[test]
fn unusual_but_valid_paths_and_headers_load_and_probe_ok() {
    let b = Backend::start(Mode::Status(200));
    let e = Engine::from_toml(
        &cfg(
            "path = \"/x/%20y;v=1?q=a|b&r={c}\"\nheaders = { \"X-Tab\" = \"a\\tb\", \"X-Any_Token.Name!\" = \"caf\u{e9}\", Host = \"www.example.com:8080\" }\nverify_tls = true",
            "",
            b.port,
        ),
        None,
    )
    .unwrap();
    assert!(e.wait_ready(Duration::from_secs(10)));
    let ep = ep_status(&e, "p.tm.example", "a");
    assert_eq!(ep["status"], "Online", "{ep}");
    let paths = b.paths.lock().unwrap().clone();
    assert!(
        paths.iter().any(|p| p == "/x/%20y;v=1?q=a|b&r={c}"),
        "{paths:?}"
    );
    let hosts = b.hosts.lock().unwrap().clone();
    assert!(
        hosts.iter().any(|h| h == "www.example.com:8080"),
        "{hosts:?}"
    );
}

type Logged = Arc<Mutex<Vec<(LogLevel, String)>>>;

fn engine_logging(text: &str) -> (Engine, Logged) {
    let logged: Logged = Arc::default();
    let l2 = logged.clone();
    let e = Engine::from_toml_with_log(
        text,
        None,
        Some(Box::new(move |lvl, msg| {
            l2.lock().unwrap().push((lvl, msg.to_string()))
        })),
    )
    .unwrap();
    (e, logged)
}

fn warnings(l: &Logged) -> Vec<String> {
    l.lock()
        .unwrap()
        .iter()
        .filter(|(lvl, _)| *lvl == LogLevel::Warn)
        .map(|(_, m)| m.clone())
        .collect()
}

/// Before: a secret header went over unverified HTTPS (the default) or
/// plain HTTP without a word.
#[test]
fn secret_headers_without_verified_tls_warn_naming_the_endpoint() {
    let port = closed_port();
    // Unverified HTTPS (verify_tls defaults to false): Authorization warns.
    let (e, logged) = engine_logging(&cfg(
        "protocol = \"https\"\nheaders = { Authorization = \"Bearer s3cret\", Accept = \"*/*\" }",
        "",
        port,
    ));
    let w = warnings(&logged);
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].starts_with("<string>:11:13: profile[0].monitor.headers.Authorization: "),
        "{}",
        w[0]
    );
    for part in [
        "`Authorization`",
        "without certificate verification",
        "endpoint(s) `a`",
        "profile `p.tm.example`",
    ] {
        assert!(w[0].contains(part), "{part}: {}", w[0]);
    }
    assert!(
        !w[0].contains("s3cret"),
        "the secret is not logged: {}",
        w[0]
    );
    let s = status(&e);
    assert_eq!(s["config"]["warnings"], serde_json::json!([w[0].clone()]));
    drop(e);

    // Plain HTTP: the secret travels in clear text; names by pattern.
    for h in [
        "Proxy-Authorization",
        "Cookie",
        "X-Api-Key",
        "X-Auth-Token",
        "x-client-secret",
    ] {
        let (_e, logged) = engine_logging(&cfg(
            &format!("protocol = \"http\"\nheaders = {{ \"{h}\" = \"v\" }}"),
            "",
            port,
        ));
        let w = warnings(&logged);
        assert_eq!(w.len(), 1, "{h}: {w:?}");
        assert!(w[0].contains("clear text over HTTP"), "{}", w[0]);
        assert!(w[0].contains(&format!("headers.{h}: ")), "{}", w[0]);
    }

    // No warning: verified HTTPS, TCP (sends no headers), harmless headers.
    for monitor in [
        "protocol = \"https\"\nverify_tls = true\nheaders = { Authorization = \"x\" }",
        "protocol = \"tcp\"\nheaders = { Authorization = \"x\" }",
        "protocol = \"https\"\nheaders = { Accept = \"*/*\", \"User-Agent\" = \"x\", Host = \"a.example\" }",
    ] {
        let (e, logged) = engine_logging(&cfg(monitor, "", port));
        assert_eq!(warnings(&logged), Vec::<String>::new(), "{monitor}");
        assert_eq!(status(&e)["config"]["warnings"], serde_json::json!([]));
    }
}

/// A reload that brings a secret header over unverified TLS logs the
/// warning too; the status report shows the warnings of the config in use.
#[test]
fn reload_logs_the_new_configs_warnings() {
    let port = closed_port();
    let dir = fresh_dir("probe-config-reload");
    let path = dir.join("tm.toml");
    std::fs::write(&path, cfg("protocol = \"https\"", "", port)).unwrap();
    let logged: Logged = Arc::default();
    let l2 = logged.clone();
    let e = Engine::from_file_with_log(
        &path,
        Some(Box::new(move |lvl, msg| {
            l2.lock().unwrap().push((lvl, msg.to_string()))
        })),
    )
    .unwrap();
    assert!(warnings(&logged).is_empty());
    std::fs::write(
        &path,
        cfg(
            "protocol = \"https\"\nheaders = { \"X-Session-Token\" = \"t\" }",
            "",
            port,
        ),
    )
    .unwrap();
    e.reload().unwrap();
    let w = warnings(&logged);
    assert_eq!(w.len(), 1, "{w:?}");
    let file = path.display().to_string();
    assert!(
        w[0].starts_with(&format!(
            "{file}:11:13: profile[0].monitor.headers.X-Session-Token: "
        )),
        "{}",
        w[0]
    );
    assert_eq!(
        status(&e)["config"]["warnings"],
        serde_json::json!([w[0].clone()])
    );
}
