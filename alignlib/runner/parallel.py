"""Independent pipeline pages executed in parallel on ``dask.distributed``.

Each page is one papermill execution, submitted as one Dask task. The decisions stay here, in the
client: a page is considered only when every scheduled page it ``needs`` has finished, and is then
skipped when up to date exactly as in a serial run (:class:`alignlib.runner.execute._Planner`). When a
page fails, the pages that need it (transitively) are not started, the other pages go on and keep their
outputs, and :class:`StepsFailed` names each failed step, its notebook and cell. A worker that dies
while running a page (killed, out of memory) makes the scheduler run the page again on another worker,
once on the runner's own ``LocalCluster`` (``allowed_failures=1``); a second death is reported as a failure
of that step (Dask's ``KilledWorker``), never lost. Pages are submitted only while a worker thread is
free, so that a page waiting behind another on a worker does not share the blame when that one kills it
(Dask counts a death against every page a worker holds).

Each page runs under its lock (:func:`alignlib.runner.execute.execute_locked`), so a second command
running the same pages waits for them and does not run them again.

Workers must see the same files as the client (one machine, or a shared file system with the same
paths and the same environment: the repository, ``.venv`` and ``$ALIGNLIB_*`` folders).
"""
from __future__ import annotations

import contextlib
import os
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator

from alignlib.runner.execute import NotebookFailed, PageStatus, _Planner, execute_step, thread_env
from alignlib.runner.pipeline import PlannedRun

ALLOWED_FAILURES = 1  # worker deaths a page survives on the runner's LocalCluster (then: KilledWorker)


class StepsFailed(NotebookFailed):
    """One or more pages failed in a parallel run; ``failures`` maps each failed step to its
    :class:`~alignlib.runner.execute.NotebookFailed`, ``blocked`` the pages not started because a page
    they need failed, ``statuses`` what the other pages did (their outputs are kept)."""

    def __init__(self, failures: dict[str, NotebookFailed], blocked: list[str], statuses: list[PageStatus]):
        first = next(iter(failures.values()))
        super().__init__(first.notebook, first.cell_index, first.exec_count, first.error, first.partial, first.step)
        self.failures, self.blocked, self.statuses = failures, blocked, statuses
        lines = [f"{len(failures)} step(s) failed:"] + [f"  {err}" for err in failures.values()]
        if blocked:
            lines.append("not started, because a page they need failed: " + ", ".join(blocked))
        done = [s.output for s in statuses if s.executed]
        if done:
            lines.append("executed and kept: " + ", ".join(done))
        self.args = ("\n".join(lines),)

    def __str__(self) -> str:
        return self.args[0]

    def __reduce__(self):
        return type(self), (self.failures, self.blocked, self.statuses)


def cores() -> int:
    """CPU cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def local_cluster(workers: int, *, processes: bool = True, **kwargs: Any):
    """A ``distributed.LocalCluster`` on loopback for the pipeline: ``workers`` workers of one thread each,
    each holding only the page it runs (``worker-saturation`` 1.0: a page waiting in a worker's queue would
    share the blame when that worker dies), no worker memory limit (the memory is in each page's kernel,
    a child process the nanny does not count), a page retried once when its worker dies, the dashboard
    (if bokeh is installed) on a free port."""
    import dask
    from distributed import LocalCluster

    options = dict(n_workers=workers, threads_per_worker=1, processes=processes, protocol="tcp://", host="127.0.0.1",
                   dashboard_address=":0", memory_limit=0,
                   scheduler_kwargs={"allowed_failures": ALLOWED_FAILURES})
    with dask.config.set({"distributed.scheduler.worker-saturation": 1.0}):
        return LocalCluster(**{**options, **kwargs})


@contextlib.contextmanager
def dask_client(workers: int, scheduler: str | None, client: Any, log: Callable[[str], None]) -> Iterator[Any]:
    """The client to submit pages to: ``client`` as given, one connected to ``scheduler``, or one on a new
    :func:`local_cluster` of ``workers`` workers (closed afterwards)."""
    from distributed import Client

    if client is not None:
        yield client
    elif scheduler:
        with Client(scheduler) as c:
            log(f"[alignlib] Dask scheduler {scheduler}: {len(c.nthreads())} worker(s) now")
            yield c
    else:
        with local_cluster(workers) as cluster, Client(cluster) as c:
            log(f"[alignlib] Dask LocalCluster: {workers} worker processes x 1 thread")
            yield c


def downstream_counts(scheduled: list[tuple[PlannedRun, str]]) -> dict[str, int]:
    """For each scheduled page, how many scheduled pages need it, directly or through others.

    :func:`run_parallel` starts the ready page with the most such pages first (ties: schedule order), so
    that the long chain (data -> training pages -> interpretation -> ledger) is not kept waiting behind
    pages that nothing needs: measured on a fresh clone with two workers, first-come order left the
    chain's pages for last."""
    outputs = {run.output for run, _ in scheduled}
    needed_by: dict[str, set[str]] = {o: set() for o in outputs}
    for run, _ in scheduled:
        for n in run.needs:
            if n in outputs:
                needed_by[n].add(run.output)
    memo: dict[str, set[str]] = {}

    def below(output: str, seen: frozenset = frozenset()) -> set[str]:
        if output in memo:
            return memo[output]
        out: set[str] = set()
        for d in needed_by[output]:
            if d not in seen:                  # the planner refuses cycles; never loop here
                out |= {d} | below(d, seen | {output})
        memo[output] = out
        return out

    return {o: len(below(o)) for o in outputs}


