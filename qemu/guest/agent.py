"""The PowerPC guest's agent: what makes the guest a host of the lab.

Run by /init as the guest's main program (when it exits, the guest powers off):

1. starts ``socketlab app-server :: 65432`` (the little-endian -> big-endian direction) and, when
   the lab handed over its certificate (``/pki/guest.pem`` and ``.key``, appended to the
   initramfs by guest-supervisor), the same over TLS on 65439; waits for their ``Listening on``
   lines; their later output goes to the console, each line after ``PORT app-server | `` as on
   the lab's server. Each server is a process of its own, forked from this one once it has
   imported socketlab: a CPython start and socketlab's imports cost about a second each in the
   emulated guest, and are paid once, not once a server (issue 20);
2. serves exec requests on the virtio-serial port named ``org.socketlab.exec``: one JSON line
   ``{"id": N, "argv": [...], "timeout": S}`` in, one JSON line
   ``{"id": N, "returncode": R, "stdout": B64, "stderr": B64}`` out (see qemu/bin/guest-supervisor);
3. prints ``socketlab-guest: ready`` on the console once 1 and 2 are up: the container's
   readiness signal.

Standard library only (the guest's CPython has ssl and hashlib on OpenSSL, but no ctypes, zlib).
"""

import base64
import json
import os
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
CERT, KEY = "/pki/guest.pem", "/pki/guest.key"


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
    """``socketlab ARGV`` in a child forked from this process, its stdout and stderr on a pipe
    (``.stdout``, text); ``poll()`` and ``wait()`` as a ``subprocess.Popen``'s."""

    def __init__(self, argv):
        from socketlab import cli  # imported once, before the first fork: the children share it
        sys.stdout.flush()
        sys.stderr.flush()
        read, write = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:  # the child: its output to the pipe, socketlab's main, then out
            status = 1
            try:
                os.close(read)
                os.dup2(write, 1)
                os.dup2(write, 2)
                os.close(write)
                status = cli.main(argv)
            except SystemExit as exc:
                status = exc.code if isinstance(exc.code, int) else 1
            except BaseException:
                traceback.print_exc()
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(status if isinstance(status, int) else 1)
        os.close(write)
        self.stdout = os.fdopen(read, "r", errors="replace")
        self.returncode = None

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


def start_servers():
    """Start every server at once (the guest's one CPU overlaps their start-up waits), and
    return once each printed its ready line or died."""
    started = [(port, Forked(argv)) for port, argv in servers()]
    for port, proc in started:
        prefix = "%d app-server | " % port
        line = proc.stdout.readline()
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
        console(prefix + line.rstrip("\n"))
    log("%sexited with status %s" % (prefix, proc.wait()))


def run(request):
    argv = request.get("argv")
    if not isinstance(argv, list) or not argv or not all(isinstance(a, str) for a in argv):
        return {"returncode": 126, "stdout": "", "stderr": base64.b64encode(b"guest-agent: bad argv\n").decode()}
    timeout = request.get("timeout") or 300
    stdin = base64.b64decode(request.get("stdin", ""))
    try:
        done = subprocess.run(argv, input=stdin, capture_output=True, timeout=timeout, cwd=request.get("cwd", "/root"))
        rc, out, err = done.returncode, done.stdout, done.stderr
    except subprocess.TimeoutExpired as exc:
        rc, out, err = 124, exc.stdout or b"", (exc.stderr or b"") + b"guest-agent: timed out after %ds\n" % timeout
    except OSError as exc:
        rc, out, err = 127, b"", ("guest-agent: cannot run %r: %s\n" % (argv[0], exc)).encode()
    if rc < 0:  # killed by a signal: report it the way a shell does
        rc = 128 - rc
    return {"returncode": rc, "stdout": base64.b64encode(out).decode(), "stderr": base64.b64encode(err).decode()}


def serve(path):
    fd = os.open(path, os.O_RDWR)
    buf = b""
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
                reply = run(request)
                reply["id"] = request.get("id")
            except ValueError as exc:
                reply = {"id": None, "returncode": 126, "stdout": "",
                         "stderr": base64.b64encode(("guest-agent: bad request: %s\n" % exc).encode()).decode()}
            data = json.dumps(reply).encode() + b"\n"
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
        if len(buf) > MAX_LINE:
            log("dropping an over-long request (%d bytes)" % len(buf))
            buf = b""


def name_this_host(path="/etc/hosts"):
    """The guest's name for its own addresses, which the lab gives on the kernel command line
    (SOCKETLAB_IP, SOCKETLAB_IP6: guest-supervisor, from lab.yaml): no address is built in."""
    addresses = [os.environ.get(name, "").partition("/")[0] for name in ("SOCKETLAB_IP", "SOCKETLAB_IP6")]
    with open(path, "a") as hosts:
        hosts.writelines("%s\t%s\n" % (address, os.uname().nodename) for address in addresses if address)


def main():
    log("agent up at %.2f s, %s-endian, Python %s" % (uptime(), sys.byteorder, sys.version.split()[0]))
    name_this_host()
    start_servers()
    port = find_port(PORT_NAME)
    log("exec agent on %s" % port)
    console("%s (uptime %.2f s)" % (READY_LINE, uptime()))
    serve(port)


if __name__ == "__main__":
    main()
