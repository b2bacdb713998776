//! The admin-state file: an operator's overrides of endpoints, kept in a
//! small TOML file beside the configuration (`[engine] admin_state`), edited
//! by `trafficmgr drain|disable|enable|up|down|restore` and watched by the
//! engine (docs/OPERATIONS.md, "The admin-state file").
//!
//! ```toml
//! "app/eu-west" = "drain"
//! "*/canary-*" = "disabled"
//! "api.tm.example/fra" = "down"
//! ```
//!
//! Each key is `PROFILE/ENDPOINT`. Either half may hold the globs `*` (any
//! run of characters, also none) and `?` (one character); neither half may
//! hold `/`. The profile half matches a profile's name as written in the
//! config or its full name (any case, trailing dot optional); the endpoint
//! half matches the endpoint's name (any case).
//!
//! Values set one of two independent things:
//! - the admin state: `drain` (no new answers, still probed), `disabled`
//!   (not served, not probed), `enabled` (served even if the config says
//!   `enabled = false`);
//! - the monitor state: `up` or `down` force the endpoint Online or
//!   Degraded whatever its probes say (probes still run and are reported).
//!
//! When several keys match one endpoint, the most specific wins for each of
//! the two: a key without globs beats any glob; among globs, the one with
//! more literal characters; among equals, the key that sorts last.
//!
//! This module knows the format only; the engine applies it.

use crate::config::ConfigError;
use crate::config::line_col;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Largest admin-state file read (it names endpoints, not data).
pub(crate) const MAX_ADMIN_FILE: u64 = 4 << 20;

/// Most keys with globs in one file. Each is tried against every profile,
/// and against the endpoints of the profiles it matches, at each
/// application of the file; keys without globs are looked up, at any
/// number. (A file of 10,000 globs took 15 s a change on 10,000
/// endpoints, and held the engine's drop that long.)
pub(crate) const MAX_GLOB_KEYS: usize = 1000;

/// What a key of the file sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Setting {
    /// No new answers; still probed.
    Drain,
    /// Not served, not probed.
    Disabled,
    /// Served even if the config disables it.
    Enabled,
    /// Monitor state forced Online.
    Up,
    /// Monitor state forced Degraded.
    Down,
}

impl Setting {
    /// Every setting, in the order the docs list them.
    pub(crate) const ALL: [Setting; 5] = [
        Setting::Drain,
        Setting::Disabled,
        Setting::Enabled,
        Setting::Up,
        Setting::Down,
    ];

    /// The word in the file.
    pub fn as_str(self) -> &'static str {
        match self {
            Setting::Drain => "drain",
            Setting::Disabled => "disabled",
            Setting::Enabled => "enabled",
            Setting::Up => "up",
            Setting::Down => "down",
        }
    }

    /// Reads the word in the file.
    pub fn parse(s: &str) -> Option<Setting> {
        Setting::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// Whether it forces the monitor state (`up`, `down`) rather than
    /// setting the admin state.
    pub fn is_monitor(self) -> bool {
        matches!(self, Setting::Up | Setting::Down)
    }
}

/// One key of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// `PROFILE/ENDPOINT`, as written (globs allowed).
    pub pattern: String,
    /// What it sets.
    pub setting: Setting,
    /// 1-based line of the key in the file it was read from (0 when made
    /// in memory).
    pub line: usize,
}

/// The overrides that apply to one endpoint.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Resolved {
    /// `Drain`, `Disabled` or `Enabled`, if some key sets the admin state.
    pub admin: Option<Setting>,
    /// `Up` or `Down`, if some key forces the monitor state.
    pub monitor: Option<Setting>,
}

/// A whole admin-state file, keys in sorted order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AdminFile {
    /// The keys, sorted by pattern (as TOML tables are).
    pub entries: Vec<Entry>,
}

/// Checks a `PROFILE/ENDPOINT` key: one `/`, both halves non-empty, of the
/// characters names use plus the globs.
pub fn check_pattern(pattern: &str) -> Result<(), String> {
    let Some((p, e)) = pattern.split_once('/') else {
        return Err(format!(
            "`{pattern}` is not PROFILE/ENDPOINT (e.g. \"app/eu-west\", \"app/*\", \"*/eu-*\")"
        ));
    };
    if e.contains('/') {
        return Err(format!("`{pattern}` has more than one `/`"));
    }
    for (half, what) in [(p, "profile"), (e, "endpoint")] {
        if half.is_empty() {
            return Err(format!("`{pattern}`: the {what} half is empty"));
        }
        if half.len() > 255 {
            return Err(format!(
                "`{pattern}`: the {what} half is over 255 characters"
            ));
        }
        if let Some(c) = half
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '*' | '?')))
        {
            return Err(format!(
                "`{pattern}`: `{c}` cannot be in a {what} name (letters, digits, `-`, `_`, `.`, and the globs `*`, `?`)"
            ));
        }
    }
    Ok(())
}

