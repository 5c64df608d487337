"""A plugin for resilience tests: methods that diverge, or kill their own process or its parent, on request.

Loaded with `--plugin tests/plugins/faulty_methods.py`, in the driver and in every worker process.
"""

import os
import signal
import time

import torch

from disentbench import methods
from disentbench.bench.worker import PARENT_ENV
from disentbench.methods.vae import VAE


@methods.register("nanvae")
class NaNVAE(VAE):
    """Its loss turns NaN at step `nan_at` while the file named by $FAULTY_NAN_FLAG exists."""

    hparams = {"nan_at": 4}

    def train_step(self, x, step, generator):
        logs = super().train_step(x, step, generator)
        flag = os.environ.get("FAULTY_NAN_FLAG")
        if flag and os.path.exists(flag) and step >= self.hp["nan_at"]:
            logs["loss"] = torch.tensor(float("nan"))
        return logs


@methods.register("killervae")
class KillerVAE(VAE):
    """SIGKILLs its own process at step `kill_at` (a worker dying of an out-of-memory kill)."""

    hparams = {"kill_at": 2}

    def train_step(self, x, step, generator):
        if step >= self.hp["kill_at"]:
            os.kill(os.getpid(), signal.SIGKILL)
        return super().train_step(x, step, generator)


@methods.register("parentkillervae")
class ParentKillerVAE(VAE):
    """SIGKILLs the process that started its worker process (a pool or Dask worker: a lost worker) at
    step `kill_at`, once: inside a worker process, while the file named by $FAULTY_KILL_PARENT_FLAG
    exists (removed first). Then it waits for the worker process's watch to kill it too."""

    hparams = {"kill_at": 5}

    def train_step(self, x, step, generator):
        flag, parent = os.environ.get("FAULTY_KILL_PARENT_FLAG"), os.environ.get(PARENT_ENV)
        if step == self.hp["kill_at"] and flag and parent == str(os.getppid()) and os.path.exists(flag):
            os.unlink(flag)
            os.kill(os.getppid(), signal.SIGKILL)
            time.sleep(10)
            raise RuntimeError("this cell's process outlived its parent by 10 s")
        return super().train_step(x, step, generator)
