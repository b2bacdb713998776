//! A large config parsed in pieces: the text is cut before `[[profile]]`
//! header lines into chunks of about [`CHUNK`] octets, each chunk is parsed
//! as a TOML document of its own (on a few threads when there are many),
//! and the profiles are put back in file order.
//!
//! Why: the TOML parser builds a document tree of about 25 octets per octet
//! of text before serde reads it, so a 40 MB file of 100,000 profiles cost
//! a gigabyte of transient memory (and the page faults and allocator work
//! that come with it), twice over inside a host during a reload. A chunk's
//! tree is freed before the next is built.
//!
//! The cut is taken only where it cannot change the meaning: no multi-line
//! string anywhere (one could hide a header line), every header line after
//! the first cut belonging to a profile (`[[profile]]`, `[profile.…]`,
//! `[[profile.…]]`), and the part before the first cut defining no
//! profile. Anything else — and any chunk that does not parse — returns
//! `None`, and the caller parses the whole text as before, so errors keep
//! their line, column and key path and nothing the whole parse would
//! reject is accepted.

use super::raw::{RawConfig, RawProfile, parse_quiet, parse_quiet_without_profiles};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Smallest text cut into chunks (below it one parse is fast and small).
pub(super) const CHUNKED_MIN: usize = 4 << 20;

/// Octets of text per chunk (a chunk ends at the first cut after it).
const CHUNK: usize = 1 << 20;

/// Most threads a parse uses.
const MAX_THREADS: usize = 4;

/// The raw model of `src`, parsed in chunks, or `None` where it cannot be
/// (see the module doc).
pub(super) fn parse(src: &str) -> Option<RawConfig> {
    let (head_end, chunks) = cuts(src)?;
    let mut head = parse_quiet_without_profiles(src.get(..head_end)?)?;
    let parsed = parse_chunks(src, &chunks)?;
    head.profile.reserve(parsed.iter().map(Vec::len).sum());
    for p in parsed {
        head.profile.extend(p);
    }
    Some(head)
}

/// Where the part before the profiles ends, and the chunks (start, end)
/// after it; `None` where the text may not be cut.
fn cuts(src: &str) -> Option<(usize, Vec<(usize, usize)>)> {
    if src.contains("\"\"\"") || src.contains("'''") {
        return None;
    }
    let mut head_end = None;
    let mut chunks = Vec::new();
    let mut chunk_start = 0;
    let mut pos = 0;
    for line in src.split_inclusive('\n') {
        let t = line.trim_start_matches([' ', '\t']);
        if t.starts_with('[') {
            let header = t.trim_end();
            let rest = header.strip_prefix("[[profile]]");
            let new_profile =
                rest.is_some_and(|r| r.trim_start().is_empty() || r.trim_start().starts_with('#'));
            if new_profile {
                match head_end {
                    None => {
                        head_end = Some(pos);
                        chunk_start = pos;
                    }
                    Some(_) if pos - chunk_start >= CHUNK => {
                        chunks.push((chunk_start, pos));
                        chunk_start = pos;
                    }
                    Some(_) => {}
                }
            } else if head_end.is_some()
                && !(t.starts_with("[profile.") || t.starts_with("[[profile."))
            {
                // Another table after the first profile: not cut.
                return None;
            }
        }
        pos += line.len();
    }
    let head_end = head_end?;
    chunks.push((chunk_start, src.len()));
    Some((head_end, chunks))
}

/// The profiles of each chunk, in order; `None` if one does not parse or
/// defines anything else.
fn parse_chunks(src: &str, chunks: &[(usize, usize)]) -> Option<Vec<Vec<RawProfile>>> {
    let one = |i: usize| -> Option<Vec<RawProfile>> {
        let &(a, b) = chunks.get(i)?;
        let raw = parse_quiet(src.get(a..b)?)?;
        // The header check in `cuts` already keeps other tables out.
        (raw.zone.is_empty() && raw.region.is_empty()).then_some(raw.profile)
    };
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(MAX_THREADS)
        .min(chunks.len());
    if threads <= 1 {
        return (0..chunks.len()).map(one).collect();
    }
    // Threads take the next chunk from a shared counter; all are joined
    // before this returns (scoped).
    let next = AtomicUsize::new(0);
    let work = || {
        let mut done = Vec::new();
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            if i >= chunks.len() {
                return done;
            }
            done.push((i, one(i)));
        }
    };
    let mut results: Vec<Option<Vec<RawProfile>>> = Vec::new();
    results.resize_with(chunks.len(), || None);
    let ok = std::thread::scope(|s| {
        let mut handles = Vec::new();
        for _ in 1..threads {
            // A thread that cannot start leaves its share to the others.
            if let Ok(h) = std::thread::Builder::new()
                .name("tm-parse".into())
                .spawn_scoped(s, work)
            {
                handles.push(h);
            }
        }
        let mut all = work();
        for h in handles {
            match h.join() {
                Ok(d) => all.extend(d),
                Err(_) => return false,
            }
        }
        for (i, r) in all {
            if let Some(slot) = results.get_mut(i) {
                *slot = r;
            }
        }
        true
    });
    if !ok {
        return None;
    }
    results.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profiles(n: usize, pad: usize) -> String {
        let mut s = String::from(
            "[engine]\nwatch_interval = \"0s\"\n[[zone]]\nname = \"tm.example\"\nnameservers = [\"ns1.tm.example\"]\n",
        );
        for i in 0..n {
            s.push_str(&format!(
                "[[profile]] # {i}\nname = \"p{i}\"\nrouting = \"priority\"\n[profile.monitor]\npath = \"/{}\"\n\
                 [[profile.endpoint]]\nname = \"a\"\ntarget = \"a.example\"\n",
                "x".repeat(pad)
            ));
        }
        s
    }

    /// The chunks give what one parse gives, in the same order.
    #[test]
    fn same_as_one_parse() {
        let src = profiles(3000, 2000);
        assert!(src.len() > 3 * CHUNK);
        let (_, chunks) = cuts(&src).unwrap();
        assert!(chunks.len() >= 3, "{}", chunks.len());
        let a = parse(&src).unwrap();
        let b = parse_quiet(&src).unwrap();
        assert_eq!(format!("{a:?}"), format!("{b:?}"));
        assert_eq!(a.profile.len(), 3000);
        assert_eq!(a.profile[2999].name, "p2999");
    }

    /// Where a cut could change the meaning, or a chunk does not parse,
    /// there is no chunked result (the caller parses the whole text).
    #[test]
    fn refuses_what_it_cannot_cut() {
        let src = profiles(10, 0);
        assert!(parse(&src).is_some());
        // A multi-line string could hide a header line.
        let ml = format!("{src}[[profile]]\nname = \"\"\"x\"\"\"\n");
        assert!(parse(&ml).is_none());
        // A table after the profiles.
        let zone = format!("{src}[[zone]]\nname = \"b.example\"\n");
        assert!(parse(&zone).is_none());
        // A profile defined before the first header.
        let dotted = format!("profile = []\n{src}");
        assert!(parse(&dotted).is_none());
        // A chunk that is not valid on its own.
        let bad = format!("{src}[[profile]]\nname = \n");
        assert!(parse(&bad).is_none());
        // No profile at all.
        assert!(parse("[engine]\n").is_none());
    }
}
