"""Install the package (editable) with some extras only when something is missing.

`make test`, `make book` and the other targets call this instead of `pip install` every time: when
`bert_annotated` is already installed from this checkout and every requirement of the extras asked for
is satisfied, it does nothing (so the targets work offline and print nothing); otherwise it runs
`pip install -q -e ".[extras]"`.

Usage:  python tools/ensure_installed.py [EXTRA ...]      e.g.  python tools/ensure_installed.py test
"""
from __future__ import annotations

import importlib.metadata as metadata
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def installed_here() -> bool:
    """bert_annotated is installed in editable mode from this very checkout."""
    try:
        distribution = metadata.distribution("bert_annotated")
    except metadata.PackageNotFoundError:
        return False
    direct = distribution.read_text("direct_url.json")
    if not direct:
        return False
    info = json.loads(direct)
    return info.get("dir_info", {}).get("editable", False) and Path(info["url"].removeprefix("file://")) == ROOT


def missing_requirements(extras: list[str]) -> list[str]:
    """Requirements of the package and of `extras` that the environment does not satisfy (recursively for
    self-references such as bert_annotated[book])."""
    try:
        from packaging.requirements import Requirement
    except ImportError:  # a bare environment: let pip decide
        return ["packaging"]
    wanted, seen, missing = set(extras), set(), []
    pending = [requirement for requirement in metadata.requires("bert_annotated") or []]
    while pending:
        requirement = Requirement(pending.pop())
        marker = requirement.marker
        if marker is not None and not any(marker.evaluate({"extra": extra}) for extra in wanted | {""}):
            continue
        if requirement.name.replace("-", "_") == "bert_annotated":  # an extra pulling in another extra
            new = set(requirement.extras) - wanted
            wanted |= new
            if new:
                pending = [r for r in metadata.requires("bert_annotated") or [] if r not in seen]
            continue
        seen.add(str(requirement))
        try:
            version = metadata.version(requirement.name)
        except metadata.PackageNotFoundError:
            missing.append(str(requirement))
            continue
        if requirement.specifier and not requirement.specifier.contains(version, prereleases=True):
            missing.append(f"{requirement} (have {version})")
    return sorted(set(missing))


def main(argv: list[str]) -> int:
    extras = [extra for extra in argv if extra]
    missing = ["bert_annotated (this checkout, editable)"] if not installed_here() else missing_requirements(extras)
    if not missing:
        return 0
    target = "." + (f"[{','.join(extras)}]" if extras else "")
    print(f"installing {target} (missing: {', '.join(missing)})", file=sys.stderr)
    return subprocess.call([sys.executable, "-m", "pip", "install", "-q", "-e", target], cwd=ROOT)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
