//! Response-rate limiting for the front's UDP replies, with BIND's
//! `rate-limit` semantics (see the BIND 9 ARM, "Response Rate Limiting"):
//!
//! - replies are accounted per client netblock (`ipv4-prefix-length`,
//!   default /24; `ipv6-prefix-length`, default /56) and per kind of reply:
//!   answers and NODATA by (qname, qtype), NXDOMAIN by the zone (the owner
//!   of the SOA in the authority section, so random names under one zone
//!   count together), errors (REFUSED, FORMERR, …) all together;
//! - each account earns `rate` credits per second, holds at most `rate`,
//!   and goes at most `window × rate` into debt; a reply spends one credit;
//!   with none left the reply is dropped, except that the first and then
//!   every `slip`-th limited reply "slips": it goes out truncated (TC=1,
//!   question only, plus a bare OPT when the query had EDNS) so a real
//!   client retries over TCP, which is never limited. `slip = 0` never slips, `slip = 1` slips them all;
//! - an account untouched for more than `window` seconds starts afresh.
//!
//! The table is a fixed array allocated once: 4-way buckets chosen by a
//! keyed hash (SipHash with a random key, so spoofed sources cannot aim at
//! one bucket); a new account takes an empty way or evicts the one of its
//! bucket least recently used. Each account is one `AtomicU64` updated by
//! compare-and-swap: no lock, no allocation, no system call per reply.
//! Its time is 20 bits of seconds (12 days): an account untouched for a
//! multiple of that looks recent, and at worst stays limited one more
//! window. Its debt is at most min(window × rate, 524288).

use std::hash::{BuildHasher, Hasher};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};

/// Kinds of reply, each with its own rate (BIND: responses-, nodata-,
/// nxdomains-, errors-per-second).
pub const ANSWER: usize = 0;
pub const NODATA: usize = 1;
pub const NXDOMAIN: usize = 2;
pub const ERROR: usize = 3;

/// Settings, as the front's `--rrl-*` flags give them.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Credits per second by kind of reply; 0 = that kind is not limited.
    pub rates: [u32; 4],
    pub window: u32,
    pub slip: u32,
    pub ipv4_prefix: u8,
    pub ipv6_prefix: u8,
    pub max_table_size: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            rates: [0; 4],
            window: 15,
            slip: 2,
            ipv4_prefix: 24,
            ipv6_prefix: 56,
            max_table_size: 20_000,
        }
    }
}

impl Settings {
    pub fn enabled(&self) -> bool {
        self.rates.iter().any(|&r| r > 0)
    }
}

/// What to do with one reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Send,
    Drop,
    Slip,
}

const WAYS: usize = 4;
const BITS: u32 = 20;
const MASK: u64 = (1 << BITS) - 1;
const BIAS: i64 = 1 << (BITS - 1);
/// Bounds that keep every field of a packed account in its 20 bits.
pub const MAX_RATE: u32 = 1000;
pub const MAX_WINDOW: u32 = 3600;
pub const MAX_SLIP: u32 = 10;

/// One account: tag (20 bits, never 0 for a used way), last time (20 bits
/// of seconds), balance (20 bits, biased), slip counter (4 bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Account {
    tag: u32,
    ts: u32,
    balance: i64,
    slip_cnt: u32,
}

impl Account {
    fn unpack(v: u64) -> Account {
        Account {
            tag: (v & MASK) as u32,
            ts: ((v >> BITS) & MASK) as u32,
            balance: ((v >> (2 * BITS)) & MASK) as i64 - BIAS,
            slip_cnt: (v >> (3 * BITS)) as u32 & 0xf,
        }
    }

    fn pack(self) -> u64 {
        let b = (self.balance.clamp(-BIAS, BIAS - 1) + BIAS) as u64;
        u64::from(self.tag)
            | (u64::from(self.ts) & MASK) << BITS
            | (b & MASK) << (2 * BITS)
            | u64::from(self.slip_cnt & 0xf) << (3 * BITS)
    }
}

pub struct Rrl {
    s: Settings,
    keys: std::collections::hash_map::RandomState,
    table: Box<[AtomicU64]>,
    buckets_mask: usize,
    pub dropped: AtomicU64,
    pub slipped: AtomicU64,
}

