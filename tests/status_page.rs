//! The status page (`/` of the control listener) as a person sees it:
//! Debian's headless `chromium` loads it from a live engine whose
//! endpoints are probed against real HTTP backends (one healthy, one
//! failing), one drained by the operator, with known answer counts; the
//! rendered DOM (`--dump-dom`, after the page's script has polled
//! `/status` twice) must show every profile and endpoint, its state,
//! admin override, probe result, answer count and rate; a screenshot is
//! taken too (`TM_STATUS_PAGE_PNG=path` keeps it, e.g. for
//! docs/status-page.png).

mod common;
use common::backend::{Backend, Mode};
use common::*;
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use trafficmgr::Engine;
use trafficmgr::health::AdminState;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn config(control: u16, ok: u16, failing: u16, spare: u16, admin: &std::path::Path) -> String {
    let admin = admin.display();
    format!(
        r#"
[engine]
control = "127.0.0.1:{control}"
admin_state = "{admin}"
watch_interval = "0s"

[[zone]]
name = "tm.example"
nameservers = ["ns1.tm.example"]

[[profile]]
name = "app"
routing = "priority"
ttl = 30
[profile.monitor]
protocol = "http"
interval = "1s"
timeout = "500ms"
tolerated_failures = 0

[[profile.endpoint]]
name = "eu-west"
addresses = ["192.0.2.1"]
priority = 1
probe = {{ host = "127.0.0.1", port = {ok} }}

[[profile.endpoint]]
name = "us-east"
addresses = ["192.0.2.2"]
priority = 2
probe = {{ host = "127.0.0.1", port = {failing} }}

[[profile.endpoint]]
name = "ap-south"
addresses = ["192.0.2.3"]
priority = 3
probe = {{ host = "127.0.0.1", port = {spare} }}

[[profile]]
name = "www"
routing = "weighted"

[[profile.endpoint]]
name = "blue"
target = "blue.example"
weight = 1

[[profile.endpoint]]
name = "green"
target = "green.example"
weight = 1
enabled = false
"#
    )
}

/// Runs chromium headless with `args` and the given URL; stdout, bounded
/// by a deadline (killed by PID past it).
fn chromium(profile_dir: &std::path::Path, args: &[&str], url: &str) -> String {
    let mut child = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--virtual-time-budget=5000",
        ])
        .arg(format!("--user-data-dir={}", profile_dir.display()))
        .args(args)
        .arg(url)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromium (scripts/install-deps.sh installs it)");
    let mut out = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut out, &mut s);
        s
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "chromium: {status}");
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill(); // by its PID
            let _ = child.wait();
            panic!("chromium did not finish within 60 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    reader.join().unwrap()
}

/// The rendered row of one endpoint.
fn row<'a>(dom: &'a str, profile: &str, endpoint: &str) -> &'a str {
    let key = format!("data-profile=\"{profile}\" data-endpoint=\"{endpoint}\"");
    let at = dom
        .find(&key)
        .unwrap_or_else(|| panic!("no row for {profile}/{endpoint} in\n{dom}"));
    let rest = &dom[at..];
    &rest[..rest.find("</tr>").unwrap()]
}

#[test]
fn the_status_page_shows_every_endpoint_in_a_browser() {
    let ok = Backend::start(Mode::Status(200));
    let failing = Backend::start(Mode::Status(503));
    let spare = Backend::start(Mode::Status(200));
    let port = free_port();
    let dir = fresh_dir("status-page");
    // The admin-state file forces the config-disabled green up: the page
    // shows the forced state beside the admin column (green stays Disabled).
    let admin = dir.join("admin.toml");
    std::fs::write(&admin, "\"www/green\" = \"up\"\n").unwrap();
    let e = Engine::from_toml(
        &config(port, ok.port, failing.port, spare.port, &admin),
        None,
    )
    .unwrap();
    assert!(e.wait_ready(Duration::from_secs(10)));
    wait_for(10, "us-east degraded", || {
        ep_status(&e, "app.tm.example", "us-east")["status"] == "Degraded"
    });
    e.set_admin_state("app", "ap-south", AdminState::Drain)
        .unwrap();
    wait_for(10, "the control listener", || {
        status(&e)["control"]["listening"] == true
    });
    // Known counts: 12 answers from eu-west, 5 from blue.
    for _ in 0..12 {
        assert_eq!(one(&e, "app.tm.example", 1, None, None), "192.0.2.1");
    }
    for _ in 0..5 {
        one(&e, "www.tm.example", 1, None, None);
    }

    let url = format!("http://127.0.0.1:{port}/");
    let dom = chromium(&dir.join("profile-dom"), &["--dump-dom"], &url);
    assert!(dom.contains("trafficmgr status"), "{dom}");
    for (p, routing) in [
        ("app.tm.example", "priority"),
        ("www.tm.example", "weighted"),
    ] {
        assert!(dom.contains(p), "{p} in\n{dom}");
        assert!(dom.contains(routing), "{routing} in\n{dom}");
    }
    let eu = row(&dom, "app.tm.example", "eu-west");
    assert!(eu.contains("state Online\">Online<"), "{eu}");
    assert!(eu.contains("admin-none\">none<"), "{eu}");
    assert!(eu.contains("up-1\">yes<"), "{eu}");
    assert!(eu.contains("HTTP 200"), "{eu}");
    assert!(eu.contains("answers\">12<"), "{eu}");
    // Two polls, no answers in between: a rate of 0.0 per second.
    assert!(eu.contains("rate\">0.0<"), "{eu}");
    let us = row(&dom, "app.tm.example", "us-east");
    assert!(us.contains("state Degraded\">Degraded<"), "{us}");
    assert!(us.contains("HTTP 503"), "{us}");
    assert!(us.contains("up-0\">no<"), "{us}");
    assert!(us.contains("answers\">0<"), "{us}");
    let ap = row(&dom, "app.tm.example", "ap-south");
    assert!(ap.contains("admin-drain\">drain<"), "{ap}");
    assert!(ap.contains("(api)"), "{ap}");
    assert!(ap.contains("up-0\">no<"), "{ap}");
    let blue = row(&dom, "www.tm.example", "blue");
    assert!(blue.contains("answers\">5<"), "{blue}");
    assert!(blue.contains("not probed"), "{blue}");
    let green = row(&dom, "www.tm.example", "green");
    assert!(green.contains("state Disabled\">Disabled<"), "{green}");
    assert!(green.contains("forced up"), "{green}");

    // The screenshot, a real PNG of the page.
    let png = dir.join("status-page.png");
    chromium(
        &dir.join("profile-shot"),
        &[
            &format!("--screenshot={}", png.display()),
            "--window-size=1200,800",
            "--hide-scrollbars",
        ],
        &url,
    );
    let bytes = std::fs::read(&png).expect("the screenshot");
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"));
    assert!(bytes.len() > 20_000, "{} octets", bytes.len());
    if let Ok(keep) = std::env::var("TM_STATUS_PAGE_PNG") {
        std::fs::copy(&png, keep).unwrap();
    }
    drop(e);
    let _ = std::fs::remove_dir_all(&dir);
}
