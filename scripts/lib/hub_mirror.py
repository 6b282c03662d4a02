#!/usr/bin/env python3
"""An offline Hugging Face Hub mirror for tests and demos: Olah serving local git repos.

Usage:
  hub_mirror.py publish --mirrors DIR --repo OWNER/NAME --from DIR [--tag T] [--branch B]
      Commit the files of --from as the new content of the mirrored repo (created when new);
      print the commit sha.
  hub_mirror.py serve --mirrors DIR [--host 127.0.0.1] [--port N]
      Run Olah in offline mode over DIR until SIGINT/SIGTERM; print its URL once it answers.

Repositories live under the mirrors path as models/<owner>/<name>, each a git repository.
Files of at least --lfs-threshold bytes (default 1 MiB) are stored as Git LFS pointers with the
object under .git/lfs/objects, as git-lfs would, so the Hub API reports their sha256.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType

DEFAULT_LFS_THRESHOLD = 1024 * 1024
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 10.0
GIT_TIMEOUT_S = 120.0
_GIT_ENV = {
    "GIT_AUTHOR_NAME": "hub-mirror",
    "GIT_AUTHOR_EMAIL": "hub-mirror@localhost",
    "GIT_COMMITTER_NAME": "hub-mirror",
    "GIT_COMMITTER_EMAIL": "hub-mirror@localhost",
}


class MirrorError(RuntimeError):
    """A mirror operation failed (git or the Olah server)."""


def git(repo: Path, *args: str) -> str:
    """Run git in `repo` and return its stdout, stripped; raise MirrorError on failure."""
    env = {**os.environ, **_GIT_ENV}
    cmd = ["git", "-C", str(repo), *args]
    proc = subprocess.run(
        cmd, capture_output=True, text=True, env=env, timeout=GIT_TIMEOUT_S, check=False
    )
    if proc.returncode != 0:
        raise MirrorError(f"{' '.join(cmd)} exited {proc.returncode}: {proc.stderr.strip()}")
    return proc.stdout.strip()


def repo_path(mirrors: Path, repo_id: str) -> Path:
    """Return where the git repository of `repo_id` (owner/name) lives under `mirrors`."""
    owner, sep, name = repo_id.partition("/")
    if not sep or not owner or not name or "/" in name:
        raise ValueError(f"repo id {repo_id!r} must look like owner/name")
    return Path(mirrors) / "models" / owner / name


def _write_lfs(repo: Path, src: Path, dest: Path) -> None:
    """Store `src` as a Git LFS object of `repo` and write its pointer file at `dest`."""
    digest = hashlib.sha256()
    with src.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    oid = digest.hexdigest()
    obj = repo / ".git" / "lfs" / "objects" / oid[:2] / oid[2:4] / oid
    obj.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, obj)
    size = src.stat().st_size
    pointer = f"version https://git-lfs.github.com/spec/v1\noid sha256:{oid}\nsize {size}\n"
    dest.write_text(pointer, encoding="ascii")


def publish_dir(
    mirrors: Path,
    repo_id: str,
    src: Path,
    message: str = "publish",
    lfs_threshold: int = DEFAULT_LFS_THRESHOLD,
) -> str:
    """Commit the files of `src` as the whole content of `repo_id`'s branch; return the sha."""
    src = Path(src)
    if not src.is_dir():
        raise ValueError(f"source {str(src)!r} is not a directory")
    repo = repo_path(Path(mirrors), repo_id)
    if not (repo / ".git").is_dir():
        repo.mkdir(parents=True, exist_ok=True)
        git(repo, "init", "-q", "-b", "main")
    for entry in repo.iterdir():
        if entry.name != ".git":
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
    for path in sorted(src.rglob("*")):
        if not path.is_file():
            continue
        dest = repo / path.relative_to(src)
        dest.parent.mkdir(parents=True, exist_ok=True)
        if path.stat().st_size >= lfs_threshold:
            _write_lfs(repo, path, dest)
        else:
            shutil.copyfile(path, dest)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "--allow-empty", "-m", message)
    return git(repo, "rev-parse", "HEAD")


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port that is free on `host` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class MirrorServer:
    """An Olah process in offline mode serving the git repos under a mirrors path."""

    def __init__(self, mirrors: Path, host: str = "127.0.0.1", port: int | None = None) -> None:
        """Describe the server; start() runs it."""
        self.mirrors = Path(mirrors).resolve()
        self.host = host
        self.port = port or free_port(host)
        self.url = f"http://{host}:{self.port}"
        self._workdir: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    def _write_config(self, workdir: Path) -> Path:
        """Write Olah's TOML configuration into `workdir` and return its path."""
        config = workdir / "olah.toml"
        config.write_text(
            "[basic]\n"
            f'host = "{self.host}"\n'
            f"port = {self.port}\n"
            f'repos-path = "{workdir / "cache"}"\n'
            f'mirrors-path = ["{self.mirrors}"]\n'
            "[accessibility]\n"
            "offline = true\n",
            encoding="utf-8",
        )
        return config

    def start(self, timeout_s: float = START_TIMEOUT_S) -> MirrorServer:
        """Start Olah and wait until it answers HTTP; raise MirrorError when it does not."""
        self._workdir = Path(tempfile.mkdtemp(prefix="hub-mirror-"))
        config = self._write_config(self._workdir)
        cmd = [sys.executable, "-m", "olah.server", "-c", str(config)]
        cmd += ["--log-path", str(self._workdir / "logs")]
        with (self._workdir / "server.log").open("wb") as log:
            self._proc = subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                cwd=self._workdir, start_new_session=True,
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                break
            if self.answers():
                return self
            time.sleep(0.1)
        tail = self.log_tail()
        self.stop()
        raise MirrorError(f"Olah did not start on {self.url} within {timeout_s:.0f}s: {tail}")

    def answers(self) -> bool:
        """Return True when the server answers any HTTP request."""
        try:
            probe = f"{self.url}/api/models/hub-mirror/probe/revision/main"
            with urllib.request.urlopen(probe, timeout=2):  # noqa: S310 (an http URL built here)
                return True
        except urllib.error.HTTPError:
            return True
        except OSError:
            return False

    def log_tail(self, lines: int = 5) -> str:
        """Return the last lines of the server's output (for error messages)."""
        if self._workdir is None or not (self._workdir / "server.log").exists():
            return ""
        text = (self._workdir / "server.log").read_text(errors="replace").strip()
        return " | ".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        """Stop the server's process group (TERM, then KILL) and remove its work dir."""
        if self._proc is not None and self._proc.poll() is None:
            os.killpg(self._proc.pid, signal.SIGTERM)
            try:
                self._proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                os.killpg(self._proc.pid, signal.SIGKILL)
                self._proc.wait(timeout=STOP_TIMEOUT_S)
        self._proc = None
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None

    @property
    def pid(self) -> int | None:
        """The server's process id while it runs."""
        return self._proc.pid if self._proc is not None else None

    def __enter__(self) -> MirrorServer:
        """Start the server for a with-block."""
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop the server at the end of a with-block."""
        self.stop()


def _serve(args: argparse.Namespace) -> int:
    """Run the server in the foreground until SIGINT or SIGTERM."""
    stop = {"now": False}

    def _on_signal(_sig: int, _frame: object) -> None:
        stop["now"] = True

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    with MirrorServer(Path(args.mirrors), args.host, args.port) as server:
        print(server.url, flush=True)
        while not stop["now"]:
            time.sleep(0.2)
    return 0


def _publish(args: argparse.Namespace) -> int:
    """Publish a directory, then add the requested tag and branch."""
    sha = publish_dir(Path(args.mirrors), args.repo, Path(args.src), args.message,
                      args.lfs_threshold)
    repo = repo_path(Path(args.mirrors), args.repo)
    if args.tag:
        git(repo, "tag", "-f", args.tag, sha)
    if args.branch:
        git(repo, "branch", "-f", args.branch, sha)
    print(sha)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run publish or serve."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    pub = sub.add_parser("publish", help="commit a directory as a mirrored repo")
    pub.add_argument("--mirrors", required=True)
    pub.add_argument("--repo", required=True)
    pub.add_argument("--from", dest="src", required=True)
    pub.add_argument("--message", default="publish")
    pub.add_argument("--tag")
    pub.add_argument("--branch")
    pub.add_argument("--lfs-threshold", type=int, default=DEFAULT_LFS_THRESHOLD)
    srv = sub.add_parser("serve", help="run Olah over a mirrors path")
    srv.add_argument("--mirrors", required=True)
    srv.add_argument("--host", default="127.0.0.1")
    srv.add_argument("--port", type=int, default=None)
    args = parser.parse_args(argv)
    try:
        return _publish(args) if args.command == "publish" else _serve(args)
    except (MirrorError, ValueError, OSError) as exc:
        if os.environ.get("LOG_LEVEL") == "debug":
            raise
        print(f"[hub-mirror] ✗ {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
