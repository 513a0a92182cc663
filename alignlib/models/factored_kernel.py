"""A fused CPU kernel for the factored neural tower's per-sample part (one pass over B x N x N).

:class:`alignlib.models.neural_tower.FactoredAttendAggregate` computes, per head and row block,
``u_bi = sum_j softmax_j(z_bij) r_bj H_ij`` with ``z_bij = scale * r_bj (r_bi G_ij + s_j)``, and
in backward the gradients with respect to r, G, s and H. In torch's element-wise ops that is about
ten passes over a (B, rows, N) temporary forward and twenty backward. This module holds the same
arithmetic as one loop per (i, b) row written in C (forward: a max sweep and an exp sweep;
backward: one sweep, the softmax recomputed from the log-sum-exp saved by the forward), compiled
on first use with the system's C compiler (``cc -O3 -march=native``; vectorised exp from glibc's
libmvec where available) and called through :mod:`ctypes` from ``torch.get_num_threads()``
Python threads, one contiguous range of rows each (ctypes releases the GIL).

The shared library is cached under ``$ALIGNLIB_KERNEL_DIR`` (default
``~/.cache/alignlib/kernels``), named by a hash of its source, the compiler command and this CPU's
model and flags; it is written to a temporary file and renamed, so concurrent first uses are safe.
Where no compiler works (or ``ALIGNLIB_FACTORED_KERNEL=0``) :func:`load` returns None and the
tower uses its device-agnostic torch path (the same one CUDA runs). Exactness is tested against
the direct computation in float64 (``tests/test_fast_tower.py``).
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

__all__ = ["load", "available", "forward_block", "backward_block", "kernel_dir", "KERNEL_ENV"]

#: set to 0 to disable the compiled kernel (the torch path is used instead)
KERNEL_ENV = "ALIGNLIB_FACTORED_KERNEL"

_BODY = r"""
/* rows k in [k0, k1) of a block whose first row is neuron i_off; r, rs = scale * r: (B, N) */
void fwd_@T@(const @T@ *restrict r, const @T@ *restrict rs, const @T@ *restrict G,
             const @T@ *restrict s, const @T@ *restrict H, long B, long N, long k0, long k1,
             long i_off, @T@ *restrict u, @T@ *restrict lse)
{
    for (long k = k0; k < k1; ++k) {
        const @T@ *restrict Gk = G + k * N;
        const @T@ *restrict Hk = H + k * N;
        const long i = i_off + k;
        for (long b = 0; b < B; ++b) {
            const @T@ *restrict rb = r + b * N;
            const @T@ *restrict rsb = rs + b * N;
            const @T@ ri = rb[i];
            @T@ m = -@MAX@;
            #pragma omp simd reduction(max:m)
            for (long j = 0; j < N; ++j) {
                @T@ z = rsb[j] * (ri * Gk[j] + s[j]);
                m = z > m ? z : m;
            }
            @T@ l = 0, acc = 0;
            #pragma omp simd reduction(+:l, acc)
            for (long j = 0; j < N; ++j) {
                @T@ e = @EXP@(rsb[j] * (ri * Gk[j] + s[j]) - m);
                l += e;
                acc += e * rb[j] * Hk[j];
            }
            u[b * N + i] = acc / l;
            lse[b * N + i] = m + @LOG@(l);
        }
    }
}

