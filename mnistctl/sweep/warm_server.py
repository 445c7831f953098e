"""The warm-start server: one process that imports torch, Lightning and mnistctl's CLI once, then forks
a fresh child for each sweep job, which runs `python -m MODULE ARGS` as a new interpreter would.

    python -m mnistctl.sweep.warm_server FD [--search]   # started by warm_start.Server, never by hand

The sweep (warm_start.py) binds a private Unix socket and passes it here as FD; this process's stdin is
a pipe from the sweep, so it stops taking jobs when the sweep ends (or is killed) and exits once its
children have. A request is one message: module, argv, cwd, environment, and three descriptors (the
job's stdout.log and stderr.log, and the read end of a lifeline pipe whose write end only the job's
runner holds). The answer is the child's pid, later its exit status (`-N` for a signal, as Popen says).

Fork is safe only from a process that never started a thread or a parallel region and never touched
CUDA: this one imports modules and parses `fit`'s packaged defaults once (`warm_parser`), nothing else.
It runs single-threaded (OpenBLAS's pool is kept at one thread here; torch's OpenMP pool starts in the
child, at its own `--num_threads`), and it never calls torch.cuda: a job that uses a GPU initialises CUDA
itself, after the fork (CUDA does not survive fork; `torch.cuda.is_available()` here would already poison
every child). tests/test_sweep_warm.py checks both, and that the children are separate processes.
"""

from __future__ import annotations

import importlib
import json
import os
import runpy
import selectors
import signal
import socket
import struct
import sys
import threading
import time
import traceback

# What `mnistctl fit` imports: the CLI (torch, Lightning, jsonargparse), and what it loads later (plots,
# TensorBoard's writer, the OmegaConf of hparams). Importing runs no torch op and starts no thread.
# Not mnistctl.__main__ itself: runpy runs it afresh in each child, as `python -m mnistctl` does (and warns
# when it is already imported).
PRELOAD = (
    "mnistctl.console",
    "mnistctl.cli.mnist_cli",
    "mnistctl.plot_callbacks",
    "torch.utils.tensorboard",
    "omegaconf",
)
SEARCH_PRELOAD = ("optuna",)  # a search job's fit reports to its trial (trial_reporter.py); 1.4 s, so only then
STOP_GRACE_S = 30  # after SIGTERM, as the cold path's runner waits before SIGKILL
MESSAGE_MAX = 1 << 20


def preload(search: bool = False) -> None:
    # numpy's OpenBLAS starts its thread pool when loaded: one thread keeps this process single-threaded.
    # The jobs' torch does not use it (torch has its own BLAS and OpenMP, set by --num_threads).
    os.environ["OPENBLAS_NUM_THREADS"] = "1"
    for name in PRELOAD + (SEARCH_PRELOAD if search else ()):
        importlib.import_module(name)
    import torch

    if torch.cuda.is_initialized():  # never true unless an import above changes: refuse to fork then
        raise RuntimeError("CUDA was initialised while preloading; warm starts would break CUDA in every job")


def warm_parser() -> None:
    """Parse `mnistctl fit`'s defaults once, as each job will parse its own config: jsonargparse keeps what it
    learns of each class (signature, nested parser) in per-process caches, which the forked jobs then share.

    Each later job's start outside its fit went from 0.33 to 0.24-0.27 s (four tiny jobs, 2-core Xeon,
    `python -m benchmarks --skip abc,fast,startup,predict,gpu --isa native`). Parsing only: nothing is
    instantiated or written, no torch op runs, no thread starts (MnistCLI tunes the process after parsing).
    Anything it prints is dropped, and a failure (say a malformed MNISTCTL_* variable) is left for the jobs
    to report.
    """
    import contextlib
    import io

    from pytorch_lightning.cli import LightningCLI

    from mnistctl.cli.mnist_cli import MnistCLI

    class Parsed(Exception):
        pass

    class ParseOnly(MnistCLI):
        def parse_arguments(self, parser, args) -> None:
            # jsonargparse's parse only: MnistCLI's own checks after it may resolve and read a checkpoint.
            LightningCLI.parse_arguments(self, parser, args)
            raise Parsed

    # The packaged defaults only: a MNISTCTL_FIT__CKPT_PATH in the sweep's environment is the jobs' business.
    settings = {name: os.environ.pop(name) for name in list(os.environ) if name.startswith("MNISTCTL_")}
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            ParseOnly(["fit"])
    except (Exception, SystemExit):  # noqa: BLE001 - Parsed, or an error the jobs will meet and report
        pass
    finally:
        os.environ.update(settings)


def serve(listener: socket.socket) -> None:
    """Fork a child per request until stdin closes and every child has been reaped and reported.
    The parser warms up (`warm_parser`) the first time no request is waiting: usually just after the first
    job's fork, while that job parses its own config on one core."""
    import gc

    gc.collect()
    gc.freeze()  # the imported modules stay shared with the children: no copy-on-write by the GC
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.set_wakeup_fd(wake_w)
    listener.setblocking(False)
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ, "accept")
    selector.register(sys.stdin.fileno(), selectors.EVENT_READ, "sweep")
    selector.register(wake_r, selectors.EVENT_READ, "child")
    children: dict[int, socket.socket] = {}
    taking, warmed = True, False
    while taking or children:
        events = selector.select(timeout=0 if taking and not warmed else 5)
        if not events and taking and not warmed:
            warm_parser()
            warmed = True
            gc.collect()
            gc.freeze()  # the parsers it cached are shared with the children as the modules are
        for key, _ in events:
            if key.data == "accept":
                _accept(listener, selector, children, [wake_r, wake_w])
            elif key.data == "sweep":  # EOF: the sweep ended or was killed; finish what runs
                selector.unregister(key.fileobj)
                selector.unregister(listener)
                listener.close()
                taking = False
            elif key.data == "child":
                os.read(wake_r, 4096)
            else:  # a runner asks to signal its child (Popen.terminate/kill)
                _signal_child(key.fileobj, key.data, children, selector)
        _reap(children, selector)


