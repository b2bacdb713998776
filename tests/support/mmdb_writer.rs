//! A small MMDB writer for tests (MaxMind DB format 2.0, IPv6 tree, IPv4
//! networks under `::/96`): `tests/geoip_layouts.rs` writes databases of both
//! record layouts with it, and `tests/data/geo-sample.mmdb` is written by it
//! from `tests/data/geo-sample.csv` (included with `#[path]`).
#![allow(dead_code)]

/// MMDB data-section values.
pub enum V {
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

pub fn enc(v: &V, out: &mut Vec<u8>) {
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
pub fn write_mmdb(nets: Vec<(&str, V)>) -> Vec<u8> {
    write_mmdb_rs(nets, 24)
}

/// Writes an IPv6 MMDB with 24-, 28- or 32-bit records.
pub fn write_mmdb_rs(nets: Vec<(&str, V)>, record_size: u16) -> Vec<u8> {
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
