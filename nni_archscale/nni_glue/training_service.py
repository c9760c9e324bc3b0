"""Where ``archscale search`` trials run: NNI's execution engine and training service.

* ``sequential``: in-process, no nnimanager (the default);
* ``ts`` + ``local``: nnimanager, one subprocess per trial on this machine;
* ``ts`` + ``remote``: nnimanager here, trials on SSH hosts (NNI's ``remote`` training service, non-reuse mode).

What a ``remote`` worker needs (see ``docs/clusters.md``): SSH key login; a Python environment with nni 3.0,
torch and this package installed (``--remote-python`` names its interpreter, the same path on every host); the
``--out`` directory (trials append their records there) and any ``--data-dir`` at the same paths as here, i.e. a
shared filesystem. NNI uploads the trial code directory (the current directory of the experiment) to every
worker and refuses one above 2,000 files or 300 MB, so the experiment runs from an empty staging directory
(``<out>/nni-code``): the trial code is the installed package, not the checkout.

NNI 3.0's remote worker starts with ``<python> -m pip install nni --upgrade`` and has no option to skip it; with
``python_path`` set it runs the interpreter found on that directory, so an environment that already holds nni
3.0 answers "requirement already satisfied" (it needs the package index only to learn there is nothing newer;
offline workers set ``no-index = true`` in ``<venv>/pip.conf``, which makes that call a no-op).
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterator

from ..errors import SearchError

TRAINING_SERVICES = ("local", "remote")
#: keys accepted in a machine-list file entry (NNI's RemoteMachineConfig names, snake_case or camelCase)
_MACHINE_KEYS = {"host", "port", "user", "ssh_key_file", "python", "password", "use_active_gpu", "gpu_indices",
                 "max_trial_number_per_gpu"}
_CAMEL = {"sshKeyFile": "ssh_key_file", "useActiveGpu": "use_active_gpu", "gpuIndices": "gpu_indices",
          "maxTrialNumberPerGpu": "max_trial_number_per_gpu", "pythonPath": "python", "python_path": "python",
          "username": "user"}


@dataclass(frozen=True)
class RemoteMachine:
    """One SSH worker. ``python`` is the interpreter of the worker's environment (e.g. ``/opt/venv/bin/python``)."""

    host: str
    user: str
    port: int = 22
    ssh_key_file: str | None = None
    password: str | None = None
    python: str | None = None
    use_active_gpu: bool = False
    gpu_indices: Any = None
    max_trial_number_per_gpu: int = 1

    def validate(self, where: str = "") -> "RemoteMachine":
        at = f"{where}: " if where else ""
        if not isinstance(self.host, str) or not self.host.strip():
            raise SearchError(f"{at}remote machine needs a host name; pass --remote-host HOST (or 'host' in the "
                              f"machine list)")
        if not isinstance(self.user, str) or not self.user.strip():
            raise SearchError(f"{at}remote machine {self.host!r} needs a user; pass --remote-user USER (or 'user')")
        if isinstance(self.port, bool) or not isinstance(self.port, int) or not 0 < self.port < 65536:
            raise SearchError(f"{at}remote machine {self.host!r}: port {self.port!r} is not in 1..65535; fix "
                              f"--remote-port (or 'port')")
        if self.password is None:
            if not self.ssh_key_file:
                raise SearchError(f"{at}remote machine {self.host!r} needs an SSH key; pass --remote-key FILE (or "
                                  f"'ssh_key_file' in the machine list)")
            key = Path(self.ssh_key_file).expanduser()
            if not key.is_file():
                raise SearchError(f"{at}SSH key {str(key)!r} for {self.host!r} does not exist or is not a file; "
                                  f"fix --remote-key (or 'ssh_key_file')")
        if self.python is not None and (not isinstance(self.python, str) or not self.python.startswith("/")):
            raise SearchError(f"{at}remote python {self.python!r} must be an absolute path to the worker's "
                              f"interpreter (e.g. /opt/venv/bin/python); fix --remote-python (or 'python')")
        return self


def read_machine_list(path: str | Path) -> list[RemoteMachine]:
    """Machines from a JSON or YAML file: a list of entries, or ``{"machines": [...]}`` / ``{"machine_list": ...}``.

    An entry has ``host``, ``user``, optional ``port`` (22), ``ssh_key_file``, ``python``, ``password``,
    ``use_active_gpu``, ``gpu_indices``; NNI's camelCase names (``sshKeyFile``, ``pythonPath``) are accepted.
    """
    p = Path(path).expanduser()
    if not p.is_file():
        raise SearchError(f"machine list {str(p)!r} does not exist or is not a file; fix --machines")
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SearchError(f"cannot read machine list {str(p)!r} ({type(exc).__name__}); fix --machines") from None
    data: Any
    if p.suffix.lower() in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:  # pragma: no cover - nni depends on PyYAML
            raise SearchError("a YAML machine list needs PyYAML; pip install pyyaml, or write the list as JSON") from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise SearchError(f"machine list {str(p)!r} is not valid YAML ({str(exc).splitlines()[0]}); fix the "
                              f"file") from None
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SearchError(f"machine list {str(p)!r} is not valid JSON ({exc.msg} at line {exc.lineno}); fix "
                              f"the file (a .yaml/.yml name is read as YAML)") from None
    if isinstance(data, dict):
        data = data.get("machines", data.get("machine_list", data.get("machineList")))
    if not isinstance(data, list) or not data:
        raise SearchError(f"machine list {str(p)!r} must hold a non-empty list of machines (or {{'machines': [...]}})")
    machines = []
    for i, entry in enumerate(data):
        where = f"{p.name} entry #{i}"
        if not isinstance(entry, dict):
            raise SearchError(f"{where} must be an object with host, user, ssh_key_file, ...; got "
                              f"{type(entry).__name__}")
        entry = {_CAMEL.get(k, k): v for k, v in entry.items()}
        unknown = sorted(set(entry) - _MACHINE_KEYS)
        if unknown:
            raise SearchError(f"{where} has unknown field(s) {', '.join(unknown)}; known: {', '.join(sorted(_MACHINE_KEYS))}")
        try:
            m = RemoteMachine(**entry)
        except TypeError as exc:
            raise SearchError(f"{where}: {exc}; every machine needs 'host' and 'user'") from None
        machines.append(m.validate(where))
    return machines


