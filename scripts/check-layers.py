#!/usr/bin/env python3
"""The import graph of src/ has layers: a module may use only modules of a
lower layer (and its own folder). Fails, naming the file and the import,
when one reaches up or sideways; README "Architecture" explains the layers.
Run by `make test` (target check-layers); `--self-test` shows it can fail.

Paths seen: `crate::x`, `crate::{...}` and `crate::Name` (a crate-root
re-export counts as the top layer), and `super::` chains that climb out of
the top-level module. Skipped: the body of a `#[cfg(test)] mod name { ... }`
block (unit tests may reach anywhere), and comments."""
import pathlib
import re
import sys

# Bottom first. A module of layer n may use the modules of layers < n.
LAYERS = [
    ["log", "name", "geo", "counters"],
    ["answer"],
    ["config"],
    ["health", "admin_file"],
    ["fleet"],
    ["snapshot"],
    ["routing"],
    ["query"],
    ["engine"],
    ["pdns", "ffi", "check", "explain"],
    ["bind_dlz"],
    ["fuzzing", "testutil"],
    ["lib"],
    # src/bin/: the `trafficmgr` binary, a crate of its own over the library.
    ["bin"],
]
RANK = {m: i for i, layer in enumerate(LAYERS) for m in layer}
CRATE = re.compile(r"\bcrate::([a-z_]+|\{|[A-Z])")
SUPER = re.compile(r"\b((?:super::)+)([a-z_]+)")


def module_path(rel: pathlib.PurePath) -> list:
    """`engine/maintenance.rs` → ["engine", "maintenance"]; mod.rs and lib.rs
    name their folder."""
    parts = list(rel.parts)
    last = parts.pop().removesuffix(".rs")
    if last not in ("mod", "lib", "main"):
        parts.append(last)
    return parts or ["lib"]


def targets(code: str, path: list):
    """Top-level modules that `code` names."""
    for t in CRATE.findall(code):
        yield t if t.islower() else "lib"
    for sup, name in SUPER.findall(code):
        up = sup.count("super::")
        base = path[: len(path) - up]
        yield base[0] if base else name


def check_file(rel: pathlib.PurePath, text: str) -> list:
    bad = []
    path = module_path(rel)
    module = path[0]
    if module not in RANK:
        return [f"src/{rel}: module `{module}` has no layer in scripts/check-layers.py"]
    depth = 0  # brace depth inside a skipped test module, 0 = not in one
    pending_test = False
    for n, line in enumerate(text.splitlines(), 1):
        code = line.split("//")[0]
        if depth:
            depth += code.count("{") - code.count("}")
            continue
        if re.match(r"\s*#\[cfg\(test\)\]", code):
            pending_test = True
            continue
        if pending_test and re.match(r"\s*#\[", code):
            continue
        if pending_test and re.match(r"\s*(pub(\([a-z]+\))?\s+)?mod\s+\w+\s*\{", code):
            depth = code.count("{") - code.count("}")
            pending_test = False
            continue
        pending_test = False
        for target in targets(code, path):
            if target == module or target not in RANK:
                continue
            if RANK[target] >= RANK[module]:
                note = " (a crate-root re-export)" if target == "lib" else ""
                bad.append(f"src/{rel}:{n}: `{module}` uses `{target}`{note}, not below it")
    return bad


def self_test() -> None:
    cases = [
        ("geo/mod.rs", "use crate::config::ConfigError;\n", 1),
        ("geo/lpm.rs", "use super::super::engine::Engine;\n", 1),
        ("engine/watch.rs", "use super::Inner;\nuse crate::snapshot::Snapshot;\n", 0),
        ("ffi/life.rs", "use crate::ConfigError;\n", 1),
        ("query.rs", "#[cfg(test)]\nmod tests;\nuse crate::engine::Engine;\n", 1),
        ("query.rs", "#[cfg(test)]\n#[allow(x)]\nmod tests {\n    use crate::engine::E;\n}\n", 0),
        ("query.rs", "#[cfg(test)]\nmod tests {\n}\nuse crate::engine::E;\n", 1),
    ]
    for rel, text, want in cases:
        got = len(check_file(pathlib.PurePath(rel), text))
        assert got == want, f"self-test {rel}: {got} findings, want {want}: {text!r}"
    print(f"check-layers: self-test passed ({len(cases)} cases)")


if "--self-test" in sys.argv:
    self_test()
    sys.exit(0)

src = pathlib.Path(__file__).resolve().parent.parent / "src"
self_test()
bad = []
files = sorted(src.rglob("*.rs"))
for f in files:
    bad.extend(check_file(f.relative_to(src), f.read_text()))
if bad:
    print("check-layers: imports that do not go down:", *bad, sep="\n  ")
    sys.exit(1)
print(f"check-layers: {len(files)} files, every import goes down")