def _accept(listener, selector, children, private_fds: list[int]) -> None:
    try:
        conn, _ = listener.accept()
    except BlockingIOError:
        return
    conn.setblocking(True)
    pid_uid_gid = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i")))
    fds: list[int] = []
    try:
        message, fds, _, _ = socket.recv_fds(conn, MESSAGE_MAX, 3)
        request = json.loads(message)
        if pid_uid_gid[1] != os.getuid() or len(fds) != 3:
            raise ValueError("a request from another user or without its three descriptors")
    except (OSError, ValueError):
        for fd in fds:
            os.close(fd)
        conn.close()
        return
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        others = [c.fileno() for c in children.values()]
        own = [listener.fileno(), selector.fileno(), sys.stdin.fileno(), conn.fileno(), *private_fds, *others]
        _child(request, fds, own)  # never returns
    for fd in fds:
        os.close(fd)
    children[pid] = conn
    selector.register(conn, selectors.EVENT_READ, pid)
    conn.sendall(json.dumps({"pid": pid}).encode() + b"\n")


def _signal_child(conn, pid: int, children, selector) -> None:
    try:
        data = conn.recv(4096)
    except OSError:
        data = b""
    if not data:  # the runner hung up; its child goes on (its lifeline decides)
        selector.unregister(conn)
        return
    if pid in children:  # not reaped yet: the pid is still this child's, never a reused one
        for line in data.splitlines():
            try:
                os.kill(pid, int(json.loads(line)["signal"]))
            except (OSError, ValueError, KeyError, TypeError):
                pass


def _reap(children, selector) -> None:
    while children:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        conn = children.pop(pid, None)
        if conn is None:
            continue
        try:
            selector.unregister(conn)
        except (KeyError, ValueError):
            pass
        try:
            conn.sendall(json.dumps({"returncode": os.waitstatus_to_exitcode(status)}).encode() + b"\n")
        except OSError:
            pass
        conn.close()


# -- in the forked child ------------------------------------------------------------------------


def _child(request: dict, fds: list[int], server_fds: list[int]) -> None:
    code = 1
    try:
        for fd in server_fds:
            try:
                os.close(fd)
            except OSError:
                pass
        signal.set_wakeup_fd(-1)
        if sys.platform.startswith("linux"):  # the server gone (killed), nothing would report this job: stop it
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG
        for signum in (signal.SIGCHLD, signal.SIGTERM):
            signal.signal(signum, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        out, err, lifeline = fds
        null = os.open(os.devnull, os.O_RDONLY)
        for source, target in ((null, 0), (out, 1), (err, 2)):
            if source != target:
                os.dup2(source, target)
                os.close(source)
        for stream in (sys.stdout, sys.stderr):
            stream.reconfigure(write_through=True)  # PYTHONUNBUFFERED, as the cold path runs the fit
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        _watch(lifeline)
        if "numpy" in sys.modules:  # a new interpreter seeds numpy's global RNG afresh (`random` reseeds itself)
            sys.modules["numpy"].random.seed()
        code = _run_module(request["module"], request["argv"])
    except BaseException:  # noqa: BLE001 - the child must never return into the server's loop
        traceback.print_exc()
    finally:
        os._exit(code)


def _watch(lifeline: int) -> None:
    """When the job's runner dies (its end of the lifeline closes), stop: SIGTERM (the fit saves
    interrupted.ckpt and exits), SIGKILL after STOP_GRACE_S. PR_SET_PDEATHSIG does this on the cold path."""

    def wait() -> None:
        while os.read(lifeline, 1):
            pass
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(STOP_GRACE_S)
        os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=wait, name="mnistctl-lifeline", daemon=True).start()


def _run_module(module: str, argv: list[str]) -> int:
    """`python -m module argv...`: the exit code a new interpreter would give, its exit steps included."""
    sys.argv = [module, *argv]  # run_module puts the module's file first, as `python -m` does
    interrupted = False
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
        code = 0
    except SystemExit as done:
        if done.code is None or isinstance(done.code, int):
            code = done.code or 0
        else:
            sys.stderr.write(f"{done.code}\n")
            code = 1
    except KeyboardInterrupt:
        traceback.print_exc()
        code, interrupted = 1, True
    except BaseException:  # noqa: BLE001 - printed as the interpreter would, exit 1
        traceback.print_exc()
        code = 1
    _exit_steps()
    if interrupted:  # Python ends by SIGINT after an uncaught Ctrl-C
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
    return code


def _exit_steps() -> None:
    """What the interpreter does at exit before it stops: join non-daemon threads, run atexit handlers."""
    import atexit

    for thread in threading.enumerate():
        if thread is not threading.main_thread() and not thread.daemon:
            thread.join()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass


def main(argv: list[str]) -> int:
    listener = socket.socket(fileno=int(argv[0]))
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the jobs; the server outlives them
    preload(search="--search" in argv[1:])
    serve(listener)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
