//! A config of many profiles (the generator of the memory benchmark,
//! `tools/make-many-profiles.rs`, at 12,000 profiles: large enough that
//! the config is parsed in chunks on several threads) answers every
//! profile as its own: subnet profiles by longest prefix with their
//! catch-all, priority profiles with their first endpoint, the other
//! methods with one of their own endpoints — before and after a reload.

mod common;
use common::*;
use std::net::Ipv4Addr;
use trafficmgr::Engine;

#[path = "../tools/make-many-profiles.rs"]
mod gen_profiles;
use gen_profiles::Kind;

const N: usize = 12_000;

/// What endpoint `e` of profile `i` answers to an A query.
fn answer_of(i: usize, e: usize) -> String {
    if e % 2 == 1 && gen_profiles::kind(i) != Kind::Multivalue {
        format!("e{e}.{}.example.", gen_profiles::name(i))
    } else {
        gen_profiles::address(i, e).to_string()
    }
}

fn texts(e: &Engine, i: usize, client: Ipv4Addr) -> Vec<String> {
    let name = format!("{}.tm.example", gen_profiles::name(i));
    let o = ask(e, &name, 1, Some(&client.to_string()), None);
    o.answer.iter().map(|a| a.2.clone()).collect()
}

fn check_all(e: &Engine) {
    for i in 0..N {
        let own: Vec<String> = (0..4).map(|x| answer_of(i, x)).collect();
        match gen_profiles::kind(i) {
            Kind::Subnet => {
                for k in 0..10 {
                    let (a, _) = gen_profiles::subnet_prefix(i, k);
                    let client = Ipv4Addr::from(u32::from(a) | 7);
                    let want = gen_profiles::expected(i, client).unwrap();
                    assert_eq!(
                        texts(e, i, client),
                        [answer_of(i, want)],
                        "profile {i}, prefix {k}"
                    );
                }
                // Outside every prefix: the catch-all endpoint.
                let out = Ipv4Addr::new(192, 0, 2, 1);
                assert_eq!(gen_profiles::expected(i, out), Some(3));
                assert_eq!(texts(e, i, out), [answer_of(i, 3)], "profile {i}");
            }
            Kind::Priority => {
                assert_eq!(
                    texts(e, i, Ipv4Addr::new(198, 51, 100, 1)),
                    [answer_of(i, 0)]
                );
            }
            Kind::Multivalue => {
                let got = texts(e, i, Ipv4Addr::new(198, 51, 100, 1));
                assert_eq!(got.len(), 3, "profile {i}: {got:?}");
                assert!(got.iter().all(|g| own.contains(g)), "profile {i}: {got:?}");
            }
            Kind::Performance | Kind::Weighted | Kind::Geographic => {
                let got = texts(e, i, Ipv4Addr::new(203, 0, 113, (i % 250) as u8));
                assert_eq!(got.len(), 1, "profile {i}: {got:?}");
                assert!(
                    own.contains(&got[0]),
                    "profile {i}: {got:?} not one of {own:?}"
                );
            }
        }
    }
    // Names that are not profiles stay NXDOMAIN.
    let o = ask(e, &format!("p{N}.tm.example"), 1, None, None);
    assert_eq!(o.rcode, trafficmgr::Rcode::NxDomain);
}

#[test]
fn many_profiles_answer_as_their_own() {
    let dir = fresh_dir("many");
    let path = dir.join("many.toml");
    let text = gen_profiles::config(N, None);
    assert!(
        text.len() > 4 << 20,
        "{} octets: not parsed in chunks",
        text.len()
    );
    std::fs::write(&path, &text).unwrap();
    let e = Engine::from_file(&path).unwrap();
    let s = e.snapshot();
    assert_eq!(s.profiles.len(), N);
    assert_eq!(s.endpoints.len(), 4 * N);
    // File order survives the chunks: profile i is p<i>.
    for i in [0, 1, N / 2, N - 1] {
        assert_eq!(&*s.profiles[i].fqdn, format!("p{i}.tm.example"));
    }
    drop(s);
    check_all(&e);
    e.reload().unwrap();
    check_all(&e);
}
