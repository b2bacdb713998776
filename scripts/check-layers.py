#!/usr/bin/env python3
"""The import graph of src/ has layers: a module may use only modules of a
lower layer (and its own folder). Fails, naming the file and the import,
when one reaches up or sideways; README "Architecture" explains the layers.
Run by `make test` (target check-layers)."""
import pathlib
import re
import sys

# Bottom first. A module of layer n may use the modules of layers < n.
LAYERS = [
    ["log", "name", "geo"],
    ["answer"],
    ["config"],
    ["health"],
    ["snapshot"],
    ["routing"],
    ["query"],
    ["engine"],
    ["pdns", "ffi"],
    ["bind_dlz"],
    ["fuzzing", "testutil"],
    ["lib"],
]
RANK = {m: i for i, layer in enumerate(LAYERS) for m in layer}
USE = re.compile(r"\bcrate::([a-z_]+|\{|[A-Z])")

src = pathlib.Path(__file__).resolve().parent.parent / "src"
bad = []
for f in sorted(src.rglob("*.rs")):
    rel = f.relative_to(src)
    module = rel.parts[0].removesuffix(".rs")
    if module not in RANK:
        bad.append(f"src/{rel}: module `{module}` has no layer in scripts/check-layers.py")
        continue
    lines = f.read_text().splitlines()
    for n, line in enumerate(lines, 1):
        code = line.split("//")[0]
        if re.match(r"\s*#\[cfg\(test\)\]", line):
            following = [l for l in lines[n:] if not re.match(r"\s*#\[", l)]
            if following and re.match(r"\s*mod ", following[0]):
                break  # the unit tests at the end of the file may reach anywhere
        for target in USE.findall(code):
            if not target.islower():
                target = "lib"  # a name re-exported at the crate root
            if target == module or target not in RANK:
                continue
            if RANK[target] >= RANK[module]:
                bad.append(f"src/{rel}:{n}: `{module}` uses `crate::{target}`{' (a crate-root re-export)' if target == 'lib' else ''}, not below it")
if bad:
    print("check-layers: imports that do not go down:", *bad, sep="\n  ")
    sys.exit(1)
print(f"check-layers: {sum(1 for _ in src.rglob('*.rs'))} files, every import goes down")
