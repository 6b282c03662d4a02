"""scripts/lib/hub_mirror.py's command line: publish a directory, serve it, stop cleanly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

from conftest import ROOT, hub_mirror, pid_gone, wait_until

CLI = ROOT / "scripts/lib/hub_mirror.py"


def test_publish_then_serve_then_stop(tmp_path: Path) -> None:
    src = tmp_path / "model src"
    src.mkdir()
    (src / "config.json").write_text("{}")
    (src / "big.bin").write_bytes(os.urandom(3000))
    mirrors = tmp_path / "mirrors"
    pub = subprocess.run([sys.executable, str(CLI), "publish", "--mirrors", str(mirrors),
                          "--repo", "demo/tiny", "--from", str(src), "--tag", "v1",
                          "--lfs-threshold", "1000"],
                         capture_output=True, text=True, timeout=60, check=False)
    assert pub.returncode == 0, pub.stderr
    repo = hub_mirror.repo_path(mirrors, "demo/tiny")
    assert pub.stdout.strip() == hub_mirror.git(repo, "rev-parse", "v1^{commit}")
    assert "oid sha256:" in hub_mirror.git(repo, "show", "HEAD:big.bin"), "stored as LFS"

    log = tmp_path / "serve.out"
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, str(CLI), "serve", "--mirrors", str(mirrors)],
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_until(lambda: log.read_text().startswith("http://"), 60, "the served URL")
        url = log.read_text().splitlines()[0]
        with urllib.request.urlopen(f"{url}/api/models/demo/tiny/revision/v1", timeout=10) as r:
            assert json.load(r)["sha"] == pub.stdout.strip()
        children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        for child in children:
            wait_until(lambda c=int(child): pid_gone(c), 10, f"Olah process {child} to exit")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def test_publish_bad_repo_id_is_one_line(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, str(CLI), "publish", "--mirrors", str(tmp_path),
                           "--repo", "no-owner", "--from", str(tmp_path)],
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "repo id 'no-owner' must look like owner/name" in proc.stderr
