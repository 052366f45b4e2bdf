"""What this CPU can do fast: its feature flags (injectable with `VISOR_CPU_FLAGS`, so each
branch that depends on them is tested on any machine)."""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable
from pathlib import Path


def cpu_has_bf16(flags: Iterable[str] | None = None) -> bool:
    """True when the CPU computes bf16 natively (AVX512-BF16 or AMX); `flags` default to
    this machine's (`cpu_flags`)."""
    return not {"avx512_bf16", "amx_bf16"}.isdisjoint(cpu_flags() if flags is None else flags)


INT8_FLAGS = frozenset({"avx512_vnni", "avx_vnni", "amx_int8"})


def cpu_has_int8(flags: Iterable[str] | None = None) -> bool:
    """True when the CPU has int8 dot-product instructions (AVX512-VNNI, AVX-VNNI or AMX):
    where a statically quantized model runs about 4x the fp32 rate. Elsewhere int8 is
    emulated through wider instructions and is no faster than fp32."""
    return not INT8_FLAGS.isdisjoint(cpu_flags() if flags is None else flags)


def cpu_flags() -> frozenset[str]:
    """This CPU's feature flags: `VISOR_CPU_FLAGS` (space-separated) when set, else Linux's
    /proc/cpuinfo; elsewhere none."""
    override = os.environ.get("VISOR_CPU_FLAGS")
    return frozenset(override.split()) if override is not None else _proc_cpu_flags()


@functools.cache
def _proc_cpu_flags() -> frozenset[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.partition(":")[2].split())
    return frozenset()
