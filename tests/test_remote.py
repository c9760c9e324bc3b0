"""``archscale search`` on NNI's ``remote`` training service, through a real SSH server on 127.0.0.1.

The end-to-end test is opt-in (slow, and skipped unless ``ARCHSCALE_SSH_TEST=1``): starts Debian's ``/usr/sbin/sshd`` on a free port
with a throw-away host key and client key in a temporary directory (``apt-get install openssh-server``; run as
a user whose login the key may open), runs a 4-candidate search with 2 concurrent trials through it, and stops
sshd and every nnimanager it started afterwards.

The worker is this machine's own environment: ``--remote-python`` is this interpreter, so nothing is installed.
NNI 3.0's remote worker still runs ``python -m pip install nni --upgrade`` at start (no option skips it); the
server sets ``PIP_NO_INDEX=1`` for SSH sessions (``SetEnv``), which turns that call into "requirement already
satisfied" without a network, as ``docs/clusters.md`` recommends for offline workers.
"""

from __future__ import annotations

import getpass
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest_nni import children_of, no_leaked_nnimanager, our_nnimanagers, stop_pids  # noqa: F401
from nni_archscale.results import RECORDS, read_records

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"

ssh_test = pytest.mark.skipif(os.environ.get("ARCHSCALE_SSH_TEST") != "1",
                              reason="opt-in: set ARCHSCALE_SSH_TEST=1 (needs openssh-server)")


def test_remote_config_uses_the_workers_python_and_skips_the_checkout(tmp_path):
    """Fast: the NNI config a remote search builds (canonicalised by NNI itself, nothing started)."""
    from nni_archscale.nni_glue.training_service import (
        experiment_config, read_machine_list, trial_code_directory,
    )

    key = tmp_path / "id_rsa"
    key.write_text("key")
    (tmp_path / "machines.yaml").write_text(
        f"machines:\n  - host: 10.0.0.5\n    user: alice\n    sshKeyFile: {key}\n    python: /opt/venv/bin/python\n"
        f"  - host: 10.0.0.6\n    user: alice\n    port: 2222\n    ssh_key_file: {key}\n"
        f"    python: /opt/venv/bin/python\n")
    machines = read_machine_list(tmp_path / "machines.yaml")
    assert [m.port for m in machines] == [22, 2222]
    out = tmp_path / "out"
    with trial_code_directory(out, "remote"):
        assert Path.cwd() == out / "nni-code"  # NNI uploads the cwd: an empty staging directory, not the checkout
        config = experiment_config("ts", "remote", 8, 2, "auto", out / "nni", machines, manager_ip="10.0.0.1")
        canonical = config.canonical_copy()
    assert Path.cwd() != out / "nni-code"
    assert canonical.trial_command == "/opt/venv/bin/python -m nni.nas.execution.training_service trial"
    assert canonical.trial_concurrency == 2 and canonical.max_trial_number == 8
    assert canonical.nni_manager_ip == "10.0.0.1" and canonical.training_service.reuse_mode is False
    ms = canonical.training_service.machine_list
    assert [(m.host, m.port, m.user, m.python_path) for m in ms] == [
        ("10.0.0.5", 22, "alice", "/opt/venv/bin"), ("10.0.0.6", 2222, "alice", "/opt/venv/bin")]
    gpu = experiment_config("ts", "remote", 8, 2, "cuda", out / "nni", machines).canonical_copy()
    assert gpu.trial_gpu_number == 1 and all(m.use_active_gpu for m in gpu.training_service.machine_list)


def test_local_gpu_trials_share_the_card(tmp_path):
    """--concurrency K on one GPU: NNI's local service lets K trials use it at once (its default is one per GPU,
    which would serialise them), and cuda:N pins them to card N. Built and canonicalised by NNI, nothing started."""
    from nni_archscale.nni_glue.training_service import experiment_config

    gpu = experiment_config("ts", "local", 8, 3, "cuda:1", tmp_path / "nni").canonical_copy()
    ts = gpu.training_service
    assert gpu.trial_gpu_number == 1 and ts.use_active_gpu
    assert ts.max_trial_number_per_gpu == 3 and ts.gpu_indices == [1]
    cpu = experiment_config("ts", "local", 8, 3, "cpu", tmp_path / "nni").canonical_copy()
    assert not cpu.trial_gpu_number


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _keygen(path: Path, kind: str = "rsa") -> None:
    # PEM RSA: the format every version of NNI's node ssh2 library reads
    subprocess.run(["ssh-keygen", "-q", "-t", kind, "-b", "2048", "-m", "PEM", "-N", "", "-C", "archscale-test",
                    "-f", str(path)], check=True, capture_output=True)


