"""Push and pull with the real skopeo."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path


def _run(argv: list[str], timeout: float = 600) -> None:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({result.returncode}):\n{result.stderr.strip()}")


def push(layout_dir: Path, tag: str, dest: str) -> None:
    """``skopeo copy --all oci:DIR:TAG docker://DEST`` (dest like ``127.0.0.1:5000/team/app:v1``), plain HTTP."""
    _run(["skopeo", "copy", "-q", "--all", "--dest-tls-verify=false", f"oci:{layout_dir}:{tag}", f"docker://{dest}"])


def pull(src: str, out_dir: Path, registries_conf: Path | None = None, all_platforms: bool = True) -> Path:
    """``skopeo copy docker://SRC dir:OUT``; with every platform of an index unless told otherwise."""
    argv = ["skopeo"]
    if registries_conf is not None:
        argv += ["--registries-conf", str(registries_conf)]
    argv += ["copy", "-q", "--src-tls-verify=false"]
    if all_platforms:
        argv.append("--all")
    argv += [f"docker://{src}", f"dir:{out_dir}"]
    _run(argv)
    return out_dir


def dir_digests(out_dir: Path) -> dict[str, str]:
    """sha256 of every file skopeo wrote into a ``dir:`` destination, by file name (manifests and blobs)."""
    digests: dict[str, str] = {}
    for path in sorted(out_dir.iterdir()):
        hasher = hashlib.sha256()
        with open(path, "rb") as file:
            for chunk in iter(lambda: file.read(1 << 20), b""):
                hasher.update(chunk)
        digests[path.name] = hasher.hexdigest()
    return digests
