//! `examples/demo.toml` (what `make demo` serves) loads with nothing but the repository and
//! gives the answers the demo script shows.

mod common;
use common::*;
use std::path::PathBuf;
use trafficmgr::Engine;

#[test]
fn demo_answers_differ_by_subnet_and_method() {
    let e = Engine::from_file(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/demo.toml"))
        .unwrap();
    let p = "contoso.trafficmanager.example";
    assert_eq!(
        one(&e, p, 1, Some("127.0.0.1"), Some(("192.0.2.0", 24))),
        "contoso-us.cloudapp.example."
    );
    assert_eq!(
        one(&e, p, 1, Some("127.0.0.1"), Some(("198.51.100.0", 24))),
        "contoso-eu.cloudapp.example."
    );
    assert_eq!(
        one(&e, p, 1, Some("127.0.0.1"), Some(("203.0.113.0", 24))),
        "contoso-asia.cloudapp.example."
    );
    assert_eq!(
        one(&e, p, 28, Some("127.0.0.1"), Some(("2001:db8:1::", 48))),
        "contoso-eu.cloudapp.example."
    );
    assert_eq!(
        one(&e, "fabrikam.trafficmanager.example", 1, None, None),
        "192.0.2.10"
    );
    assert_eq!(
        one(&e, "fabrikam.trafficmanager.example", 28, None, None),
        "2001:db8::10"
    );
    let mut seen = std::collections::HashSet::new();
    for _ in 0..200 {
        seen.insert(one(&e, "tailspin.trafficmanager.example", 1, None, None));
    }
    assert_eq!(seen.len(), 2);
}