impl Rrl {
    pub fn new(s: Settings) -> Rrl {
        let buckets = s.max_table_size.div_ceil(WAYS).max(1).next_power_of_two();
        let table = (0..buckets * WAYS).map(|_| AtomicU64::new(0)).collect();
        Rrl {
            s,
            keys: std::collections::hash_map::RandomState::new(),
            table,
            buckets_mask: buckets - 1,
            dropped: AtomicU64::new(0),
            slipped: AtomicU64::new(0),
        }
    }

    /// Number of accounts the table holds (fixed at start).
    pub fn capacity(&self) -> usize {
        self.table.len()
    }

    /// The verdict for the UDP reply `resp` to `client`, at `now` (seconds
    /// since some fixed start).
    pub fn check(&self, client: IpAddr, resp: &[u8], now: u32) -> Verdict {
        let Some((kind, h)) = self.key(client, resp) else {
            return Verdict::Send;
        };
        let rate = self.s.rates[kind];
        if rate == 0 {
            return Verdict::Send;
        }
        let v = self.debit(h, rate, now);
        match v {
            Verdict::Send => {}
            Verdict::Drop => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
            Verdict::Slip => {
                self.slipped.fetch_add(1, Ordering::Relaxed);
            }
        }
        v
    }

    /// BIND's `debit_rrl_entry` on the account of hash `h`.
    fn debit(&self, h: u64, rate: u32, now: u32) -> Verdict {
        let rate = i64::from(rate.min(MAX_RATE));
        let window = i64::from(self.s.window.clamp(1, MAX_WINDOW));
        let slip = self.s.slip.min(MAX_SLIP);
        let now = now & MASK as u32;
        let tag = ((h >> 40) & MASK) as u32 | 1;
        let base = (h as usize & self.buckets_mask) * WAYS;
        let ways = &self.table[base..base + WAYS];
        for _ in 0..8 {
            // The account of this key, else an empty way, else the way
            // least recently used.
            let mut pick = 0;
            let mut pick_age = -1i64;
            let mut found = None;
            for (i, w) in ways.iter().enumerate() {
                let v = w.load(Ordering::Relaxed);
                let a = Account::unpack(v);
                if v != 0 && a.tag == tag {
                    found = Some((i, v));
                    break;
                }
                let age = if v == 0 {
                    i64::MAX
                } else {
                    i64::from(now.wrapping_sub(a.ts) & MASK as u32)
                };
                if age > pick_age {
                    pick = i;
                    pick_age = age;
                }
            }
            let (i, old, mut a, age) = match found {
                Some((i, v)) => {
                    let a = Account::unpack(v);
                    let age = i64::from(now.wrapping_sub(a.ts) & MASK as u32);
                    (i, v, a, age)
                }
                None => {
                    let old = ways[pick].load(Ordering::Relaxed);
                    let a = Account {
                        tag,
                        ts: now,
                        balance: 0,
                        slip_cnt: 0,
                    };
                    (pick, old, a, i64::MAX)
                }
            };
            // Credit what the elapsed seconds earned.
            if age > window {
                a.balance = rate;
                a.slip_cnt = 0;
            } else if age > 0 {
                a.balance += rate * age;
                if a.balance > rate {
                    a.balance = rate;
                    a.slip_cnt = 0;
                }
            }
            a.ts = now;
            // Debit this reply.
            a.balance -= 1;
            let verdict = if a.balance >= 0 {
                Verdict::Send
            } else {
                a.balance = a.balance.max(-window * rate).max(-BIAS);
                if slip == 0 {
                    Verdict::Drop
                } else {
                    let first = a.slip_cnt == 0;
                    a.slip_cnt += 1;
                    if a.slip_cnt >= slip {
                        a.slip_cnt = 0;
                    }
                    if first { Verdict::Slip } else { Verdict::Drop }
                }
            };
            if ways[i]
                .compare_exchange(old, a.pack(), Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
                return verdict;
            }
        }
        Verdict::Send
    }

