"""The PowerPC guest's agent: what makes the guest a host of the lab.

Run by /init as the guest's main program (when it exits, the guest powers off):

1. imports socketlab (a CPython start and socketlab's imports cost seconds of emulated CPU),
   opens the virtio-serial port named ``org.socketlab.exec`` and waits there for the lab's
   settings. Nothing before this point depends on the lab: it is where guest-supervisor
   snapshots the guest when the image is built, and where every later start resumes it
   (qemu/README.md, "Boot snapshot"). The settings, one JSON line
   ``{"id": N, "settings": {...}}`` (:func:`settle`): the time, entropy, the guest's addresses
   and gateways (``/init net`` sets them), and, when the lab has TLS, its CA and the guest's
   certificate and key, written to /pki;
2. starts ``socketlab app-server :: 65432`` (the little-endian -> big-endian direction) and,
   with a certificate, the same over TLS on 65439; waits for their ``Listening on`` lines; their
   later output goes to the console, each line after ``PORT app-server | `` as on the lab's
   server. Each server is a process of its own, forked from this one, which has imported
   socketlab: paid once, not once a server (issue 20);
3. prints ``socketlab-guest: ready`` on the console: the container's readiness signal;
4. serves exec requests on the same port: one JSON line ``{"id": N, "argv": [...],
   "timeout": S}`` in, one JSON line ``{"id": N, "returncode": R, "stdout": B64, "stderr": B64}``
   out (see qemu/bin/guest-supervisor). ``python3 -m socketlab[.MODULE] ...`` runs in a child
   forked from this process, as the servers do (the start-up demo, and most of what the tests
   run here): a second or two less of emulated CPU each; anything else is a new process.

Standard library only (the guest's CPython has ssl and hashlib on OpenSSL, but no ctypes, zlib).
"""

import base64
import fcntl
import json
import os
import runpy
import selectors
import signal
import subprocess
import sys
import threading
import time
import traceback

from socketlab.addresses import ready_port

PORT_NAME = "org.socketlab.exec"
READY_LINE = "socketlab-guest: ready"
MAX_LINE = 1 << 20  # a request larger than this is a protocol error, not a memory blow-up
#: The guest's servers: the ports the lab's server uses for the same services
#: (services/hosts/server.sh; lab_tests/unit/test_docs.py keeps them equal).
APP_PORT, TLS_PORT = 65432, 65439
PKI_DIR = "/pki"
CERT, KEY = PKI_DIR + "/guest.pem", PKI_DIR + "/guest.key"
#: What the settings may hold at /pki (guest-supervisor's PKI_FILES), and each file's mode.
PKI_FILES = {"ca.pem": 0o644, "guest.pem": 0o644, "guest.key": 0o600}
#: RNDRESEEDCRNG, _IO('R', 0x07): on PowerPC _IOC_NONE is 1 in the top three bits, not 0.
RNDRESEEDCRNG = (0x20000000 if os.uname().machine.startswith("ppc") else 0) | 0x5207