/// Whether glob `pat` matches `text`, ignoring ASCII case. Iterative, with
/// one backtrack point: linear in practice, never exponential.
fn glob(pat: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pat.get(p) {
            Some(b'*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(&c) if c == b'?' || c.eq_ignore_ascii_case(&text[t]) => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    pat[p..].iter().all(|&c| c == b'*')
}

/// Whether `pattern` (`PROFILE/ENDPOINT`) names endpoint `endpoint` of the
/// profile called `name` in the config and `fqdn` in full.
pub fn matches(pattern: &str, name: &str, fqdn: &str, endpoint: &str) -> bool {
    let Some((p, e)) = pattern.split_once('/') else {
        return false;
    };
    let p = p.strip_suffix('.').unwrap_or(p).as_bytes();
    let name = name.strip_suffix('.').unwrap_or(name).as_bytes();
    let fqdn = fqdn.strip_suffix('.').unwrap_or(fqdn).as_bytes();
    (glob(p, name) || glob(p, fqdn)) && glob(e.as_bytes(), endpoint.as_bytes())
}

/// How specific a pattern is: exact keys first, then more literal characters.
fn specificity(pattern: &str) -> (bool, usize) {
    let globs = pattern.bytes().filter(|b| matches!(b, b'*' | b'?')).count();
    (globs == 0, pattern.len() - globs)
}

impl AdminFile {
    /// Parses the file's text; `file` names it in errors. Every error is
    /// `file:line:col: key: message`.
    pub fn parse(text: &str, file: &str) -> Result<AdminFile, ConfigError> {
        let at = |offset: usize, path: &str, message: String| {
            let (line, col) = line_col(text, offset);
            ConfigError {
                file: file.to_string(),
                line,
                col,
                path: path.to_string(),
                message,
            }
        };
        let map: BTreeMap<toml::Spanned<String>, toml::Spanned<toml::Value>> = toml::from_str(text)
            .map_err(|e| {
                let offset = e.span().map(|s| s.start).unwrap_or(0);
                at(offset, "", e.message().to_string())
            })?;
        // Lines by a search in the offsets of the newlines: a line count
        // from the start for each key made a file of 100,000 keys take
        // minutes (quadratic).
        let newlines: Vec<usize> = text.match_indices('\n').map(|(i, _)| i).collect();
        let line_of = |offset: usize| newlines.partition_point(|&n| n < offset) + 1;
        let mut entries = Vec::with_capacity(map.len());
        for (k, v) in map {
            let pattern = k.get_ref().clone();
            check_pattern(&pattern).map_err(|m| at(k.span().start, &pattern, m))?;
            let setting = match v.get_ref() {
                toml::Value::String(s) => Setting::parse(s),
                _ => None,
            }
            .ok_or_else(|| {
                at(
                    v.span().start,
                    &pattern,
                    "expected one of \"drain\", \"disabled\", \"enabled\", \"up\", \"down\"".into(),
                )
            })?;
            entries.push(Entry {
                pattern,
                setting,
                line: line_of(k.span().start),
            });
        }
        entries.sort_by(|a, b| a.pattern.cmp(&b.pattern));
        let globs = entries.iter().filter(|e| is_glob(&e.pattern)).count();
        if globs > MAX_GLOB_KEYS {
            let last = entries
                .iter()
                .filter(|e| is_glob(&e.pattern))
                .max_by_key(|e| e.line)
                .map(|e| e.line)
                .unwrap_or(0);
            return Err(ConfigError {
                file: file.to_string(),
                line: last,
                col: 1,
                path: String::new(),
                message: format!(
                    "{globs} keys with globs (`*`, `?`); at most {MAX_GLOB_KEYS} (name endpoints without globs, any number)"
                ),
            });
        }
        Ok(AdminFile { entries })
    }

    /// Reads and parses `path`. A file that does not exist is an empty
    /// file (no overrides); one that is not a regular file, or is larger
    /// than [`MAX_ADMIN_FILE`], is an error.
    pub fn read(path: &Path) -> Result<AdminFile, ConfigError> {
        let file = path.display().to_string();
        let fail = |message: String| ConfigError {
            file: file.clone(),
            line: 0,
            col: 0,
            path: String::new(),
            message,
        };
        // Only "not found" is an empty file: a path that cannot be looked
        // at (a folder without search permission) is an error, not "no
        // overrides".
        match std::fs::metadata(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(AdminFile::default());
            }
            Err(e) => return Err(fail(format!("cannot read: {e}"))),
            Ok(_) => {}
        }
        let bytes = crate::geo::read_data_file(path, MAX_ADMIN_FILE, "admin-state file")
            .map_err(|e| fail(e.message))?;
        let text = String::from_utf8(bytes).map_err(|_| fail("not UTF-8".into()))?;
        AdminFile::parse(&text, &file)
    }

    /// The file's text: a comment, then one key per line, sorted.
    pub fn render(&self) -> String {
        let mut s = String::from(
            "# trafficmgr admin state: \"PROFILE/ENDPOINT\" = \"drain\" | \"disabled\" | \"enabled\" | \"up\" | \"down\"\n\
             # Edited by `trafficmgr drain|disable|enable|up|down|restore`; docs/OPERATIONS.md.\n",
        );
        for e in &self.entries {
            s.push_str(&format!(
                "{} = \"{}\"\n",
                toml::Value::String(e.pattern.clone()),
                e.setting.as_str()
            ));
        }
        s
    }

    /// Sets `pattern` to `setting`, replacing what the same key set before.
    /// A key holds one setting: `up` on a drained key replaces `drain`.
    pub fn set(&mut self, pattern: &str, setting: Setting) -> Result<(), String> {
        check_pattern(pattern)?;
        match self.entries.iter_mut().find(|e| e.pattern == pattern) {
            Some(e) => e.setting = setting,
            None => {
                if is_glob(pattern)
                    && self.entries.iter().filter(|e| is_glob(&e.pattern)).count() >= MAX_GLOB_KEYS
                {
                    return Err(format!(
                        "`{pattern}`: the file has {MAX_GLOB_KEYS} keys with globs already, the most it may"
                    ));
                }
                self.entries.push(Entry {
                    pattern: pattern.to_string(),
                    setting,
                    line: 0,
                });
                self.entries.sort_by(|a, b| a.pattern.cmp(&b.pattern));
            }
        }
        Ok(())
    }

    /// Removes the key `pattern` (exactly as written); whether it was there.
    pub fn remove(&mut self, pattern: &str) -> bool {
        let before = self.entries.len();
        self.entries.retain(|e| e.pattern != pattern);
        self.entries.len() != before
    }

    /// The overrides of one endpoint: per kind, the most specific key that
    /// matches it.
    pub fn resolve(&self, name: &str, fqdn: &str, endpoint: &str) -> Resolved {
        let mut admin: Option<&Entry> = None;
        let mut monitor: Option<&Entry> = None;
        for e in &self.entries {
            if !matches(&e.pattern, name, fqdn, endpoint) {
                continue;
            }
            let slot = if e.setting.is_monitor() {
                &mut monitor
            } else {
                &mut admin
            };
            // Sorted by pattern: among equals, the later key wins.
            if slot.is_none_or(|b| specificity(&e.pattern) >= specificity(&b.pattern)) {
                *slot = Some(e);
            }
        }
        Resolved {
            admin: admin.map(|e| e.setting),
            monitor: monitor.map(|e| e.setting),
        }
    }
}

/// Whether a key has globs.
fn is_glob(pattern: &str) -> bool {
    pattern.contains(['*', '?'])
}

/// A profile or endpoint name as exact keys are looked up: ASCII lower
/// case, without a trailing dot.
fn folded(s: &str) -> String {
    s.strip_suffix('.').unwrap_or(s).to_ascii_lowercase()
}

/// An admin file made ready to apply to many endpoints: keys without
/// globs in a map, keys with globs in a list. Resolves as
/// [`AdminFile::resolve`] does, in time that does not grow with the keys
/// without globs.
#[derive(Debug)]
pub struct Matcher<'f> {
    file: &'f AdminFile,
    /// (profile half, endpoint half), folded → indexes into `file.entries`.
    exact: std::collections::HashMap<(String, String), Vec<usize>>,
    /// Indexes of the keys with globs.
    globs: Vec<usize>,
}