    /// The kind of `resp` and the hash of its account key: (netblock, kind,
    /// and qname + qtype, or the zone for NXDOMAIN). `None`: not a reply we
    /// can read (it is sent as is).
    fn key(&self, client: IpAddr, resp: &[u8]) -> Option<(usize, u64)> {
        if resp.len() < 12 {
            return None;
        }
        let rcode = resp[3] & 0x0f;
        let qd = u16::from_be_bytes([resp[4], resp[5]]);
        let an = u16::from_be_bytes([resp[6], resp[7]]);
        let kind = match rcode {
            0 if qd == 0 => ERROR,
            0 if an > 0 => ANSWER,
            0 => NODATA,
            3 if qd > 0 => NXDOMAIN,
            _ => ERROR,
        };
        let mut h = self.keys.build_hasher();
        h.write_u8(kind as u8);
        match client {
            IpAddr::V4(a) => netblock4(&mut h, a.octets(), self.s.ipv4_prefix),
            IpAddr::V6(a) => match a.to_ipv4_mapped() {
                Some(v4) => netblock4(&mut h, v4.octets(), self.s.ipv4_prefix),
                None => {
                    let p = self.s.ipv6_prefix.min(128);
                    let bits = u128::from(a);
                    let m = if p == 0 { 0 } else { u128::MAX << (128 - p) };
                    h.write_u8(6);
                    h.write_u128(bits & m);
                }
            },
        }
        if kind != ERROR {
            let qend = name_end(resp, 12)?;
            let qtype = resp.get(qend..qend + 2)?;
            if kind == NXDOMAIN {
                // The zone: the owner of the first authority record, else
                // the question name.
                let zone = skip_records(resp, qend + 4, an)
                    .filter(|&p| u16::from_be_bytes([resp[8], resp[9]]) > 0 && p < resp.len());
                hash_name(&mut h, resp, zone.unwrap_or(12))?;
            } else {
                h.write(qtype);
                hash_name(&mut h, resp, 12)?;
            }
        }
        Some((kind, h.finish()))
    }
}

fn netblock4(h: &mut impl Hasher, o: [u8; 4], prefix: u8) {
    let p = prefix.min(32);
    let bits = u32::from_be_bytes(o);
    let m = if p == 0 { 0 } else { u32::MAX << (32 - p) };
    h.write_u8(4);
    h.write_u32(bits & m);
}

/// The offset just past the (uncompressed or compressed) name at `at`.
fn name_end(m: &[u8], mut at: usize) -> Option<usize> {
    loop {
        let l = *m.get(at)?;
        match l {
            0 => return Some(at + 1),
            1..=63 => at += 1 + usize::from(l),
            0xc0..=0xff => {
                m.get(at + 1)?;
                return Some(at + 2);
            }
            _ => return None,
        }
    }
}

/// The offset past `n` resource records starting at `at`.
fn skip_records(m: &[u8], mut at: usize, n: u16) -> Option<usize> {
    for _ in 0..n {
        at = name_end(m, at)?;
        let rdlen = m.get(at + 8..at + 10)?;
        at += 10 + usize::from(u16::from_be_bytes([rdlen[0], rdlen[1]]));
    }
    Some(at)
}

/// Hashes the name at `at` (following compression pointers, at most 16),
/// label by label, in lower case.
fn hash_name(h: &mut impl Hasher, m: &[u8], mut at: usize) -> Option<()> {
    let mut hops = 0;
    let mut buf = [0u8; 64];
    loop {
        let l = *m.get(at)?;
        match l {
            0 => {
                h.write_u8(0);
                return Some(());
            }
            1..=63 => {
                let label = m.get(at + 1..at + 1 + usize::from(l))?;
                let b = &mut buf[..label.len()];
                b.copy_from_slice(label);
                b.make_ascii_lowercase();
                h.write_u8(l);
                h.write(b);
                at += 1 + usize::from(l);
            }
            0xc0..=0xff => {
                hops += 1;
                if hops > 16 {
                    return None;
                }
                at = usize::from(u16::from_be_bytes([l & 0x3f, *m.get(at + 1)?]));
            }
            _ => return None,
        }
    }
}

