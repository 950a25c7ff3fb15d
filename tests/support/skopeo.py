"""Push and pull with the real skopeo (1.9), over plain HTTP to loopback registries.

What skopeo 1.9 writes for ``dir:OUT``:

* ``version`` (``Directory Transport Version: 1.1\\n``), ``manifest.json`` (the top manifest exactly as served:
  the image manifest, or the index with ``--all``), and one file per blob named by its bare hex digest
  (config and layers, no ``sha256:`` prefix);
* with ``--all`` and an index: also each instance manifest as ``<hex>.manifest.json`` and the blobs of every
  instance, still named ``<hex>``;
* without ``--all`` and an index: only the instance for the host platform, its manifest as ``manifest.json``.

Blobs and manifests are copied byte for byte (no recompression, no manifest conversion, since both ends speak OCI),
so two pulls of the same image compare equal with `dir_digests`.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

DEFAULT_TIMEOUT = 600


class SkopeoError(RuntimeError):
    """A skopeo command failed; the message holds the command line and its stderr."""


def _run(argv: list[str], timeout: float = DEFAULT_TIMEOUT) -> subprocess.CompletedProcess[str]:
    if shutil.which(argv[0]) is None:
        raise SkopeoError("skopeo is missing: apt-get install skopeo")
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as error:
        raise SkopeoError(f"{' '.join(argv)} timed out after {timeout}s:\n{error.stderr or ''}") from error
    if result.returncode != 0:
        raise SkopeoError(f"{' '.join(argv)} failed ({result.returncode}):\n{result.stderr.strip()}")
    return result


def push(layout_dir: Path, tag: str, dest: str, timeout: float = DEFAULT_TIMEOUT) -> None:
    """``skopeo copy --all oci:DIR:TAG docker://DEST`` (dest like ``127.0.0.1:5000/team/app:v1``), plain HTTP."""
    _run(
        ["skopeo", "copy", "-q", "--all", "--dest-tls-verify=false", f"oci:{layout_dir}:{tag}", f"docker://{dest}"],
        timeout,
    )


def pull(
    src: str,
    out_dir: Path,
    registries_conf: Path | None = None,
    all_platforms: bool = True,
    timeout: float = DEFAULT_TIMEOUT,
) -> Path:
    """``skopeo copy --src-tls-verify=false [--all] docker://SRC dir:OUT``; returns `out_dir`.

    With `registries_conf`, skopeo resolves SRC through that ``registries.conf`` (mirrors and all) instead of the
    system one. `out_dir` may be missing, empty, or an earlier ``dir:`` pull (skopeo clears that first); any other
    non-empty directory is refused.
    """
    argv = ["skopeo"]
    if registries_conf is not None:
        argv += ["--registries-conf", str(registries_conf)]
    argv += ["copy", "-q", "--src-tls-verify=false"]
    if all_platforms:
        argv.append("--all")
    argv += [f"docker://{src}", f"dir:{out_dir}"]
    _run(argv, timeout)
    return Path(out_dir)


def inspect_raw(src: str, timeout: float = 120) -> bytes:
    """``skopeo inspect --raw docker://SRC``: the manifest bytes as the registry serves them."""
    argv = ["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{src}"]
    if shutil.which("skopeo") is None:
        raise SkopeoError("skopeo is missing: apt-get install skopeo")
    result = subprocess.run(argv, capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        raise SkopeoError(f"{' '.join(argv)} failed ({result.returncode}):\n{result.stderr.decode(errors='replace')}")
    return result.stdout


def sha256_file(path: Path) -> str:
    """The hex sha256 of a file, read in 1 MiB pieces."""
    hasher = hashlib.sha256()
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            hasher.update(chunk)
    return hasher.hexdigest()


def dir_digests(out_dir: Path) -> dict[str, str]:
    """The hex sha256 of every file skopeo wrote into a ``dir:`` destination, by file name.

    Covers ``manifest.json``, ``<hex>.manifest.json`` instance manifests, ``<hex>`` blobs and ``version``; two pulls
    of the same content compare equal byte for byte.
    """
    return {path.name: sha256_file(path) for path in sorted(Path(out_dir).iterdir()) if path.is_file()}


def blob_names(out_dir: Path) -> set[str]:
    """``sha256:<hex>`` of every blob file (config or layer) in a ``dir:`` destination."""
    return {f"sha256:{path.name}" for path in Path(out_dir).iterdir() if len(path.name) == 64 and "." not in path.name}
