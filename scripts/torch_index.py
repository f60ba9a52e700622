"""Which PyTorch build `make setup` installs: the pip arguments that choose it, printed on one line.

On Linux the package index's default `torch` wheel is the CUDA build (several GB with its NVIDIA
libraries): wasted on a machine without an NVIDIA GPU, and on a GPU machine it should match the driver.
So the choice is made here, deliberately:

- an NVIDIA GPU with a driver (`nvidia-smi` answers and names a CUDA version): the newest CUDA build of
  `CUDA_BUILDS` that the driver supports, from PyTorch's index (`--index-url .../whl/cu128`);
- otherwise the CPU build (`--index-url .../whl/cpu`);
- macOS and Windows: nothing (the default wheels there are already the right ones);
- PyTorch's index unreachable (offline, a local wheel mirror): nothing, so pip's own configured sources
  decide, as they did before this script.

Override in make: `make setup TORCH_PIP_ARGS="--index-url https://download.pytorch.org/whl/cu126"`.
Only the standard library: it runs before the virtual environment exists.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from typing import Callable

INDEX = "https://download.pytorch.org/whl"
INDEX_HOST = "download.pytorch.org"
# (oldest driver CUDA version a build runs on, the build): PyTorch's published CUDA builds, newest first.
CUDA_BUILDS = (((13, 0), "cu130"), ((12, 8), "cu128"), ((12, 6), "cu126"), ((11, 8), "cu118"))


def driver_cuda_version(run: Callable = subprocess.run) -> tuple[int, int] | None:
    """The CUDA version the NVIDIA driver supports (nvidia-smi's header), None without a GPU or driver."""
    try:
        done = run(["nvidia-smi"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    found = re.search(r"CUDA Version:\s*(\d+)\.(\d+)", done.stdout or "")
    if done.returncode != 0 or not found:
        return None
    return int(found.group(1)), int(found.group(2))


def torch_build(cuda: tuple[int, int] | None) -> str:
    """cuXYZ for a driver that supports CUDA `cuda`, cpu without one (or with a driver older than any build)."""
    if cuda is None:
        return "cpu"
    return next((build for oldest, build in CUDA_BUILDS if cuda >= oldest), "cpu")


def index_reachable(timeout: float = 3.0) -> bool:
    if os.environ.get("HTTPS_PROXY") or os.environ.get("https_proxy"):
        return True  # pip goes through the proxy; a direct connection says nothing
    try:
        socket.create_connection((INDEX_HOST, 443), timeout=timeout).close()
    except OSError:
        return False
    return True


def pip_arguments(
    platform: str = sys.platform,
    cuda: Callable[[], tuple[int, int] | None] = driver_cuda_version,
    reachable: Callable[[], bool] = index_reachable,
) -> str:
    if not platform.startswith("linux") or not reachable():
        return ""
    return f"--index-url {INDEX}/{torch_build(cuda())}"


def main() -> int:
    arguments = pip_arguments()
    build = arguments.rsplit("/", 1)[-1] if arguments else "pip's configured sources"
    print(f"torch: {build}", file=sys.stderr)
    print(arguments)
    return 0


if __name__ == "__main__":
    sys.exit(main())
