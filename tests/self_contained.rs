//! The repository is the whole product: no tracked file refers to a path
//! outside it. A relative path that climbs out of the repository from both
//! the file's folder and the top (`../../x`, the old sibling folder), or an
//! absolute path into a developer's machine (`/work/...`, `/home/...`),
//! fails this test; so does a reference to the old sibling folder
//! `shared/` of the project's first workspace.

use std::path::{Component, Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Tracked files (`git ls-files`), or every file but build output when the
/// tree is not a git checkout (a release tarball).
fn files() -> Vec<PathBuf> {
    let out = std::process::Command::new("git")
        .args(["ls-files", "-z"])
        .current_dir(root())
        .output();
    if let Ok(o) = out
        && o.status.success()
        && !o.stdout.is_empty()
    {
        return o
            .stdout
            .split(|&b| b == 0)
            .filter(|p| !p.is_empty())
            .map(|p| PathBuf::from(String::from_utf8_lossy(p).into_owned()))
            .collect();
    }
    fn walk(dir: &Path, rel: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap().flatten() {
            let name = e.file_name();
            let n = name.to_string_lossy();
            if n == "target" || n == ".git" || n == "bin" || n == "artifacts" {
                continue;
            }
            let p = e.path();
            if p.is_dir() {
                walk(&p, &rel.join(&name), out);
            } else {
                out.push(rel.join(&name));
            }
        }
    }
    let mut v = Vec::new();
    walk(&root(), Path::new(""), &mut v);
    v
}

/// `base/rel` normalised lexically; `None` if it climbs above `base`'s root
/// (depth counted from the repository top, `depth` levels down).
fn escapes(depth: usize, rel: &str) -> bool {
    let mut d = depth as isize;
    for c in Path::new(rel).components() {
        match c {
            Component::ParentDir => d -= 1,
            Component::Normal(_) => d += 1,
            _ => {}
        }
        if d < 0 {
            return true;
        }
    }
    false
}

/// The folder this repository once sat beside, spelt so that this file does
/// not itself contain the reference it looks for.
const SIBLING: &str = concat!("..", "/", "shared");

/// The references to outside paths in `text`, for a file `depth` folders
/// below the top.
fn outside_refs(text: &str, depth: usize) -> Vec<String> {
    let mut bad = Vec::new();
    let bytes = text.as_bytes();
    let path_char = |b: u8| b.is_ascii_alphanumeric() || b"._-/+".contains(&b);
    let mut i = 0;
    while i < bytes.len() {
        let start_ok = i == 0 || !path_char(bytes[i - 1]) || bytes[i - 1] == b'/';
        if start_ok && bytes[i..].starts_with(b"../") && (i == 0 || bytes[i - 1] != b'/') {
            let mut j = i;
            while j < bytes.len() && path_char(bytes[j]) {
                j += 1;
            }
            let p = &text[i..j];
            // Outside from the file's folder and from the top alike.
            if escapes(depth, p) && escapes(0, p) {
                bad.push(p.to_string());
            }
            i = j;
            continue;
        }
        i += 1;
    }
    for pat in [
        // The folder this repository once sat beside, however it is reached.
        SIBLING,
        "..\\shared",
        "/work/",
        "/home/",
        "shared/data/",
        "shared/tools/",
        "shared/notes/",
        "shared/SPEC",
    ] {
        let mut from = 0;
        while let Some(k) = text[from..].find(pat) {
            let at = from + k;
            let line_start = text[..at].rfind('\n').map_or(0, |n| n + 1);
            let line_end = text[at..].find('\n').map_or(text.len(), |n| at + n);
            bad.push(text[line_start..line_end].trim().to_string());
            from = at + pat.len();
        }
    }
    bad
}

#[test]
fn the_checker_sees_outside_references() {
    assert_eq!(outside_refs(&format!("see {SIBLING}/SPEC.md"), 0).len(), 3);
    assert_eq!(outside_refs("python3 ../../tools/x", 1), ["../../tools/x"]);
    assert!(!outside_refs("/home/dev/checkout/x", 0).is_empty());
    // From a subfolder, the sibling's path stays inside lexically; still caught.
    assert!(!outside_refs(&format!("see {SIBLING}/x"), 1).is_empty());
    assert!(!outside_refs(&format!("$(CURDIR)/{SIBLING}/x"), 0).is_empty());
    assert!(outside_refs("#[path = \"../tools/make-latency-table.rs\"]", 1).is_empty());
    assert!(outside_refs("cd .. && ls ../README.md", 1).is_empty());
    assert!(outside_refs("tm_engine_open_shared(a)", 0).is_empty());
}

#[test]
fn no_file_refers_to_a_path_outside_the_repository() {
    let me = Path::new("tests/self_contained.rs");
    let mut found = Vec::new();
    for f in files() {
        if f == me {
            continue;
        }
        let Ok(bytes) = std::fs::read(root().join(&f)) else {
            continue;
        };
        if bytes.contains(&0) {
            continue; // binary
        }
        let text = String::from_utf8_lossy(&bytes);
        let depth = f.components().count().saturating_sub(1);
        for r in outside_refs(&text, depth) {
            found.push(format!("{}: {r}", f.display()));
        }
    }
    assert!(
        found.is_empty(),
        "files refer to paths outside the repository:\n{}",
        found.join("\n")
    );
}