def console(line):
    """One whole line to the console, in one write: the servers' forwarding threads and this
    one never splice their lines (``print`` writes the text and its newline separately)."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def log(message):
    console("socketlab-guest: %s" % message)


def uptime():
    with open("/proc/uptime") as f:
        return float(f.read().split()[0])


def find_port(name, timeout=10.0):
    """The /dev node of the virtio-serial port called NAME (no udev: look it up in sysfs)."""
    deadline = time.monotonic() + timeout
    base = "/sys/class/virtio-ports"
    while True:
        try:
            for entry in sorted(os.listdir(base)):
                try:
                    with open(os.path.join(base, entry, "name")) as f:
                        if f.read().strip() == name:
                            return "/dev/" + entry
                except OSError:
                    continue
        except FileNotFoundError:
            pass
        if time.monotonic() > deadline:
            raise FileNotFoundError("no virtio-serial port named %r" % name)
        time.sleep(0.05)


def servers():
    """``(port, argv)`` of each server the guest runs (``socketlab`` command lines)."""
    if os.environ.get("SOCKETLAB_APP_SERVER", "1") == "0":
        log("app-server disabled (SOCKETLAB_APP_SERVER=0)")
        return []
    app = ["app-server", "::"]
    wanted = [(APP_PORT, app + [str(APP_PORT)])]
    if os.path.exists(CERT) and os.path.exists(KEY):
        wanted.append((TLS_PORT, app + [str(TLS_PORT), "--tls-cert", CERT, "--tls-key", KEY]))
    else:
        log("no TLS: the lab handed over no certificate (%s)" % CERT)
    return wanted


class Forked:
    """``target()`` in a child forked from this process, which has imported socketlab: a
    CPython start and socketlab's imports cost about a second each in the emulated guest, and
    are paid once, not once a program (issue 20). The child's stdout is the pipe ``.stdout``,
    its stderr the same pipe or, with ``own_stderr``, ``.stderr`` (binary files); its stdin the
    pipe ``.stdin`` with ``stdin``, else /dev/null. It gets standard streams of its own (none
    of this process's locks or buffers; the same encodings), every other descriptor closed,
    and exits with ``target()``'s status, as ``sys.exit`` would give it.
    ``poll()``, ``wait()`` and ``kill()`` as a ``subprocess.Popen``'s."""

    def __init__(self, target, *, own_stderr=False, stdin=False, cwd=None):
        sys.stdout.flush()
        sys.stderr.flush()
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe() if own_stderr else (None, out_w)
        in_r, in_w = os.pipe() if stdin else (os.open(os.devnull, os.O_RDONLY), None)
        try:
            self.pid = os.fork()
        except OSError:
            for fd in {out_r, out_w, err_r, err_w, in_r, in_w} - {None}:
                os.close(fd)
            raise
        if self.pid == 0:
            self._child(target, in_r, out_w, err_w, cwd)  # never returns
        for fd in (in_r, out_w, err_w if own_stderr else None):
            if fd is not None:
                os.close(fd)
        self.stdout = os.fdopen(out_r, "rb")
        self.stderr = os.fdopen(err_r, "rb") if own_stderr else None
        self.stdin = os.fdopen(in_w, "wb", buffering=0) if stdin else None
        self.returncode = None

    @staticmethod
    def _child(target, in_r, out_w, err_w, cwd):
        status = 1
        try:
            os.dup2(in_r, 0)
            os.dup2(out_w, 1)
            os.dup2(err_w, 2)
            os.closerange(3, os.sysconf("SC_OPEN_MAX"))
            sys.stdin, sys.stdout, sys.stderr = (
                open(fd, mode, buffering=1, encoding=old.encoding, errors=old.errors, closefd=False)
                for fd, mode, old in ((0, "r", sys.stdin), (1, "w", sys.stdout), (2, "w", sys.stderr)))
            if cwd:
                os.chdir(cwd)
            try:
                status = target()
            except SystemExit as exc:
                status = exc.code
            if status is not None and not isinstance(status, int):
                print(status, file=sys.stderr)
                status = 1
        except BaseException:
            traceback.print_exc()
            status = 1
        finally:
            for stream in (sys.stdout, sys.stderr):
                try:
                    stream.flush()
                except Exception:
                    pass
            os._exit(status or 0)

    def poll(self):
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self):
        if self.returncode is None:
            self.returncode = os.waitstatus_to_exitcode(os.waitpid(self.pid, 0)[1])
        return self.returncode

    def kill(self):
        if self.returncode is None:
            os.kill(self.pid, signal.SIGKILL)

    def communicate(self, data, timeout):
        """Write ``data`` to its stdin and read its stdout and stderr until it closes them and
        exits; past ``timeout`` seconds, kill it. Returns (stdout, stderr, timed out)."""
        chunks = {self.stdout: [], self.stderr: []}
        view = memoryview(data)
        deadline = time.monotonic() + timeout
        timed_out = False
        with selectors.DefaultSelector() as sel:
            for pipe in (self.stdout, self.stderr):
                sel.register(pipe, selectors.EVENT_READ)
            if view:
                os.set_blocking(self.stdin.fileno(), False)
                sel.register(self.stdin, selectors.EVENT_WRITE)
            else:
                self.stdin.close()
            while sel.get_map() and not timed_out:
                left = deadline - time.monotonic()
                timed_out = left <= 0
                for key, _ in [] if timed_out else sel.select(left):
                    if key.fileobj is self.stdin:
                        try:
                            view = view[os.write(self.stdin.fileno(), view[:65536]):]
                        except BrokenPipeError:  # it stopped reading: the rest is not wanted
                            view = view[:0]
                        done = not view
                    else:
                        chunk = os.read(key.fileobj.fileno(), 65536)
                        chunks[key.fileobj].append(chunk)
                        done = not chunk
                    if done:
                        sel.unregister(key.fileobj)
                        key.fileobj.close()
            for key in list(sel.get_map().values()):  # what a killed child left open
                key.fileobj.close()
        if timed_out:
            self.kill()
        self.wait()
        return b"".join(chunks[self.stdout]), b"".join(chunks[self.stderr]), timed_out