/// The offset past `n` questions starting at `at`.
fn skip_questions(m: &[u8], mut at: usize, n: u16) -> Option<usize> {
    for _ in 0..n {
        at = name_end(m, at)? + 4;
    }
    (at <= m.len()).then_some(at)
}

/// The class (payload size) and TTL (extended rcode, version, flags with
/// DO) of the reply's OPT record, if it has one (owned by the root).
fn find_opt(m: &[u8]) -> Option<([u8; 2], [u8; 4])> {
    let count = |i: usize| u16::from_be_bytes([m[i], m[i + 1]]);
    let at = skip_questions(m, 12, count(4))?;
    let mut at = skip_records(m, at, count(6).checked_add(count(8))?)?;
    for _ in 0..count(10) {
        let end = name_end(m, at)?;
        let fixed = m.get(end..end + 10)?;
        if fixed[..2] == [0, 41] && end == at + 1 && m[at] == 0 {
            return Some((
                [fixed[2], fixed[3]],
                [fixed[4], fixed[5], fixed[6], fixed[7]],
            ));
        }
        at = skip_records(m, at, 1)?;
    }
    None
}

/// Turns the reply in `out[..len]` into its slipped form in place: header,
/// question and, when the reply has an OPT record (the query had EDNS), a
/// bare copy of it — same payload size (1232), extended rcode, version and
/// DO bit, no options (no ECS: the reply answers nothing, and the client
/// retries over TCP, where it gets the real answer and its scope). TC=1.
/// Returns the new length.
pub fn truncate(out: &mut [u8], len: usize) -> usize {
    if len < 12 || len > out.len() {
        return len.min(out.len());
    }
    let opt = find_opt(&out[..len]);
    let qd = u16::from_be_bytes([out[4], out[5]]);
    let mut end = if qd == 1 {
        match name_end(&out[..len], 12) {
            Some(e) if e + 4 <= len => e + 4,
            _ => 12,
        }
    } else {
        12
    };
    if end == 12 {
        out[4] = 0;
        out[5] = 0;
    }
    out[2] |= 0x02;
    out[6..12].fill(0);
    // The OPT came after the question in the reply, so its 11 octets fit.
    if let Some((class, ttl)) = opt
        && end + 11 <= len
    {
        out[end..end + 3].copy_from_slice(&[0, 0, 41]);
        out[end + 3..end + 5].copy_from_slice(&class);
        out[end + 5..end + 9].copy_from_slice(&ttl);
        out[end + 9..end + 11].fill(0);
        out[11] = 1;
        end += 11;
    }
    end
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reply to `name`/`qtype` with `rcode` and `an` answers (counted in
    /// the header only), and for NXDOMAIN an authority record owned by the
    /// name's parent (a compression pointer, as a real reply has).
    fn reply(name: &str, qtype: u16, rcode: u8, an: u16) -> Vec<u8> {
        let mut m = vec![0x12, 0x34, 0x84, rcode, 0, 1];
        m.extend_from_slice(&an.to_be_bytes());
        m.extend_from_slice(&[0, u8::from(rcode == 3), 0, 0]);
        for l in name.split('.') {
            m.push(l.len() as u8);
            m.extend_from_slice(l.as_bytes());
        }
        m.push(0);
        m.extend_from_slice(&qtype.to_be_bytes());
        m.extend_from_slice(&[0, 1]);
        if rcode == 3 {
            let parent = 12 + 1 + name.split('.').next().map_or(0, str::len);
            m.extend_from_slice(&[0xc0 | (parent >> 8) as u8, parent as u8, 0, 6, 0, 1]);
            m.extend_from_slice(&[0, 0, 0, 60, 0, 0]);
        }
        m
    }

    fn limiter(rate: u32, window: u32, slip: u32, size: usize) -> Rrl {
        Rrl::new(Settings {
            rates: [rate; 4],
            window,
            slip,
            max_table_size: size,
            ..Settings::default()
        })
    }

    fn run(r: &Rrl, ip: &str, resp: &[u8], t: u32, n: usize) -> Vec<Verdict> {
        let ip: IpAddr = ip.parse().unwrap();
        (0..n).map(|_| r.check(ip, resp, t)).collect()
    }

    use Verdict::{Drop as D, Send as S, Slip as T};

    #[test]
    fn rrl_rate_then_slip_every_nth_as_bind() {
        let a = reply("www.tm.example", 1, 0, 1);
        let r = limiter(2, 15, 2, 1000);
        assert_eq!(run(&r, "192.0.2.1", &a, 0, 8), [S, S, T, D, T, D, T, D]);
        let r = limiter(2, 15, 3, 1000);
        assert_eq!(run(&r, "192.0.2.1", &a, 0, 8), [S, S, T, D, D, T, D, D]);
        let r = limiter(2, 15, 1, 1000);
        assert_eq!(run(&r, "192.0.2.1", &a, 0, 5), [S, S, T, T, T]);
        let r = limiter(2, 15, 0, 1000);
        assert_eq!(run(&r, "192.0.2.1", &a, 0, 5), [S, S, D, D, D]);
        assert_eq!(r.dropped.load(Ordering::Relaxed), 3);
    }

    #[test]
    fn rrl_credit_per_second_debt_bounded_by_the_window() {
        let a = reply("www.tm.example", 1, 0, 1);
        let r = limiter(2, 5, 0, 1000);
        // 30 at t=0: the debt stops at window × rate = 10.
        run(&r, "192.0.2.1", &a, 0, 30);
        // t=3: 3 s earned 6 → -4, still limited.
        assert_eq!(run(&r, "192.0.2.1", &a, 3, 1), [D]);
        // Untouched for more than the window: a fresh account.
        assert_eq!(run(&r, "192.0.2.1", &a, 9, 3), [S, S, D]);
        // -1 + one second's `rate` = 1 credit.
        assert_eq!(run(&r, "192.0.2.1", &a, 10, 3), [S, D, D]);
        // -2 + 4 s × 2 = 6, but never more than `rate` is held.
        assert_eq!(run(&r, "192.0.2.1", &a, 14, 3), [S, S, D]);
    }

    #[test]
    fn rrl_accounts_by_netblock_name_type_and_kind() {
        let r = limiter(1, 15, 0, 1000);
        let a = reply("www.tm.example", 1, 0, 1);
        assert_eq!(run(&r, "192.0.2.1", &a, 0, 2), [S, D]);
        // Same /24: same account. Other /24: its own.
        assert_eq!(run(&r, "192.0.2.200", &a, 0, 1), [D]);
        assert_eq!(run(&r, "192.0.3.1", &a, 0, 1), [S]);
        // IPv4-mapped IPv6 is the IPv4 client.
        assert_eq!(run(&r, "::ffff:192.0.2.7", &a, 0, 1), [D]);
        // Other name (any case is the same name), other type: own accounts.
        let upper = reply("WWW.TM.example", 1, 0, 1);
        assert_eq!(run(&r, "192.0.2.1", &upper, 0, 1), [D]);
        assert_eq!(
            run(&r, "192.0.2.1", &reply("api.tm.example", 1, 0, 1), 0, 1),
            [S]
        );
        assert_eq!(
            run(&r, "192.0.2.1", &reply("www.tm.example", 28, 0, 1), 0, 1),
            [S]
        );
        // IPv6 /56.
        assert_eq!(run(&r, "2001:db8:0:ff::1", &a, 0, 2), [S, D]);
        assert_eq!(run(&r, "2001:db8:0:1::9", &a, 0, 1), [D]);
        assert_eq!(run(&r, "2001:db8:0:100::1", &a, 0, 1), [S]);
        // NXDOMAIN for any name of a zone: one account (random names do not
        // escape); NODATA and errors have their own.
        assert_eq!(
            run(&r, "198.51.100.1", &reply("x1.tm.example", 1, 3, 0), 0, 1),
            [S]
        );
        assert_eq!(
            run(&r, "198.51.100.1", &reply("x2.tm.example", 1, 3, 0), 0, 1),
            [D]
        );
        assert_eq!(
            run(&r, "198.51.100.1", &reply("x2.tm.example", 1, 0, 0), 0, 1),
            [S]
        );
        assert_eq!(
            run(&r, "198.51.100.1", &reply("a.other", 1, 5, 0), 0, 1),
            [S]
        );
        assert_eq!(
            run(&r, "198.51.100.1", &reply("b.other", 1, 5, 0), 0, 1),
            [D]
        );
    }

    #[test]
    fn rrl_table_is_fixed_and_evicts_the_least_recently_used() {
        let a = reply("www.tm.example", 1, 0, 1);
        // One bucket of 4 ways.
        let r = limiter(1, 3600, 0, 4);
        assert_eq!(r.capacity(), 4);
        for (t, ip) in ["10.0.1.1", "10.0.2.1", "10.0.3.1", "10.0.4.1"]
            .iter()
            .enumerate()
        {
            run(&r, ip, &a, t as u32, 10);
        }
        // A fifth client takes the way of the oldest (10.0.1.1), which then
        // starts afresh; 10.0.4.1 is still in debt.
        assert_eq!(run(&r, "10.0.5.1", &a, 4, 1), [S]);
        assert_eq!(run(&r, "10.0.4.1", &a, 4, 1), [D]);
        assert_eq!(run(&r, "10.0.1.1", &a, 4, 1), [S]);
        // A flood of spoofed sources never grows it.
        let r = limiter(5, 15, 2, 1000);
        let cap = r.capacity();
        for i in 0..200_000u32 {
            let ip = IpAddr::from((i << 8).to_be_bytes());
            r.check(ip, &a, i / 10_000);
        }
        assert_eq!(r.capacity(), cap);
        assert!(cap <= 1024);
    }

    #[test]
    fn rrl_slipped_reply_keeps_a_bare_opt() {
        // An answer, an authority record, then the OPT (payload 1232, DO,
        // an ECS option) in the additional section after another record.
        let mut m = reply("www.tm.example", 1, 0, 1);
        m[9] = 1;
        m[11] = 2;
        let rr = [0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 1];
        for _ in 0..3 {
            m.extend_from_slice(&rr);
        }
        m.extend_from_slice(&[0, 0, 41, 0x04, 0xd0, 0, 0, 0x80, 0, 0, 8]);
        m.extend_from_slice(&[0, 8, 0, 4, 0, 1, 0, 0]);
        let q = 12 + 16 + 4;
        let n = m.len();
        let len = truncate(&mut m, n);
        assert_eq!(len, q + 11);
        assert_eq!(&m[4..12], &[0, 1, 0, 0, 0, 0, 0, 1]);
        assert_eq!(m[2] & 0x02, 0x02, "TC");
        assert_eq!(&m[q..len], &[0, 0, 41, 0x04, 0xd0, 0, 0, 0x80, 0, 0, 0]);
        // No OPT in the reply: none in the slipped one.
        let mut m = reply("www.tm.example", 1, 0, 1);
        m[11] = 1;
        m.extend_from_slice(&rr);
        let n = m.len();
        assert_eq!(truncate(&mut m, n), q);
        assert_eq!(m[11], 0);
        // Every cut of a reply with an OPT: no panic, never longer.
        let mut full = reply("www.tm.example", 1, 0, 0);
        full[11] = 1;
        full.extend_from_slice(&[0, 0, 41, 0x04, 0xd0, 0, 0, 0x80, 0, 0, 0]);
        for cut in 0..=full.len() {
            let mut c = full[..cut].to_vec();
            assert!(truncate(&mut c, cut) <= cut);
        }
    }

    #[test]
    fn rrl_slipped_reply_is_header_and_question_with_tc() {
        let mut m = reply("x.tm.example", 1, 3, 0);
        let qlen = 12 + 14 + 4;
        let n = m.len();
        let len = truncate(&mut m, n);
        assert_eq!(len, qlen);
        assert_eq!(m[2] & 0x02, 0x02, "TC");
        assert_eq!(&m[4..12], &[0, 1, 0, 0, 0, 0, 0, 0]);
        // Garbage never panics and keeps at most the header.
        let mut junk = [0xffu8; 20];
        assert!(truncate(&mut junk, 20) <= 20);
        let r = limiter(1, 15, 2, 16);
        for l in 0..40 {
            r.check("192.0.2.1".parse().unwrap(), &junk[..l.min(20)], 0);
        }
    }
}