/// A [`Matcher`] narrowed to one profile: the keys with globs whose profile
/// half matches it.
#[derive(Debug)]
pub struct ProfileMatcher<'m, 'f> {
    m: &'m Matcher<'f>,
    name: String,
    fqdn: String,
    globs: Vec<usize>,
}

impl AdminFile {
    /// The file made ready to apply to many endpoints.
    pub fn matcher(&self) -> Matcher<'_> {
        let mut exact: std::collections::HashMap<(String, String), Vec<usize>> =
            std::collections::HashMap::new();
        let mut globs = Vec::new();
        for (i, e) in self.entries.iter().enumerate() {
            if is_glob(&e.pattern) {
                globs.push(i);
            } else if let Some((p, ep)) = e.pattern.split_once('/') {
                exact
                    .entry((folded(p), ep.to_ascii_lowercase()))
                    .or_default()
                    .push(i);
            }
        }
        Matcher {
            file: self,
            exact,
            globs,
        }
    }
}

impl<'f> Matcher<'f> {
    /// The keys that may apply to the endpoints of the profile called
    /// `name` in the config and `fqdn` in full.
    pub fn profile<'m>(&'m self, name: &str, fqdn: &str) -> ProfileMatcher<'m, 'f> {
        let n = name.strip_suffix('.').unwrap_or(name).as_bytes();
        let f = fqdn.strip_suffix('.').unwrap_or(fqdn).as_bytes();
        let globs = self
            .globs
            .iter()
            .copied()
            .filter(|&i| {
                self.file
                    .entries
                    .get(i)
                    .and_then(|e| e.pattern.split_once('/'))
                    .is_some_and(|(p, _)| {
                        let p = p.strip_suffix('.').unwrap_or(p).as_bytes();
                        glob(p, n) || glob(p, f)
                    })
            })
            .collect();
        ProfileMatcher {
            m: self,
            name: folded(name),
            fqdn: folded(fqdn),
            globs,
        }
    }
}

