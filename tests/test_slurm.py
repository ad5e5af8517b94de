"""The SLURM path against a real SLURM: Debian's slurm-wlm and munge, one node, brought up in a temporary folder.

A sweep through ``hydra/launcher=slurm`` writes its runs, and a job requeued mid-run (``scontrol requeue``) writes a
checkpoint on SIGTERM and, started again, resumes its run to its full budget. The daemons listen on 127.0.0.1 only;
the tests skip where SLURM's programs are not installed (``.ci/run`` installs them) or the tests do not run as root.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pytest

from conftest import fast

from prune_rl.runner.checkpoint import latest_checkpoint

ROOT = Path(__file__).resolve().parents[1]
PROGRAMS = ("munged", "slurmctld", "slurmd", "sbatch", "srun", "sinfo", "squeue", "scontrol", "scancel")
SEARCH_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/usr/local/sbin"])  # daemons live in sbin
LAUNCHER = [
    "hydra/launcher=slurm",
    "hydra.launcher.partition=debug",
    "hydra.launcher.cpus_per_task=1",
    "hydra.launcher.mem_gb=1",
]
# A requeued job waits until its previous credential expires (cred_expire, 120 s by default), then for the
# scheduler's next pass over pending jobs (sched_interval, 60 s by default): both shortened for the test.
SLURM_CONF = """\
ClusterName=prunerl
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={d_port}
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={folder}/munge.socket,cred_expire=5
SlurmUser=root
SlurmdUser=root
StateSaveLocation={folder}/state
SlurmdSpoolDir={folder}/spool
SlurmctldPidFile={folder}/slurmctld.pid
SlurmdPidFile={folder}/slurmd.pid
PlugStackConfig={folder}/plugstack.conf
MailProg=/bin/true
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MpiDefault=none
ReturnToService=2
JobRequeue=1
SchedulerParameters=sched_interval=2
KillWait=10
NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={memory} State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
"""

T = TypeVar("T")


@dataclass
class Slurm:
    """
    A running one-node SLURM.

    :param folder: Its configuration, state and logs.
    :param env: The environment for its clients and for ``prune-rl`` (``SLURM_CONF``; ``PYTHONPATH`` naming this
        checkout, which sbatch hands on to the jobs).
    """

    folder: Path
    env: dict[str, str]

    def __call__(self, *args: str) -> str:
        """Run a SLURM client (``squeue``, ``scontrol``...) against this cluster; :return: its stdout."""
        program = shutil.which(args[0], path=SEARCH_PATH) or args[0]
        done = subprocess.run([program, *args[1:]], env=self.env, capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, f"{' '.join(args)}: {done.stderr}"
        return done.stdout

    def logs(self) -> str:
        """:return: The end of each daemon's log (for a failure's message)."""
        return "\n".join(f"--- {p.name}\n{p.read_text()[-2000:]}" for p in sorted(self.folder.glob("*.log")))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for(what: str, check: Callable[[], T | None], timeout: float, interval: float = 0.5) -> T:
    """:return: ``check()``'s first value that is not ``None`` (or false), polled until ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"no {what} after {timeout:.0f} s")


def _configure(folder: Path) -> dict[str, str]:
    """
    Write a munge key and a ``slurm.conf`` for a one-node cluster in ``folder``.

    :param folder: An empty folder.
    :return: The environment for the cluster's daemons and clients.
    """
    for sub in ("state", "spool"):
        (folder / sub).mkdir()
    key = folder / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o400)  # munged refuses a key that others can read
    (folder / "plugstack.conf").touch()  # not Debian's /etc/slurm/plugstack.conf
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20
    conf = SLURM_CONF.format(
        host=socket.gethostname().split(".")[0],
        ctld_port=_free_port(),
        d_port=_free_port(),
        folder=folder,
        cpus=os.cpu_count() or 1,
        memory=min(memory, 4096),
    )
    (folder / "slurm.conf").write_text(conf)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}  # not a job of another cluster
    env["SLURM_CONF"] = str(folder / "slurm.conf")
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
    return env


def _stop(cluster: Slurm, daemons: dict[str, subprocess.Popen]) -> None:
    """Cancel the jobs left (after a failure) while slurmd still runs, then stop the daemons this module started."""
    try:
        if "slurmd" in daemons and daemons["slurmd"].poll() is None:
            cluster("scancel", "--user=root")
            _wait_for("empty queue", lambda: cluster("squeue", "-h").strip() == "", 30)
    except (AssertionError, subprocess.SubprocessError):
        pass  # slurmctld is gone, or a job outlives its KillWait: the daemons stop anyway
    finally:
        for daemon in reversed(daemons.values()):
            daemon.terminate()
            try:
                daemon.wait(timeout=15)
            except subprocess.TimeoutExpired:
                daemon.kill()
                daemon.wait()


