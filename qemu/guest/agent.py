"""The PowerPC guest's agent: what makes the guest a host of the lab.

Run by /init as the guest's main program (when it exits, the guest powers off):

1. starts ``python3 -m socketlab app-server :: 65432`` (the little-endian -> big-endian direction)
   and waits for its ``listening on`` line; its later output goes to the console;
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

from socketlab.cli import ready_port

PORT_NAME = "org.socketlab.exec"
APP_SERVER = [sys.executable, "-m", "socketlab", "app-server", "::", "65432"]
READY_LINE = "socketlab-guest: ready"
MAX_LINE = 1 << 20  # a request larger than this is a protocol error, not a memory blow-up


def log(message):
    print("socketlab-guest: %s" % message, flush=True)


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


def start_app_server():
    """Start the app server and return once it prints its ready line (or has died)."""
    if os.environ.get("SOCKETLAB_APP_SERVER", "1") == "0":
        log("app-server disabled (SOCKETLAB_APP_SERVER=0)")
        return None
    proc = subprocess.Popen(APP_SERVER, stdout=subprocess.PIPE, stderr=None, text=True, bufsize=1)
    line = proc.stdout.readline()
    if ready_port(line) is None:
        log("app-server did not start (exit status %s, said %r)" % (proc.poll(), line))
        return proc
    log("app-server: " + line.strip())

    def forward():
        for rest in proc.stdout:
            print("app-server: " + rest.rstrip("\n"), flush=True)
        log("app-server exited with status %s" % proc.wait())

    threading.Thread(target=forward, daemon=True).start()
    return proc


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


def main():
    log("agent up at %.2f s, %s-endian, Python %s" % (uptime(), sys.byteorder, sys.version.split()[0]))
    start_app_server()
    port = find_port(PORT_NAME)
    log("exec agent on %s" % port)
    print("%s (uptime %.2f s)" % (READY_LINE, uptime()), flush=True)
    serve(port)


if __name__ == "__main__":
    main()