impl ProfileMatcher<'_, '_> {
    /// As [`AdminFile::resolve`] for endpoint `endpoint` of the profile;
    /// marks in `matched` (one flag per key of the file) the keys that
    /// match it.
    pub fn resolve(&self, endpoint: &str, matched: &mut [bool]) -> Resolved {
        let entries = &self.m.file.entries;
        let ep = endpoint.to_ascii_lowercase();
        let mut hits: Vec<usize> = Vec::new();
        for p in [&self.name, &self.fqdn] {
            if let Some(v) = self.m.exact.get(&(p.clone(), ep.clone())) {
                hits.extend(v.iter().copied());
            }
        }
        for &i in &self.globs {
            if let Some((_, e)) = entries.get(i).and_then(|k| k.pattern.split_once('/'))
                && glob(e.as_bytes(), endpoint.as_bytes())
            {
                hits.push(i);
            }
        }
        // As `resolve`: per kind, the most specific; among equals, the
        // key that sorts last.
        let (mut admin, mut monitor): (Option<usize>, Option<usize>) = (None, None);
        for i in hits {
            let Some(e) = entries.get(i) else { continue };
            if let Some(m) = matched.get_mut(i) {
                *m = true;
            }
            let slot = if e.setting.is_monitor() {
                &mut monitor
            } else {
                &mut admin
            };
            let better = match slot.and_then(|b| entries.get(b)) {
                None => true,
                Some(b) => {
                    (specificity(&e.pattern), i) > (specificity(&b.pattern), slot.unwrap_or(0))
                }
            };
            if better {
                *slot = Some(i);
            }
        }
        Resolved {
            admin: admin.and_then(|i| entries.get(i)).map(|e| e.setting),
            monitor: monitor.and_then(|i| entries.get(i)).map(|e| e.setting),
        }
    }
}