@pytest.fixture(scope="module")
def slurm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Slurm]:
    """A one-node SLURM (munged, slurmctld, slurmd) on this machine, stopped at the end of the module."""
    missing = [p for p in PROGRAMS if shutil.which(p, path=SEARCH_PATH) is None]
    if missing:
        pytest.skip(f"SLURM is not installed ({', '.join(missing)} not found; apt-get install slurm-wlm munge)")
    if os.geteuid() != 0:
        pytest.skip("a one-node SLURM needs root here (slurmd starts each job as its user)")
    folder = tmp_path_factory.mktemp("slurm")
    cluster = Slurm(folder, _configure(folder))
    commands = {
        "munged": [
            "--foreground", "--force", f"--socket={folder}/munge.socket", f"--key-file={folder}/munge.key",
            f"--pid-file={folder}/munged.pid", f"--seed-file={folder}/munged.seed", f"--log-file={folder}/munged.log",
        ],
        "slurmctld": ["-D"],
        "slurmd": ["-D"],
    }  # fmt: skip
    daemons: dict[str, subprocess.Popen] = {}

    def idle() -> bool:
        dead = [name for name, daemon in daemons.items() if daemon.poll() is not None]
        assert not dead, f"{', '.join(dead)} exited"
        done = subprocess.run(["sinfo", "-h", "-o", "%t"], env=cluster.env, capture_output=True, text=True, timeout=30)
        return done.stdout.strip() == "idle"

    try:
        try:
            for name, args in commands.items():
                program = shutil.which(name, path=SEARCH_PATH) or name
                with open(folder / f"{name}.log", "a") as log:
                    daemons[name] = subprocess.Popen([program, *args], env=cluster.env, stdout=log, stderr=subprocess.STDOUT)
                if name == "munged":
                    _wait_for("munge socket", (folder / "munge.socket").exists, 10, 0.1)
            _wait_for("idle node", idle, 60)
        except AssertionError as exc:
            pytest.fail(f"SLURM did not come up: {exc}\n{cluster.logs()}")
        yield cluster
    finally:
        _stop(cluster, daemons)


def _train(sweep_dir: Path, *overrides: str) -> list[str]:
    """The ``prune-rl train -m`` command of a sweep through the SLURM launcher."""
    return [sys.executable, "-m", "prune_rl.cli", "train", "-m", *LAUNCHER, f"hydra.sweep.dir={sweep_dir}", *overrides]


def _results(sweep_dir: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(sweep_dir.glob("*/results.json"))]


def test_a_sweep_through_the_slurm_launcher_writes_each_job_s_run(slurm: Slurm, tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    cmd = _train(sweep, "seed=0,1", *fast("ppo", "cartpole"))
    done = subprocess.run(cmd, cwd=tmp_path, env=slurm.env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    results = _results(sweep)
    assert sorted(r["seed"] for r in results) == [0, 1]
    assert all(r["timesteps"] == r["n_timesteps"] == 256 and not r["resumed"] for r in results)


def test_a_job_requeued_mid_run_checkpoints_on_sigterm_and_resumes_to_its_budget(slurm: Slurm, tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    budget = 12800  # whole PPO rollouts of 64 steps; a few seconds of training, checkpoints every 640
    cmd = _train(sweep, "seed=0", *fast("ppo", "cartpole"), f"n_timesteps={budget}", "checkpoint.every=0.05")
    with open(tmp_path / "launcher.log", "w") as log:
        launcher = subprocess.Popen(cmd, cwd=tmp_path, env=slurm.env, stdout=log, stderr=subprocess.STDOUT)
    try:
        run_dir = _wait_for("checkpoint", lambda: next((p for p in sweep.glob("*_seed0") if latest_checkpoint(p)), None), 120)
        (job,) = slurm("squeue", "-h", "-o", "%i").split()
        slurm("scontrol", "requeue", job)  # SIGTERM to the job's processes, then it goes back to the queue
        assert launcher.wait(timeout=180) == 0, (tmp_path / "launcher.log").read_text()[-3000:]
    finally:
        if launcher.poll() is None:
            launcher.kill()
            launcher.wait()
    job_stderr = "".join(p.read_text() for p in sweep.glob(".submitit/*/*.err"))
    stopped = re.search(r"prune-rl: SIGTERM at (\d+) timesteps: checkpoint written", job_stderr)
    assert stopped is not None, job_stderr[-3000:]
    assert 0 < int(stopped.group(1)) < budget
    (results,) = _results(sweep)
    assert results["resumed"] is True
    assert results["timesteps"] == results["n_timesteps"] == budget
    assert latest_checkpoint(run_dir) is None  # the finished run removed its checkpoints
