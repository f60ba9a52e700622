"""Which machine a latency was measured on: its signature, how two signatures differ, and where the
user's own profiles live. The bottom of the machine-related modules: profiles read and write signatures,
calibration (`nas.latency._machine`) compares them."""

from __future__ import annotations

import hashlib
import json
import os
import platform
from pathlib import Path
from typing import Any

from nas._resources import user_folder

ISA_FLAGS = ("avx512f", "avx512_vnni", "avx512_bf16", "amx_tile", "avx2", "fma", "avx", "asimd", "sve")
SIGNATURE_KEYS = ("cpu", "isa", "cores", "onnxruntime", "provider", "machine")
PROFILE_DIR_ENV = "NAS_PROFILE_DIR"


def _isa() -> list[str] | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                present = set(line.split(":", 1)[1].split())
                return [flag for flag in ISA_FLAGS if flag in present]
    except OSError:
        pass
    return None


def machine_signature(provider: str = "CPUExecutionProvider") -> dict[str, Any]:
    """What makes latency measured here comparable: CPU, ISA flags, cores, ONNX Runtime, provider."""
    import onnxruntime

    from nas._io import cpu_model

    return {
        "cpu": cpu_model(),
        "isa": _isa(),
        "cores": os.cpu_count(),
        "onnxruntime": onnxruntime.__version__,
        "provider": provider,
        "machine": platform.machine(),
    }


def _minor(version: Any) -> str:
    return ".".join(str(version).split(".")[:2])


def signature_differences(recorded: dict, here: dict) -> list[str]:
    """What differs between the machine a profile was measured on and this one (empty: the same)."""
    found = []
    if recorded.get("cpu") != here.get("cpu"):
        found.append(f"CPU {recorded.get('cpu')!r} here {here.get('cpu')!r}")
    if recorded.get("isa") is None:
        found.append("the profile's ISA flags are not recorded")
    elif here.get("isa") is not None and set(recorded["isa"]) != set(here["isa"]):
        found.append(f"ISA {'/'.join(recorded['isa']) or 'none'} here {'/'.join(here['isa']) or 'none'}")
    if _minor(recorded.get("onnxruntime")) != _minor(here.get("onnxruntime")):
        found.append(f"ONNX Runtime {recorded.get('onnxruntime')} here {here.get('onnxruntime')}")
    if recorded.get("provider", "CPUExecutionProvider") != here.get("provider"):
        found.append(f"provider {recorded.get('provider')} here {here.get('provider')}")
    return found


def signature_key(signature: dict) -> str:
    """A short name for a machine, for its calibrated profile's file name."""
    key = {k: signature.get(k) for k in ("cpu", "isa", "provider")} | {
        "onnxruntime": _minor(signature.get("onnxruntime"))
    }
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:10]


def user_profile_dir() -> Path:
    """Where profiles a user makes go (never into the installed package): $NAS_PROFILE_DIR, else
    $XDG_CONFIG_HOME/nas/profiles, else ~/.config/nas/profiles."""
    return user_folder(PROFILE_DIR_ENV, "XDG_CONFIG_HOME", ".config", "profiles")
