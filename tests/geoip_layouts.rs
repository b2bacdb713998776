//! The GeoIP reader takes both MMDB layouts: MaxMind's
//! (`country.iso_code`, `continent.code`, `location.latitude/longitude`,
//! `registered_country` as a fallback) — checked on a database this test
//! writes with a small MMDB writer of its own — and the flat `country_code`
//! layout of `shared/data/geo-whois-asn-country.mmdb`.

mod common;
use common::*;
use std::net::IpAddr;
use trafficmgr::Engine;
use trafficmgr::geo::{GeoTable, builtin};

/// MMDB data-section values.
enum V {
    Str(&'static str),
    F64(f64),
    U16(u16),
    U32(u32),
    U64(u64),
    Map(Vec<(&'static str, V)>),
    Arr(Vec<V>),
}

fn ctrl(out: &mut Vec<u8>, ty: u8, size: usize) {
    assert!(size < 29);
    if ty <= 7 {
        out.push((ty << 5) | size as u8);
    } else {
        out.push(size as u8);
        out.push(ty - 7);
    }
}

fn enc(v: &V, out: &mut Vec<u8>) {
    match v {
        V::Str(s) => {
            ctrl(out, 2, s.len());
            out.extend_from_slice(s.as_bytes());
        }
        V::F64(f) => {
            ctrl(out, 3, 8);
            out.extend_from_slice(&f.to_be_bytes());
        }
        V::U16(n) => {
            ctrl(out, 5, 2);
            out.extend_from_slice(&n.to_be_bytes());
        }
        V::U32(n) => {
            ctrl(out, 6, 4);
            out.extend_from_slice(&n.to_be_bytes());
        }
        V::U64(n) => {
            ctrl(out, 9, 8);
            out.extend_from_slice(&n.to_be_bytes());
        }
        V::Map(kv) => {
            ctrl(out, 7, kv.len());
            for (k, v) in kv {
                enc(&V::Str(k), out);
                enc(v, out);
            }
        }
        V::Arr(items) => {
            ctrl(out, 11, items.len());
            for i in items {
                enc(i, out);
            }
        }
    }
}

/// Writes an IPv6 MMDB (24-bit records); IPv4 networks go under ::/96.
fn write_mmdb(nets: Vec<(&str, V)>) -> Vec<u8> {
    write_mmdb_rs(nets, 24)
}

/// Writes an IPv6 MMDB with 24-, 28- or 32-bit records.
fn write_mmdb_rs(nets: Vec<(&str, V)>, record_size: u16) -> Vec<u8> {
    // Trie: node = [left, right]; child: Node(i) | Data(j) | Empty.
    #[derive(Clone, Copy)]
    enum R {
        Empty,
        Node(usize),
        Data(usize),
    }
    let mut nodes: Vec<[R; 2]> = vec![[R::Empty, R::Empty]];
    let mut data = Vec::new();
    let mut offsets = Vec::new();
    for (i, (net, v)) in nets.iter().enumerate() {
        offsets.push(data.len());
        enc(v, &mut data);
        let n: ipnet::IpNet = net.parse().unwrap();
        let (bits, plen) = match n {
            ipnet::IpNet::V4(a) => (u128::from(u32::from(a.addr())), a.prefix_len() + 96),
            ipnet::IpNet::V6(a) => (u128::from(a.addr()), a.prefix_len()),
        };
        let mut cur = 0;
        for d in 0..plen {
            let bit = ((bits >> (127 - d)) & 1) as usize;
            if d + 1 == plen {
                nodes[cur][bit] = R::Data(i);
            } else {
                cur = match nodes[cur][bit] {
                    R::Node(n) => n,
                    _ => {
                        nodes.push([R::Empty, R::Empty]);
                        let n = nodes.len() - 1;
                        nodes[cur][bit] = R::Node(n);
                        n
                    }
                };
            }
        }
    }
    let count = nodes.len();
    let mut out = Vec::new();
    for node in &nodes {
        let [l, r] = node.map(|r| match r {
            R::Empty => count,
            R::Node(n) => n,
            R::Data(j) => count + 16 + offsets[j],
        });
        let (l, r) = (l as u32, r as u32);
        match record_size {
            24 => {
                out.extend_from_slice(&l.to_be_bytes()[1..]);
                out.extend_from_slice(&r.to_be_bytes()[1..]);
            }
            28 => {
                out.extend_from_slice(&l.to_be_bytes()[1..]);
                out.push(((l >> 24) as u8) << 4 | (r >> 24) as u8 & 0x0f);
                out.extend_from_slice(&r.to_be_bytes()[1..]);
            }
            _ => {
                out.extend_from_slice(&l.to_be_bytes());
                out.extend_from_slice(&r.to_be_bytes());
            }
        }
    }
    out.extend_from_slice(&[0u8; 16]);
    out.extend_from_slice(&data);
    out.extend_from_slice(b"\xAB\xCD\xEFMaxMind.com");
    let meta = V::Map(vec![
        ("binary_format_major_version", V::U16(2)),
        ("binary_format_minor_version", V::U16(0)),
        ("build_epoch", V::U64(1_700_000_000)),
        ("database_type", V::Str("GeoIP2-City")),
        (
            "description",
            V::Map(vec![("en", V::Str("trafficmgr test"))]),
        ),
        ("ip_version", V::U16(6)),
        ("languages", V::Arr(vec![V::Str("en")])),
        ("node_count", V::U32(count as u32)),
        ("record_size", V::U16(record_size)),
    ]);
    enc(&meta, &mut out);
    out
}

fn code(i: u16) -> String {
    String::from_utf8_lossy(&builtin::countries()[i as usize].code).into_owned()
}

#[test]
fn maxmind_layout() {
    let db = write_mmdb(vec![
        (
            "81.2.69.0/24",
            V::Map(vec![
                ("continent", V::Map(vec![("code", V::Str("EU"))])),
                ("country", V::Map(vec![("iso_code", V::Str("GB"))])),
                (
                    "location",
                    V::Map(vec![
                        ("latitude", V::F64(51.5)),
                        ("longitude", V::F64(-0.12)),
                    ]),
                ),
            ]),
        ),
        (
            "2001:db8:5::/48",
            V::Map(vec![("country", V::Map(vec![("iso_code", V::Str("JP"))]))]),
        ),
        (
            "198.51.100.0/24",
            V::Map(vec![(
                "registered_country",
                V::Map(vec![("iso_code", V::Str("BR"))]),
            )]),
        ),
    ]);
    let dir = std::env::temp_dir().join(format!("tm-geo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("city.mmdb");
    std::fs::write(&path, &db).unwrap();
    let g = GeoTable::load(&path).unwrap();

    let (gb, plen) = g.lookup("81.2.69.160".parse().unwrap()).unwrap();
    assert_eq!(code(gb.country), "GB");
    assert_eq!(builtin::continents()[gb.continent as usize], "EU");
    assert_eq!(gb.location(), Some((51.5, -0.12f32 as f64)));
    assert_eq!(plen, 24);
    // No location in the record: the country's centroid; continent from the country.
    let (jp, plen) = g.lookup("2001:db8:5::1".parse().unwrap()).unwrap();
    assert_eq!(code(jp.country), "JP");
    assert_eq!(builtin::continents()[jp.continent as usize], "AS");
    let c = builtin::country("JP").unwrap();
    assert_eq!(
        jp.location(),
        Some((c.lat as f32 as f64, c.lon as f32 as f64))
    );
    assert_eq!(plen, 48);
    let (br, _) = g.lookup("198.51.100.9".parse().unwrap()).unwrap();
    assert_eq!(code(br.country), "BR");
    assert!(g.lookup("192.0.2.1".parse::<IpAddr>().unwrap()).is_none());
    assert!(
        g.lookup("::ffff:81.2.69.1".parse::<IpAddr>().unwrap())
            .is_some()
    );

    // Performance routing uses the location (London is nearer uksouth than westeurope).
    let cfg = format!(
        "[engine]\ngeoip_db = \"{}\"\n[[zone]]\nname = \"tm.example\"\nnameservers = [\"ns1.tm.example\"]\n[[profile]]\nname = \"p\"\nrouting = \"performance\"\n[[profile.endpoint]]\nname = \"nl\"\ntarget = \"nl.example\"\nlocation = \"westeurope\"\n[[profile.endpoint]]\nname = \"uk\"\ntarget = \"uk.example\"\nlocation = \"uksouth\"\n[[profile.endpoint]]\nname = \"jp\"\ntarget = \"jp.example\"\nlocation = \"japaneast\"\n[[profile.endpoint]]\nname = \"br\"\ntarget = \"br.example\"\nlocation = \"brazilsouth\"\n",
        path.display()
    );
    let e = Engine::from_toml(&cfg, None).unwrap();
    assert_eq!(
        one(&e, "p.tm.example", 1, Some("81.2.69.160"), None),
        "uk.example."
    );
    assert_eq!(
        one(&e, "p.tm.example", 1, Some("2001:db8:5::1"), None),
        "jp.example."
    );
    assert_eq!(
        one(&e, "p.tm.example", 1, Some("198.51.100.9"), None),
        "br.example."
    );
}

#[test]
fn flat_layout_of_the_shared_database() {
    let g = GeoTable::load(&shared("data/geo-whois-asn-country.mmdb")).unwrap();
    assert!(g.len() > 100_000, "{} networks", g.len());
    for (ip, cc, cont) in [
        ("8.8.8.8", "US", "NA"),
        ("81.2.69.160", "GB", "EU"),
        ("1.1.1.1", "AU", "OC"),
        ("2001:4860:4860::8888", "US", "NA"),
    ] {
        let (info, _) = g.lookup(ip.parse().unwrap()).unwrap();
        assert_eq!(code(info.country), cc, "{ip}");
        assert_eq!(builtin::continents()[info.continent as usize], cont, "{ip}");
        let c = builtin::country(cc).unwrap();
        assert_eq!(
            info.location(),
            Some((c.lat as f32 as f64, c.lon as f32 as f64)),
            "{ip}"
        );
    }
}

/// Our bounded reader and MaxMind's crate read the same thing: every record
/// size, and a sample of addresses of the shared database.
#[test]
fn agrees_with_the_maxminddb_crate() {
    #[derive(serde::Deserialize)]
    struct Flat<'a> {
        #[serde(borrow)]
        country_code: Option<&'a str>,
    }
    #[derive(serde::Deserialize)]
    struct Named<'a> {
        #[serde(borrow)]
        iso_code: Option<&'a str>,
    }
    #[derive(serde::Deserialize)]
    struct City<'a> {
        #[serde(borrow)]
        country: Option<Named<'a>>,
    }
    let nets = || {
        (0..300u32)
            .map(|i| {
                let cc = ["GB", "JP", "BR", "US", "FR"][i as usize % 5];
                let net: &'static str = if i % 3 == 0 {
                    Box::leak(format!("2001:db8:{i:x}::/{}", 48 + i % 17).into_boxed_str())
                } else {
                    Box::leak(format!("10.{}.{}.0/{}", i / 7, i % 256, 24 + i % 9).into_boxed_str())
                };
                (
                    net,
                    V::Map(vec![("country", V::Map(vec![("iso_code", V::Str(cc))]))]),
                )
            })
            .collect::<Vec<_>>()
    };
    let mut probes: Vec<IpAddr> = Vec::new();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for _ in 0..3000 {
        let r = next();
        probes.push(IpAddr::V4(std::net::Ipv4Addr::from(
            0x0a00_0000 | (r as u32 & 0x00ff_ffff),
        )));
        probes.push(IpAddr::V6(std::net::Ipv6Addr::from(
            0x2001_0db8_0000_0000_0000_0000_0000_0000u128
                | u128::from(r) << 32 >> 32 & ((1u128 << 96) - 1)
                | u128::from(r & 0x1ff) << 80,
        )));
    }
    for rs in [24u16, 28, 32] {
        let db = write_mmdb_rs(nets(), rs);
        let ours = GeoTable::from_bytes(&db, "x.mmdb").unwrap();
        let theirs = maxminddb::Reader::from_source(db).unwrap();
        let mut found = 0;
        for ip in &probes {
            let want = theirs
                .lookup(*ip)
                .unwrap()
                .decode::<City>()
                .unwrap()
                .and_then(|c| c.country?.iso_code.map(str::to_string));
            let got = ours.lookup(*ip).map(|(i, _)| code(i.country));
            assert_eq!(got, want, "{ip} with {rs}-bit records");
            found += usize::from(want.is_some());
        }
        assert!(found > 100, "{found} probes hit a network");
    }
    let path = shared("data/geo-whois-asn-country.mmdb");
    let ours = GeoTable::load(&path).unwrap();
    let theirs = maxminddb::Reader::open_readfile(&path).unwrap();
    for _ in 0..20_000 {
        let r = next();
        for ip in [
            IpAddr::V4(std::net::Ipv4Addr::from(r as u32)),
            IpAddr::V6(std::net::Ipv6Addr::from(
                (0x2000u128 << 112) | (u128::from(r) << 64),
            )),
        ] {
            let res = theirs.lookup(ip).unwrap();
            let want = res
                .decode::<Flat>()
                .unwrap()
                .and_then(|f| f.country_code.and_then(builtin::country_index))
                .map(|i| i as u16);
            let got = ours.lookup(ip).map(|(i, plen)| {
                let net = res.network().unwrap();
                assert_eq!(plen, net.prefix(), "{ip}: network {net}");
                i.country
            });
            assert_eq!(got.filter(|c| *c != u16::MAX), want, "{ip}");
        }
    }
}