@pytest.fixture
def sshd(tmp_path):
    """A private sshd on 127.0.0.1:<free port> accepting one throw-away key; yields (port, key, log)."""
    if not Path(SSHD).is_file():
        pytest.skip("openssh-server is not installed (apt-get install -y openssh-server)")
    d = tmp_path / "ssh"
    d.mkdir()
    _keygen(d / "host_key")
    _keygen(d / "client_key")
    (d / "authorized_keys").write_text((d / "client_key.pub").read_text())
    os.chmod(d / "authorized_keys", 0o600)
    Path("/run/sshd").mkdir(parents=True, exist_ok=True)  # sshd's privilege-separation directory
    port = _free_port()
    log = d / "sshd.log"
    config = d / "sshd_config"
    config.write_text("\n".join([
        f"Port {port}", "ListenAddress 127.0.0.1", f"HostKey {d / 'host_key'}", f"PidFile {d / 'sshd.pid'}",
        f"AuthorizedKeysFile {d / 'authorized_keys'}", "PubkeyAuthentication yes", "PasswordAuthentication no",
        "KbdInteractiveAuthentication no", "UsePAM no", "StrictModes no", "PermitRootLogin prohibit-password",
        "Subsystem sftp internal-sftp", "MaxStartups 50", "MaxSessions 50",
        # offline worker: NNI's "pip install nni --upgrade" becomes a no-op on the installed environment
        "SetEnv PIP_NO_INDEX=1 PIP_DISABLE_PIP_VERSION_CHECK=1 OMP_NUM_THREADS=1 PYTHONWARNINGS=ignore",
        "LogLevel VERBOSE", "",
    ]))
    check = subprocess.run([SSHD, "-t", "-f", str(config)], capture_output=True, text=True)
    if check.returncode != 0:
        pytest.skip(f"sshd refuses the test configuration: {check.stderr.strip()}")
    proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config), "-E", str(log)])
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        else:
            pytest.fail(f"sshd did not listen on 127.0.0.1:{port}: {log.read_text() if log.exists() else ''}")
        ssh = subprocess.run(["ssh", "-i", str(d / "client_key"), "-p", str(port), "-o", "BatchMode=yes",
                              "-o", "StrictHostKeyChecking=no", "-o", f"UserKnownHostsFile={d / 'known_hosts'}",
                              f"{getpass.getuser()}@127.0.0.1", sys.executable, "-c", "'import nni; print(nni.__version__)'"],
                             capture_output=True, text=True, timeout=60)
        assert ssh.returncode == 0 and ssh.stdout.strip() == "3.0", ssh.stderr
        yield port, d / "client_key", log
    finally:
        # the search's trials ran as children of sshd's session processes: stop them, then sshd
        stop_pids([*children_of(proc.pid), proc.pid])
        proc.wait(timeout=10)


@pytest.mark.slow
@pytest.mark.nni
@ssh_test
def test_search_through_ssh_with_two_concurrent_trials(tmp_path, sshd, no_leaked_nnimanager):
    port, key, sshd_log = sshd
    out = tmp_path / "remote-run"
    cmd = [sys.executable, "-m", "nni_archscale", "search", "--training-service", "remote",
           "--remote-host", "127.0.0.1", "--remote-port", str(port), "--remote-user", getpass.getuser(),
           "--remote-key", str(key), "--remote-python", sys.executable, "--manager-ip", "127.0.0.1", "--concurrency", "2",
           "--strategy", "random", "--trials", "4", "--epochs", "3", "--limit", "300", "--width", "4",
           "--base-lr", "0.3", "--out", str(out), "--no-progress"]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=str(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"})
    try:
        output, _ = proc.communicate(timeout=540)
    except subprocess.TimeoutExpired:
        stop_pids([*children_of(proc.pid), proc.pid])
        output, _ = proc.communicate()
        pytest.fail("remote search did not finish in 540 s:\n" + output[-4000:])
    seconds = time.perf_counter() - t0
    assert proc.returncode == 0, output[-4000:]
    assert not our_nnimanagers(tmp_path)

    summary = json.loads((out / "summary.json").read_text())
    assert summary["candidates"] == 4 and summary["training_service"] == "remote", summary
    assert summary["statuses"].get("ok", 0) == 4, summary
    # the trials really ran through the SSH server...
    assert "Accepted publickey" in sshd_log.read_text()
    logs = "\n".join(p.read_text(errors="replace") for p in (out / "nni").rglob("nnimanager.log"))
    assert "127.0.0.1" in logs and "initialized" in logs
    # ...two at a time: some trial started before another one ended
    recs = read_records(out / RECORDS)
    starts = {r["arch"]: r["time"] for r in recs if r["mode"] == "start"}
    ends = {r["arch"]: r["time"] for r in recs if r["mode"] == "archscale"}
    spans = sorted((starts[a], ends[a]) for a in ends if a in starts)
    assert len(spans) == 4
    overlaps = sum(1 for i in range(len(spans)) for j in range(i + 1, len(spans)) if spans[j][0] < spans[i][1])
    assert overlaps >= 1, spans
    print(f"remote search: 4 candidates, 2 concurrent, {seconds:.1f} s wall, {overlaps} overlapping pair(s)")
