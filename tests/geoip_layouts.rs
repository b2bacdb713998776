//! The GeoIP reader takes both MMDB layouts: MaxMind's
//! (`country.iso_code`, `continent.code`, `location.latitude/longitude`,
//! `registered_country` as a fallback) — checked on a database this test
//! writes with a small MMDB writer of its own — and the flat `country_code`
//! layout of the public ip-location-db databases (`tests/data/geo-sample.mmdb`
//! and a large one written here).

mod common;
use common::*;
use std::net::IpAddr;
use trafficmgr::Engine;
use trafficmgr::geo::{GeoTable, builtin};

#[path = "support/mmdb_writer.rs"]
mod mmdb_writer;
use mmdb_writer::*;

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

/// The rows of `tests/data/geo-sample.csv`.
fn sample_rows() -> Vec<(&'static str, &'static str)> {
    let text = std::fs::read_to_string(data("geo-sample.csv")).unwrap();
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (net, cc) = l.split_once(',').unwrap();
            let leak =
                |s: &str| -> &'static str { Box::leak(s.trim().to_string().into_boxed_str()) };
            (leak(net), leak(cc))
        })
        .collect()
}

fn flat(rows: &[(&'static str, &'static str)]) -> Vec<(&'static str, V)> {
    rows.iter()
        .map(|&(net, cc)| (net, V::Map(vec![("country_code", V::Str(cc))])))
        .collect()
}

/// `tests/data/geo-sample.mmdb` is what `tests/data/geo-sample.csv` gives
/// (`TM_WRITE_FIXTURES=1` rewrites it after an edit of the CSV).
#[test]
fn sample_database_is_written_from_its_csv() {
    let db = write_mmdb(flat(&sample_rows()));
    let path = data("geo-sample.mmdb");
    if std::env::var_os("TM_WRITE_FIXTURES").is_some() {
        std::fs::write(&path, &db).unwrap();
    }
    assert!(
        std::fs::read(&path).unwrap() == db,
        "{} is stale: run TM_WRITE_FIXTURES=1 cargo test --test geoip_layouts",
        path.display()
    );
}

#[test]
fn flat_layout_of_the_sample_database() {
    let g = GeoTable::load(&data("geo-sample.mmdb")).unwrap();
    assert_eq!(g.len(), sample_rows().len());
    for (ip, cc, cont, plen) in [
        ("8.8.8.8", "US", "NA", 24),
        ("81.2.69.160", "GB", "EU", 24),
        ("1.1.1.1", "AU", "OC", 24),
        ("133.1.1.1", "JP", "AS", 16),
        ("2001:4860:4860::8888", "US", "NA", 32),
        ("2a00:1450:4001::1", "IE", "EU", 29),
    ] {
        let (info, p) = g.lookup(ip.parse().unwrap()).unwrap();
        assert_eq!(code(info.country), cc, "{ip}");
        assert_eq!(p, plen, "{ip}");
        assert_eq!(builtin::continents()[info.continent as usize], cont, "{ip}");
        let c = builtin::country(cc).unwrap();
        assert_eq!(
            info.location(),
            Some((c.lat as f32 as f64, c.lon as f32 as f64)),
            "{ip}"
        );
    }
    assert!(g.lookup("192.0.2.1".parse::<IpAddr>().unwrap()).is_none());
}

/// Our bounded reader and MaxMind's crate read the same thing: every record
/// size, and a large flat-layout database written here.
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
    // A database of the flat layout and of a real one's size and shape
    // (120,000 networks of both families, /16 to /32 and /19 to /64), written
    // here; every network's prefix must come back as the lookup's scope.
    let ccs = ["US", "GB", "JP", "BR", "ZA", "AU", "DE", "IN", "FR", "CN"];
    let mut big: Vec<(&'static str, &'static str)> = Vec::new();
    let mut x4: u32 = 0x0100_0000;
    let mut x6: u128 = 0x2001u128 << 112;
    for i in 0..120_000u32 {
        let r = next();
        let cc = ccs[(r % 10) as usize];
        let net = if i % 3 == 0 {
            let plen = 19 + (r >> 8) as u32 % 46;
            let size = 1u128 << (128 - plen);
            x6 = x6.div_ceil(size) * size;
            let s = format!("{}/{plen}", std::net::Ipv6Addr::from(x6));
            x6 += size * (1 + (r >> 20) as u128 % 3);
            s
        } else {
            let plen =
                [16u32, 18, 20, 22, 23, 24, 24, 24, 25, 26, 28, 30, 32][(r >> 8) as usize % 13];
            let size = 1u64 << (32 - plen);
            let start = u64::from(x4).div_ceil(size) * size;
            if start + size >= 0xe000_0000 {
                continue;
            }
            x4 = (start + size * (1 + (r >> 20) % 2)) as u32;
            format!("{}/{plen}", std::net::Ipv4Addr::from(start as u32))
        };
        big.push((Box::leak(net.into_boxed_str()), cc));
    }
    let db = write_mmdb(flat(&big));
    let ours = GeoTable::from_bytes(&db, "flat.mmdb").unwrap();
    assert!(ours.len() > 100_000, "{} networks", ours.len());
    let theirs = maxminddb::Reader::from_source(db).unwrap();
    let (span4, span6) = (x4 - 0x0100_0000, x6 - (0x2001u128 << 112));
    let mut found = 0;
    for _ in 0..20_000 {
        let r = next();
        for ip in [
            IpAddr::V4(std::net::Ipv4Addr::from(0x0100_0000 + r as u32 % span4)),
            IpAddr::V6(std::net::Ipv6Addr::from(
                (0x2001u128 << 112) + (u128::from(r) << 64) % span6,
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
            found += usize::from(want.is_some());
        }
    }
    assert!(found > 10_000, "{found} probes hit a network");
}