def socketlab_module(argv):
    """``python3 -m socketlab[.MODULE] ARGS``: the module and ARGS, run by :func:`run` in a
    child forked from the agent instead of a new CPython; anything else: None."""
    if (len(argv) >= 3 and os.path.basename(argv[0]) == "python3" and argv[1] == "-m"
            and (argv[2] == "socketlab" or argv[2].startswith("socketlab."))):
        return argv[2], argv[3:]
    return None


def run_module(module, args):
    """What ``python3 -m MODULE ARGS`` runs, in this process (a forked child). The module is
    run anew, as a new process would: a copy imported before the fork is set aside first."""
    sys.modules.pop(module, None)
    sys.argv = ["-m", *args]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


def start_servers():
    """Start every server at once (the guest's one CPU overlaps their start-up waits), and
    return once each printed its ready line or died."""
    from socketlab import cli  # imported once, before the first fork: the children share it

    started = [(port, Forked(lambda argv=argv: cli.main(argv))) for port, argv in servers()]
    for port, proc in started:
        prefix = "%d app-server | " % port
        line = proc.stdout.readline().decode(errors="replace")
        if ready_port(line) == port:
            console(prefix + line.rstrip("\n"))
        else:
            log("%sdid not start (exit status %s, said %r)" % (prefix, proc.poll(), line))
        # the rest of its output, to the console (also from one that failed: nothing is lost,
        # and a full pipe never stalls it)
        threading.Thread(target=forward, args=(proc, prefix), daemon=True).start()
    return [proc for _, proc in started]


def forward(proc, prefix):
    for line in proc.stdout:
        console(prefix + line.decode(errors="replace").rstrip("\n"))
    log("%sexited with status %s" % (prefix, proc.wait()))


def run(request):
    argv = request.get("argv")
    if not isinstance(argv, list) or not argv or not all(isinstance(a, str) for a in argv):
        return failed(126, "bad argv")
    timeout = request.get("timeout") or 300
    stdin = base64.b64decode(request.get("stdin", ""))
    cwd = request.get("cwd", "/root")
    module = socketlab_module(argv)
    if module is not None:
        rc, out, err = run_forked(module, stdin, timeout, cwd)
    else:
        rc, out, err = run_process(argv, stdin, timeout, cwd)
    if rc < 0:  # killed by a signal: report it the way a shell does
        rc = 128 - rc
    return {"returncode": rc, "stdout": base64.b64encode(out).decode(), "stderr": base64.b64encode(err).decode()}


def run_forked(module, stdin, timeout, cwd):
    try:
        child = Forked(lambda: run_module(*module), own_stderr=True, stdin=True, cwd=cwd)
    except OSError as exc:  # no fork (memory, process limit): this request fails, the agent goes on
        return 127, b"", ("guest-agent: cannot fork for %s: %s\n" % (module[0], exc)).encode()
    out, err, timed_out = child.communicate(stdin, timeout)
    if timed_out:
        return 124, out, err + b"guest-agent: timed out after %ds\n" % timeout
    return child.returncode, out, err


def run_process(argv, stdin, timeout, cwd):
    try:
        done = subprocess.run(argv, input=stdin, capture_output=True, timeout=timeout, cwd=cwd)
        return done.returncode, done.stdout, done.stderr
    except subprocess.TimeoutExpired as exc:
        return 124, exc.stdout or b"", (exc.stderr or b"") + b"guest-agent: timed out after %ds\n" % timeout
    except OSError as exc:
        return 127, b"", ("guest-agent: cannot run %r: %s\n" % (argv[0], exc)).encode()


def failed(rc, message):
    return {"returncode": rc, "stdout": "", "stderr": base64.b64encode(("guest-agent: %s\n" % message).encode()).decode()}