def run_parallel(scheduled: list[tuple[PlannedRun, str]], planner: _Planner, folder: Path, *,
                 log: Callable[[str], None] = print, workers: int = 1, scheduler: str | None = None,
                 client: Any = None, threads: int | None = None) -> list[PageStatus]:
    """Execute the scheduled pages on Dask, each as soon as the pages it needs are done; return the
    statuses in schedule order. Raises :class:`StepsFailed` after every page that could run has run.

    Each page's kernel gets the client's ``ALIGNLIB_*`` variables and, when ``threads`` is given (default
    on a new LocalCluster: cores // workers), ``OMP_NUM_THREADS`` and friends, so that the pages running
    side by side do not oversubscribe the cores (torch sizes its thread pool from ``OMP_NUM_THREADS``).
    """
    from distributed import KilledWorker, as_completed

    if threads is None and client is None and not scheduler:
        threads = max(1, cores() // workers)
    env = {k: v for k, v in os.environ.items() if k.startswith("ALIGNLIB_")} | thread_env(threads)
    if threads:
        log(f"[alignlib] each page's kernel limited to {env['OMP_NUM_THREADS']} thread(s) (OMP_NUM_THREADS)")
    order = {run.output: i for i, (run, _) in enumerate(scheduled)}
    downstream = downstream_counts(scheduled)
    waiting = list(scheduled)
    finished: set[str] = set()
    failures: dict[str, NotebookFailed] = {}
    blocked: list[str] = []
    statuses: list[PageStatus] = []
    with dask_client(workers, scheduler, client, log) as dask:
        running = as_completed()
        submitted: dict[Any, tuple[PlannedRun, list[str]]] = {}
        ready: list[tuple[PlannedRun, dict[str, Any], list[str]]] = []

        def submit_while_free() -> None:
            capacity = max(1, sum(dask.nthreads().values()))  # worker threads now (a new cluster may have none yet)
            # the ready page that most pages wait for first (ties: schedule order)
            ready.sort(key=lambda item: (-downstream[item[0].output], order[item[0].output]))
            while ready and len(submitted) < capacity:
                run, manifest, reasons = ready.pop(0)
                future = dask.submit(execute_step, run, folder, manifest, env, again=reasons == ["--force"],
                                     pure=False,
                                     key=f"alignlib-{run.output.replace('/', '-')}-{uuid.uuid4().hex[:8]}")
                submitted[future] = (run, reasons)
                running.add(future)

        def advance() -> None:
            """Decide every page whose needs are all finished (deciding one may free others)."""
            progress = True
            while progress:
                progress = False
                for item in list(waiting):
                    run, role = item
                    needs = [n for n in run.needs if n in order]
                    if any(n in failures or n in blocked for n in needs):
                        waiting.remove(item)
                        blocked.append(run.output)
                        progress = True
                        continue
                    if not all(n in finished for n in needs):
                        continue
                    waiting.remove(item)
                    progress = True
                    kind, what = planner.decide(run, role)
                    if kind == "run":
                        ready.append((run, *what))
                        continue
                    if kind == "skip":
                        statuses.append(what)
                    finished.add(run.output)
            submit_while_free()

        advance()
        for future in running:
            run, reasons = submitted.pop(future)
            try:
                seconds = future.result()
            except NotebookFailed as err:
                failures[run.output] = err
            except KilledWorker as err:
                failures[run.output] = NotebookFailed(
                    str(run.source), None, None, f"its Dask worker died while running it, also when retried "
                    f"({type(err).__name__}: {err})", None, run.output)
            except Exception as err:  # lost connection, cancelled, ...
                failures[run.output] = NotebookFailed(str(run.source), None, None, f"{type(err).__name__}: {err}",
                                                      None, run.output)
            else:
                finished.add(run.output)
                statuses.append(PageStatus(run.output, folder / f"{run.output}.ipynb", seconds is not None,
                                           ", ".join(reasons) if seconds is not None
                                           else "published by another command"))
                log(f"[alignlib] {run.output} done in {seconds:.1f} s" if seconds is not None else
                    f"[alignlib] {run.output}: published meanwhile by another command, not run again")
            if run.output in failures:
                log(f"[alignlib] FAILED: {failures[run.output]}")
            advance()
    statuses.sort(key=lambda s: order[s.output])
    if failures:
        raise StepsFailed(failures, blocked, statuses)
    return statuses
