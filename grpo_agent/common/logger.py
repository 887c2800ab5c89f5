"""Logging: stable-baselines3's logger (stdout, CSV, TensorBoard, JSON), configured here.

Use ``model.set_logger(configure("runs/x", ["stdout", "csv", "tensorboard"]))`` to choose the
outputs yourself; otherwise ``learn`` configures one from ``verbose`` and ``tensorboard_log``.
"""

from __future__ import annotations

import os

from stable_baselines3.common.logger import Logger, configure
from stable_baselines3.common.utils import get_latest_run_id


def configure_logger(
    verbose: int = 0,
    tensorboard_log: str | None = None,
    tb_log_name: str = "",
    reset_num_timesteps: bool = True,
) -> Logger:
    """Stdout when ``verbose >= 1``; with ``tensorboard_log``, also TensorBoard and CSV files in
    ``tensorboard_log/<tb_log_name>_<run id>`` (SB3 writes no CSV there; the benchmarks need it).

    :param verbose: 0 silent, 1 prints a table after every ``log_interval`` updates.
    :param tensorboard_log: folder for TensorBoard and CSV logs, or None.
    :param tb_log_name: run name prefix.
    :param reset_num_timesteps: False continues the latest run's folder.
    """
    formats = ["stdout"] if verbose >= 1 else []
    folder = None
    if tensorboard_log is not None:
        run_id = get_latest_run_id(tensorboard_log, tb_log_name)
        if reset_num_timesteps:
            run_id += 1
        folder = os.path.join(tensorboard_log, f"{tb_log_name}_{max(run_id, 1)}")
        formats += ["tensorboard", "csv"]
    if not formats:
        # SB3's configure() would create an empty temporary folder for a silent logger.
        return Logger(folder=None, output_formats=[])
    return configure(folder, format_strings=formats)


__all__ = ["Logger", "configure", "configure_logger"]
