//! Probe settings checked at load: headers and paths that no probe could
//! ever send are errors (file:line:col and key path, like every rule).

mod common;
use common::backend::{Backend, Mode};
use common::*;
use std::time::Duration;
use trafficmgr::Engine;

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
