"""The first lines run by the sandbox's own interpreters: the zygote and the fork server.

Both start with ``python -I`` (no environment variables, no user site, no current directory
on the path) and this package's directory as ``sys.argv[1]``. Stub ``grpo_envs`` and
``grpo_envs.sandbox`` packages are installed before the entry module is imported, so that
only the sandbox's own standard-library modules are: not the environments (gymnasium,
numpy), and not :mod:`grpo_envs.sandbox.pool` (subprocess, threading), whose at-fork handlers
every candidate process would otherwise run, paying a copy-on-write fault for each page they
touch.
"""

from __future__ import annotations


def bootstrap_source(entry_module: str) -> str:
    """Source for ``python -I -c`` that runs ``entry_module.main()`` with the stub packages."""
    return (
        "import sys, types\n"
        "package = types.ModuleType('grpo_envs'); package.__path__ = [sys.argv[1]]\n"
        "sandbox = types.ModuleType('grpo_envs.sandbox'); sandbox.__path__ = [sys.argv[1] + '/sandbox']\n"
        "sys.modules['grpo_envs'] = package; sys.modules['grpo_envs.sandbox'] = sandbox\n"
        f"from {entry_module} import main\n"
        "main()\n"
    )