/// Reads `path` (missing = empty), lets `change` edit it, and writes it
/// back atomically: a temporary file in the same directory, fsync, rename
/// over `path`, fsync of the directory. A reader (the engine's watch) sees
/// the old file or the new, never a part. Returns what `change` returned.
/// A file that does not parse is not overwritten.
///
/// Two editors at once (two `trafficmgr drain` racing, or one on each of
/// two shells) take turns: the read-change-write holds an exclusive
/// `flock` on the file's folder, so neither loses the other's key. A
/// `path` that is a symbolic link is followed: the file it points to is
/// replaced, and the link stays a link.
pub fn edit<R>(
    path: &Path,
    change: impl FnOnce(&mut AdminFile) -> Result<R, String>,
) -> Result<R, String> {
    let path = &follow_links(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let _lock = lock_folder(path).map_err(|e| format!("{}: cannot lock: {e}", path.display()))?;
    let mut file = AdminFile::read(path).map_err(|e| e.to_string())?;
    let r = change(&mut file)?;
    write_atomically(path, file.render().as_bytes())
        .map_err(|e| format!("{}: cannot write: {e}", path.display()))?;
    Ok(r)
}

/// `path`, or the file its chain of symbolic links ends at (which need not
/// exist yet).
fn follow_links(path: &Path) -> std::io::Result<PathBuf> {
    let mut p = path.to_path_buf();
    for _ in 0..40 {
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_symlink() => {
                let t = std::fs::read_link(&p)?;
                p = match p.parent() {
                    Some(d) if t.is_relative() => d.join(t),
                    _ => t,
                };
            }
            _ => return Ok(p),
        }
    }
    Err(std::io::Error::other("too many levels of symbolic links"))
}