/* accumulates dG, dH (rows k of the block), dr (drp, B x N) and ds (dsp, N) of this thread */
void bwd_@T@(const @T@ *restrict r, const @T@ *restrict rs, const @T@ *restrict G,
             const @T@ *restrict s, const @T@ *restrict H, const @T@ *restrict gu,
             const @T@ *restrict u, const @T@ *restrict lse, double scale_, long B, long N,
             long k0, long k1, long i_off, @T@ *restrict dG, @T@ *restrict dH,
             @T@ *restrict drp, @T@ *restrict dsp)
{
    const @T@ scale = (@T@)scale_;
    for (long k = k0; k < k1; ++k) {
        const @T@ *restrict Gk = G + k * N;
        const @T@ *restrict Hk = H + k * N;
        @T@ *restrict dGk = dG + k * N;
        @T@ *restrict dHk = dH + k * N;
        const long i = i_off + k;
        for (long b = 0; b < B; ++b) {
            const @T@ gi = gu[b * N + i];
            if (gi == 0) continue;                 /* every term carries g_bi */
            const @T@ *restrict rb = r + b * N;
            const @T@ *restrict rsb = rs + b * N;
            @T@ *restrict drb = drp + b * N;
            const @T@ ri = rb[i], ui = u[b * N + i], L = lse[b * N + i];
            @T@ dri = 0;
            #pragma omp simd reduction(+:dri)
            for (long j = 0; j < N; ++j) {
                const @T@ t = ri * Gk[j] + s[j];
                const @T@ pg = gi * @EXP@(rsb[j] * t - L);
                const @T@ rj = rb[j], h = Hk[j];
                const @T@ e = scale * pg * (rj * h - ui);
                const @T@ er = e * rj;
                dHk[j] += pg * rj;
                drb[j] += pg * h + e * t;
                dGk[j] += er * ri;
                dsp[j] += er;
                dri += er * Gk[j];
            }
            drb[i] += dri;
        }
    }
}
"""


def _source() -> str:
    head = "#include <math.h>\n#include <float.h>\n"
    return head + "".join(_BODY.replace("@T@", t).replace("@EXP@", e).replace("@LOG@", lg)
                          .replace("@MAX@", mx)
                          for t, e, lg, mx in (("float", "expf", "logf", "FLT_MAX"),
                                               ("double", "exp", "log", "DBL_MAX")))


#: compiler flag sets tried in order. The library is linked in a separate step without
#: -ffast-math: linking with it would add crtfastmath.o, which switches the whole process to
#: flush-to-zero when the library loads.
_FLAG_SETS = (
    ["-O3", "-march=native", "-ffast-math", "-fopenmp-simd"],
    ["-O3", "-march=native", "-fno-math-errno", "-fno-trapping-math", "-fopenmp-simd"],
    ["-O2"],
)


def kernel_dir() -> Path:
    """Folder of the compiled kernels: ``$ALIGNLIB_KERNEL_DIR`` or ``~/.cache/alignlib/kernels``."""
    env = os.environ.get("ALIGNLIB_KERNEL_DIR")
    return Path(env) if env else Path.home() / ".cache" / "alignlib" / "kernels"


def _cpu_fingerprint() -> str:
    """The CPU model and flags (a library built with -march=native is valid only on such a CPU)."""
    keep = []
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith(("model name", "flags")) and line not in keep:
                    keep.append(line)
                if len(keep) >= 2:
                    break
    except OSError:
        pass
    return platform.machine() + platform.processor() + "".join(keep)


_lock = threading.Lock()
_lib: ctypes.CDLL | None = None
_tried = False


def _compile(compiler: str, flags: list[str], out: Path) -> bool:
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        src = Path(tmp) / "factored.c"
        src.write_text(_source())
        so = Path(tmp) / out.name
        obj = Path(tmp) / "factored.o"
        for cmd in ([compiler, *flags, "-fPIC", "-c", "-o", str(obj), str(src)],
                    [compiler, "-shared", "-o", str(so), str(obj), "-lm"]):
            try:
                proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
            except (OSError, subprocess.TimeoutExpired):
                return False
            if proc.returncode != 0:
                return False
        if not so.is_file():
            return False
        os.replace(so, out)                     # atomic: a concurrent user sees all or nothing
    return True


def load() -> ctypes.CDLL | None:
    """The compiled kernel library (compiling it on first use), or None where it cannot be built."""
    global _lib, _tried
    if os.environ.get(KERNEL_ENV, "1") == "0":
        return None
    with _lock:
        if _tried:
            return _lib
        _tried = True
        compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
        if compiler is None:
            return None
        for flags in _FLAG_SETS:
            key = hashlib.sha256("\0".join([_source(), compiler, *flags, _cpu_fingerprint()])
                                 .encode()).hexdigest()[:16]
            path = kernel_dir() / f"factored-{key}.so"
            if not path.is_file() and not _compile(compiler, flags, path):
                continue
            try:
                lib = ctypes.CDLL(str(path))
            except OSError:
                continue
            for t in ("float", "double"):
                getattr(lib, f"fwd_{t}").argtypes = ([ctypes.c_void_p] * 5 + [ctypes.c_long] * 5
                                                     + [ctypes.c_void_p] * 2)
                getattr(lib, f"bwd_{t}").argtypes = ([ctypes.c_void_p] * 8 + [ctypes.c_double]
                                                     + [ctypes.c_long] * 5 + [ctypes.c_void_p] * 4)
            _lib = lib
            return _lib
        warnings.warn("alignlib: the factored tower's C kernel could not be compiled; using the "
                      "torch path (slower on CPU, same result)", RuntimeWarning, stacklevel=2)
        return None


def available(t: torch.Tensor) -> bool:
    """Whether the kernel applies to tensors like ``t`` (CPU, float32/float64) and is built."""
    return t.device.type == "cpu" and t.dtype in (torch.float32, torch.float64) and load() is not None


_pool: ThreadPoolExecutor | None = None


def _run_split(fn, rows: int, *args) -> None:
    """Call ``fn(*args, k0, k1, ...)`` over ``torch.get_num_threads()`` contiguous row ranges."""
    global _pool
    threads = max(1, min(torch.get_num_threads(), rows))
    bounds = [rows * t // threads for t in range(threads + 1)]
    if threads == 1:
        fn(0, bounds[0], bounds[1])
        return
    with _lock:
        if _pool is None or _pool._max_workers < threads:
            _pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="alignlib-factored")
    futures = [_pool.submit(fn, t, bounds[t], bounds[t + 1]) for t in range(threads)]
    for f in futures:
        f.result()


def _ptr(t: torch.Tensor) -> int:
    return t.data_ptr()


def forward_block(r: torch.Tensor, rs: torch.Tensor, G: torch.Tensor, s: torch.Tensor,
                  H: torch.Tensor, i0: int, u: torch.Tensor, lse: torch.Tensor) -> None:
    """Fill ``u[:, i0:i0+rows]`` and ``lse[:, i0:i0+rows]`` for the block rows G, H (rows, N).

    All tensors contiguous, same dtype; ``rs = scale * r``."""
    lib = load()
    fwd = getattr(lib, "fwd_float" if r.dtype == torch.float32 else "fwd_double")
    b, n = r.shape
    args = [_ptr(x) for x in (r, rs, G, s, H)]
    _run_split(lambda _t, k0, k1: fwd(*args, b, n, k0, k1, i0, _ptr(u), _ptr(lse)), G.shape[0])


def backward_block(r: torch.Tensor, rs: torch.Tensor, G: torch.Tensor, s: torch.Tensor,
                   H: torch.Tensor, gu: torch.Tensor, u: torch.Tensor, lse: torch.Tensor,
                   scale: float, i0: int, dG: torch.Tensor, dH: torch.Tensor,
                   dr_parts: torch.Tensor, ds_parts: torch.Tensor) -> None:
    """Accumulate into dG, dH (rows, N, zeroed by the caller) and the per-thread partial sums
    ``dr_parts`` (threads, B, N) and ``ds_parts`` (threads, N) for the block's rows."""
    lib = load()
    bwd = getattr(lib, "bwd_float" if r.dtype == torch.float32 else "bwd_double")
    b, n = r.shape
    args = [_ptr(x) for x in (r, rs, G, s, H, gu, u, lse)]
    if dr_parts.shape[0] < min(torch.get_num_threads(), G.shape[0]):
        raise ValueError("dr_parts needs one (B, N) slice per thread")

    def part(t, k0, k1):
        bwd(*args, float(scale), b, n, k0, k1, i0, _ptr(dG), _ptr(dH), _ptr(dr_parts[t]),
            _ptr(ds_parts[t]))

    _run_split(part, G.shape[0])