def resolve_machines(host: str | None = None, user: str | None = None, port: int = 22, key: str | None = None,
                     python: str | None = None, machines_file: str | None = None) -> list[RemoteMachine]:
    """The worker list from ``--machines FILE`` or from ``--remote-host/--remote-user/--remote-key``."""
    if machines_file and host:
        raise SearchError("give either --machines FILE or --remote-host (one machine), not both")
    if machines_file:
        ms = read_machine_list(machines_file)
        if python:  # --remote-python overrides the file for every machine
            ms = [RemoteMachine(**{**asdict(m), "python": python}).validate() for m in ms]
        return ms
    if not host:
        raise SearchError("--training-service remote needs workers: pass --remote-host HOST --remote-user USER "
                          "--remote-key KEY [--remote-python PATH], or --machines FILE (JSON/YAML)")
    default_key = str(Path("~/.ssh/id_rsa").expanduser())
    return [RemoteMachine(host=host, user=user or os.environ.get("USER", ""), port=port,
                          ssh_key_file=key or default_key, python=python).validate()]


def trial_python(machines: list[RemoteMachine], local_python: str) -> str:
    """The interpreter path in the trial command (one command for every worker: the paths must agree)."""
    paths = {m.python for m in machines if m.python}
    if len(paths) > 1:
        raise SearchError(f"workers name different python interpreters ({', '.join(sorted(paths))}); NNI runs one "
                          f"trial command everywhere: install the environment at the same path on every host")
    return paths.pop() if paths else local_python


def experiment_config(engine: str, training_service: str, trials: int, concurrency: int, device: str,
                      working_dir: str | Path, machines: list[RemoteMachine] | None = None,
                      manager_ip: str | None = None):
    """The ``NasExperimentConfig`` for an engine and training service (NNI imported here).

    ``manager_ip``: the address remote workers use to reach the nnimanager (NNI guesses this host's address
    on its default route when None)."""
    import sys

    from nni.nas.experiment import NasExperimentConfig

    if training_service not in TRAINING_SERVICES:
        raise SearchError(f"unknown training service {training_service!r}; use one of {', '.join(TRAINING_SERVICES)}")
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise SearchError(f"--concurrency must be a positive integer, got {concurrency!r}")
    if engine == "sequential":
        if training_service != "local":
            raise SearchError(f"the sequential engine runs trials in this process; --training-service "
                              f"{training_service} needs --engine ts")
        if concurrency != 1:
            raise SearchError("the sequential engine runs one trial at a time; --concurrency > 1 needs --engine ts")
        config = NasExperimentConfig("sequential", "simplified")
    elif engine == "ts":
        config = NasExperimentConfig("ts", "simplified", training_service)
        config.trial_concurrency = concurrency
        gpu = str(device).startswith("cuda")
        if training_service == "local":
            if gpu:
                config.trial_gpu_number = 1
                config.training_service.use_active_gpu = True
                # several trials share the GPU (NNI's default is one trial per GPU, which would run --concurrency K
                # trials one at a time); cuda:N pins them to card N
                config.training_service.max_trial_number_per_gpu = concurrency
                if ":" in str(device):
                    config.training_service.gpu_indices = [int(str(device).split(":")[1])]
        else:
            from nni.experiment.config import RemoteMachineConfig

            if not machines:
                raise SearchError("--training-service remote needs at least one machine (--remote-host or --machines)")
            config.training_service.reuse_mode = False
            config.training_service.machine_list = [
                RemoteMachineConfig(host=m.host, port=m.port, user=m.user, password=m.password,
                                    ssh_key_file=None if m.password is not None else str(Path(m.ssh_key_file).expanduser()),
                                    # NNI's python_path is the *directory* put first on PATH on the worker
                                    python_path=str(Path(m.python).parent) if m.python else None,
                                    use_active_gpu=m.use_active_gpu or gpu, gpu_indices=m.gpu_indices,
                                    max_trial_number_per_gpu=m.max_trial_number_per_gpu)
                for m in machines
            ]
            if gpu:
                config.trial_gpu_number = 1
            if manager_ip:
                config.nni_manager_ip = manager_ip
            config._trial_command_params = {"python": shlex.quote(trial_python(machines, sys.executable))}
    else:
        raise SearchError(f"unknown engine {engine!r}; use sequential or ts")
    config.max_trial_number = trials
    config.experiment_working_directory = str(working_dir)
    return config


@contextlib.contextmanager
def trial_code_directory(out: Path, training_service: str) -> Iterator[None]:
    """Run the experiment from ``<out>/nni-code`` (empty) when trials run elsewhere: NNI uploads the current
    directory to every remote worker. A no-op for local trials."""
    if training_service == "local":
        yield
        return
    code = Path(out) / "nni-code"
    code.mkdir(parents=True, exist_ok=True)
    (code / ".nniignore").write_text("*\n!.nniignore\n", encoding="utf-8")
    previous = os.getcwd()
    os.chdir(code)
    try:
        yield
    finally:
        os.chdir(previous)