/// The folder of `path`.
fn folder(path: &Path) -> PathBuf {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// An exclusive `flock` on the folder of `path`, held until the file is dropped.
fn lock_folder(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::fd::AsRawFd;
    let dir = std::fs::File::open(folder(path))?;
    loop {
        // SAFETY: flock on a descriptor we own.
        if unsafe { libc::flock(dir.as_raw_fd(), libc::LOCK_EX) } == 0 {
            return Ok(dir);
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = folder(path);
    let name = path
        .file_name()
        .ok_or_else(|| std::io::Error::other("the path names no file"))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".tmp{}", std::process::id()));
    let tmp = dir.join(tmp_name);
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(&dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_halves_separately_and_ignore_case() {
        assert!(matches("app/*", "app", "app.tm.example", "eu-west"));
        assert!(matches("*/eu-*", "app", "app.tm.example", "EU-West"));
        assert!(matches(
            "APP.tm.example./eu-west",
            "app",
            "app.tm.example",
            "eu-west"
        ));
        assert!(matches("a?p/e*t", "app", "app.tm.example", "eu-west"));
        assert!(!matches("*/eu-*", "app", "app.tm.example", "us-east"));
        assert!(!matches("ap/*", "app", "app.tm.example", "x"));
        // A star in the profile half does not reach into the endpoint.
        assert!(!matches("*", "app", "app.tm.example", "x"));
        assert!(!glob(b"*a*a*a*a*a*b", &[b'a'; 200]));
        assert!(glob(b"**", b""));
    }

    #[test]
    fn the_most_specific_key_wins_per_kind() {
        let f = AdminFile::parse(
            "\"app/*\" = \"drain\"\n\"app/eu-west\" = \"enabled\"\n\"*/*\" = \"down\"\n\"app/eu-*\" = \"up\"\n",
            "admin.toml",
        )
        .unwrap();
        assert_eq!(
            f.resolve("app", "app.tm.example", "eu-west"),
            Resolved {
                admin: Some(Setting::Enabled),
                monitor: Some(Setting::Up)
            }
        );
        assert_eq!(
            f.resolve("app", "app.tm.example", "us-east"),
            Resolved {
                admin: Some(Setting::Drain),
                monitor: Some(Setting::Down)
            }
        );
        assert_eq!(
            f.resolve("web", "web.tm.example", "us-east"),
            Resolved {
                admin: None,
                monitor: Some(Setting::Down)
            }
        );
    }

    /// The matcher resolves as `resolve` does, key by key: exact keys in
    /// any case and with a trailing dot, short and full profile names,
    /// globs in either half, exact beating globs, ties to the key sorting
    /// last; and it marks exactly the keys that match.
    #[test]
    fn the_matcher_agrees_with_resolve() {
        let f = AdminFile::parse(
            "\"app/eu\" = \"drain\"\n\"APP/eu\" = \"enabled\"\n\"app.tm.example./EU\" = \"disabled\"\n             \"app/*\" = \"down\"\n\"*/eu\" = \"up\"\n\"a?p/e*\" = \"drain\"\n\"web/x\" = \"up\"\n             \"*.tm.example/us-*\" = \"disabled\"\n\"gone/eu\" = \"drain\"\n\"app/eu.\" = \"drain\"\n",
            "a.toml",
        )
        .unwrap();
        let m = f.matcher();
        let mut matched = vec![false; f.entries.len()];
        let mut want = vec![false; f.entries.len()];
        for (name, fqdn) in [
            ("app", "app.tm.example"),
            ("web", "web.tm.example"),
            ("App", "App.TM.example"),
        ] {
            let pm = m.profile(name, fqdn);
            for ep in ["eu", "EU", "us-east", "x", "eu.", "e", ""] {
                assert_eq!(
                    pm.resolve(ep, &mut matched),
                    f.resolve(name, fqdn, ep),
                    "{name} {fqdn} {ep}"
                );
                for (w, k) in want.iter_mut().zip(&f.entries) {
                    *w |= matches(&k.pattern, name, fqdn, ep);
                }
            }
        }
        assert_eq!(matched, want);
        assert!(
            !matched[f
                .entries
                .iter()
                .position(|e| e.pattern == "gone/eu")
                .unwrap()]
        );
    }

    /// More than [`MAX_GLOB_KEYS`] keys with globs: the file is refused,
    /// and `set` refuses to add one more; keys without globs are not
    /// limited.
    #[test]
    fn glob_keys_are_limited() {
        let mut text = String::new();
        for i in 0..MAX_GLOB_KEYS {
            text += &format!("\"p{i}/*\" = \"drain\"\n");
        }
        for i in 0..5000 {
            text += &format!("\"q{i}/e\" = \"drain\"\n");
        }
        let mut f = AdminFile::parse(&text, "a.toml").unwrap();
        assert!(f.set("x/y", Setting::Up).is_ok());
        let e = f.set("x/*", Setting::Up).unwrap_err();
        assert!(e.contains("globs"), "{e}");
        text += "\"late/*\" = \"drain\"\n";
        let e = AdminFile::parse(&text, "a.toml").unwrap_err();
        assert!(e.message.contains("1001 keys with globs"), "{e}");
        assert_eq!(e.line, MAX_GLOB_KEYS + 5001, "{e}");
    }

    #[test]
    fn errors_say_where() {
        let e =
            AdminFile::parse("\"app/x\" = \"drain\"\n\"bad\" = \"drain\"\n", "a.toml").unwrap_err();
        assert_eq!((e.line, e.col), (2, 1), "{e}");
        assert!(e.to_string().starts_with("a.toml:2:1: bad:"), "{e}");
        let e = AdminFile::parse("\"app/x\" = \"sleep\"\n", "a.toml").unwrap_err();
        assert_eq!((e.line, e.col), (1, 11), "{e}");
        let e = AdminFile::parse("\"app/x\" = \n", "a.toml").unwrap_err();
        assert_eq!(e.line, 1, "{e}");
        assert!(AdminFile::parse("\"a/b/c\" = \"up\"", "a").is_err());
        assert!(AdminFile::parse("\"a b/c\" = \"up\"", "a").is_err());
        assert!(AdminFile::parse("[t]\n\"a/c\" = \"up\"", "a").is_err());
    }

    #[test]
    fn render_parses_back_and_edit_is_atomic() {
        let dir = std::env::temp_dir().join(format!("tm-admin-file-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("admin.toml");
        edit(&path, |f| f.set("app/*", Setting::Drain)).unwrap();
        edit(&path, |f| f.set("*/eu-?", Setting::Down)).unwrap();
        edit(&path, |f| f.set("app/*", Setting::Disabled)).unwrap();
        let f = AdminFile::read(&path).unwrap();
        assert_eq!(
            f.entries
                .iter()
                .map(|e| (e.pattern.as_str(), e.setting))
                .collect::<Vec<_>>(),
            vec![("*/eu-?", Setting::Down), ("app/*", Setting::Disabled)]
        );
        assert_eq!(AdminFile::parse(&f.render(), "x").unwrap().entries.len(), 2);
        assert!(edit(&path, |f| Ok(f.remove("app/*"))).unwrap());
        assert!(!edit(&path, |f| Ok(f.remove("app/*"))).unwrap());
        // A broken file is not overwritten.
        std::fs::write(&path, "\"app/x\" = ").unwrap();
        assert!(edit(&path, |f| f.set("a/b", Setting::Up)).is_err());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "\"app/x\" = ");
        // No temporary file is left behind.
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
        // Missing is empty; a path that cannot be looked at is an error
        // (here: under a regular file, ENOTDIR; as root, permissions would
        // not stop a look).
        assert_eq!(
            AdminFile::read(&dir.join("none.toml")).unwrap(),
            AdminFile::default()
        );
        let e = AdminFile::read(&path.join("admin.toml")).unwrap_err();
        assert!(e.message.contains("cannot read"), "{e}");
        assert!(AdminFile::read(&dir).is_err(), "a folder is not a file");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
