"""Multi-worker helpers: who is the chief, and where each worker writes.

Under ``tf.distribute.MultiWorkerMirroredStrategy`` (configured by ``TF_CONFIG``) every
worker runs the same program. Saving a model reads variables that may need a collective
across workers, so *every* worker must call ``save`` -- the chief to the real path, the
others to private paths (tensorflow "multi-worker training with Keras" guide). The same
holds for files that callbacks write (CSV history, checkpoints, TensorBoard logs): two
workers must never write one file.

``TF_CONFIG`` example for worker 1 of two::

    {"cluster": {"worker": ["node1:12345", "node2:12345"]},
     "task": {"type": "worker", "index": 1}}

The chief is the task of type ``"chief"`` or, when the cluster has none, worker 0.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from astrovader.errors import AstrovaderError

__all__ = ["task_info", "is_chief", "worker_run_dir", "tf_config_from_slurm"]


def task_info() -> tuple[str | None, int, int]:
    """``(task_type, task_index, n_workers)`` from ``TF_CONFIG`` (``(None, 0, 1)`` if unset).

    Raises:
        AstrovaderError: if ``TF_CONFIG`` is not valid JSON or lacks ``cluster``/``task``.
    """
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        return None, 0, 1
    try:
        conf = json.loads(raw)
        cluster, task = conf["cluster"], conf["task"]
        n = sum(len(cluster.get(k, [])) for k in ("chief", "worker"))
        return str(task["type"]), int(task.get("index", 0)), max(1, n)
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise AstrovaderError(f"TF_CONFIG is malformed ({type(exc).__name__}: {exc}); it needs "
                              "'cluster' and 'task' (see README 'Running on a cluster')") from None


def is_chief(strategy=None) -> bool:
    """True on the process that writes the real outputs (always true without ``TF_CONFIG``).

    Args:
        strategy: a ``tf.distribute`` strategy; when given and multi-worker, its own
            ``should_checkpoint`` decides.
    """
    extended = getattr(strategy, "extended", None)
    if extended is not None and getattr(extended, "_in_multi_worker_mode", lambda: False)():
        return bool(extended.should_checkpoint)
    task_type, index, _ = task_info()
    if task_type is None:
        return True
    raw = json.loads(os.environ["TF_CONFIG"])
    has_chief = bool(raw["cluster"].get("chief"))
    return task_type == "chief" or (not has_chief and task_type == "worker" and index == 0)


def worker_run_dir(out: str | os.PathLike, strategy=None) -> Path:
    """The run directory this process should write: ``out`` on the chief,
    ``out/.workers/<type>-<index>`` on the other workers.

    Non-chief directories are kept (not temporary) so that ``--resume`` finds every
    worker's own checkpoint; they hold the same files as the chief's and can be deleted
    once the run has finished.
    """
    out = Path(out)
    if is_chief(strategy):
        return out
    task_type, index, _ = task_info()
    return out / ".workers" / f"{task_type}-{index}"


def tf_config_from_slurm(port: int = 12345, hosts: list[str] | None = None,
                         env: dict | None = None) -> str:
    """``TF_CONFIG`` JSON for the current SLURM task: one worker per task, ``host:port``.

    Args:
        port: port every worker listens on (one task per node), or the first port when
            several tasks share a node (task ``i`` on a node gets ``port + local id``).
        hosts: node names (default: ``scontrol show hostnames $SLURM_JOB_NODELIST``).
        env: environment to read ``SLURM_*`` from (default ``os.environ``).

    Example (in a job script, per task)::

        export TF_CONFIG=$(python -c "from astrovader.distributed import tf_config_from_slurm as f; print(f())")
    """
    env = os.environ if env is None else env
    try:
        rank = int(env["SLURM_PROCID"])
        per_node = int(env.get("SLURM_NTASKS_PER_NODE", "1").split("(")[0])
    except (KeyError, ValueError):
        raise AstrovaderError("tf_config_from_slurm must run inside a SLURM task (SLURM_PROCID "
                              "is not set); set TF_CONFIG yourself elsewhere") from None
    if hosts is None:
        hosts = subprocess.run(["scontrol", "show", "hostnames", env["SLURM_JOB_NODELIST"]],
                               capture_output=True, text=True, check=True).stdout.split()
    workers = [f"{h}:{port + i}" for h in hosts for i in range(per_node)]
    return json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": rank}})