def answer(request, settled):
    """The reply to one request; a ``settings`` one is applied once, then the guest is ready."""
    if "settings" not in request:
        return run(request)
    if settled:
        return failed(126, "the lab's settings were applied already")
    try:
        settle(request["settings"])
    except (SettingsError, KeyError, TypeError, ValueError, OSError) as exc:
        log("cannot apply the lab's settings: %s" % exc)
        return failed(1, "cannot apply the lab's settings: %s" % exc)
    console("%s (uptime %.2f s)" % (READY_LINE, uptime()))
    return {"returncode": 0, "stdout": "", "stderr": ""}


def serve(path):
    fd = os.open(path, os.O_RDWR)
    buf = b""
    settled = False
    while True:
        chunk = os.read(fd, 65536)
        if not chunk:  # the host side is not connected: nothing to read yet
            time.sleep(0.05)
            continue
        buf += chunk
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            if not line.strip():
                continue
            try:
                request = json.loads(line)
                reply = answer(request, settled)
                settled = settled or ("settings" in request and reply["returncode"] == 0)
                reply["id"] = request.get("id")
            except (ValueError, AttributeError) as exc:
                reply = dict(failed(126, "bad request: %s" % exc), id=None)
            data = json.dumps(reply).encode() + b"\n"
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        if len(buf) > MAX_LINE:
            log("dropping an over-long request (%d bytes)" % len(buf))
            buf = b""


class SettingsError(Exception):
    """The lab's settings cannot be applied: the guest is not a host of the lab."""


def settle(settings):
    """Make this guest the lab's host its SETTINGS describe (guest-supervisor's ``settings()``):
    the clock (a resumed snapshot's is the build's), fresh entropy (every resumed guest starts
    from the same random state), /pki, the guest's names for its addresses, and the addresses
    and routes themselves (``/init net``). Then start the servers."""
    time.clock_settime(time.CLOCK_REALTIME, float(settings["time"]))
    reseed(base64.b64decode(settings["entropy"]))
    pki = settings.get("pki") or {}
    if pki:
        os.makedirs(PKI_DIR, mode=0o755, exist_ok=True)
    for name, data in pki.items():
        if name not in PKI_FILES:
            raise SettingsError("unknown PKI file %r" % name)
        path = os.path.join(PKI_DIR, name)
        with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PKI_FILES[name]), "wb") as f:
            f.write(base64.b64decode(data))
    addresses = {"SOCKETLAB_IP": settings["ip"], "SOCKETLAB_GW4": settings["gw4"],
                 "SOCKETLAB_IP6": settings["ip6"], "SOCKETLAB_GW6": settings["gw6"]}
    net = subprocess.run(["/init", "net"], env=dict(os.environ, **addresses), capture_output=True)
    if net.returncode:
        raise SettingsError("/init net failed (exit status %s): %s" % (
            net.returncode, net.stderr.decode(errors="replace").strip()))
    name_this_host(settings["ip"], settings["ip6"])
    log("settings applied: %s, %s" % (settings["ip"], settings["ip6"]))
    start_servers()


def reseed(entropy, path="/dev/urandom"):
    """Mix the lab's ENTROPY into the kernel's pool and reseed its generator from it at once."""
    with open(path, "wb") as pool:
        pool.write(entropy)
        pool.flush()
        try:
            fcntl.ioctl(pool.fileno(), RNDRESEEDCRNG)
        except OSError as exc:  # the pool has it still: the generator takes it at its next reseed
            log("cannot reseed the kernel's generator at once: %s" % exc)


def name_this_host(*addresses, path="/etc/hosts"):
    """The guest's name for its own addresses, which the lab's settings give: no address is
    built in."""
    with open(path, "a") as hosts:
        hosts.writelines("%s\t%s\n" % (address.partition("/")[0], os.uname().nodename)
                         for address in addresses if address)


def main():
    log("agent up at %.2f s, %s-endian, Python %s" % (uptime(), sys.byteorder, sys.version.split()[0]))
    from socketlab import cli  # noqa: F401  imported before the snapshot, for every fork after it
    port = find_port(PORT_NAME)
    log("exec agent on %s; waiting for the lab's settings" % port)
    serve(port)


if __name__ == "__main__":
    main()
