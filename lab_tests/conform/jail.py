"""The program under test, run in one position of the lab, and cleaned up after.

The conformance runner sends this file's text to a position as ``python3 -c`` (a lab host, as
root, through ``docker exec``; the PowerPC guest through ``guest-exec``), so it is standard
library only and runs on the guest's CPython 3.11.2 too. One JSON line out, always::

    jail unpack                       stdin: a tar of PROGRAM; into PROGRAM_DIR, read-only
    jail runs                         stdin: [{"argv": [...], "deadline": S}, ...]: run each
                                      client in turn, to its end or its deadline
    jail ensure PORTS WAIT -- ARGV... the server runs (started if not, on the first of PORTS,
                                      comma-separated, with no socket at all: not even a
                                      TIME_WAIT another program left); PORT in ARGV is it
    jail stop                         stop the server; what it printed since the last call

The program runs as :data:`UID`, a uid nothing else of the lab has, in its own session, with
the program folder as its working directory (owned by root: it cannot write there). So "every
process of that uid" is the program and whatever it forked: :func:`sweep` kills them all
(``kill(-1)`` as that uid), after every client and when a server stops. Its output is read
through pipes: a client's first and last :data:`MAX_OUTPUT` / 2 bytes a stream are kept, a
server's first :data:`MAX_OUTPUT`; the rest is counted, not kept.
"""

import json
import os
import select
import signal
import sys
import time

# socket, struct, tarfile and shutil are imported where used: this runs once per case, and
# in the guest every import is emulated (python3 -S -c: no site either).

UID = 10002
HOME = "/tmp/conform"
PROGRAM_DIR = HOME + "/program"
SERVER_STATE = HOME + "/server.json"
MAX_OUTPUT = 60 * 1024  # under the report's 64 KiB a stream, with the marker between
ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": HOME, "LANG": "C.UTF-8",
       "PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1"}


def reply(obj):
    print(json.dumps(obj), flush=True)


def processes():
    """The pids of every live process of UID (a zombie is gone but for its parent's wait)."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/status" % name) as f:
                fields = dict(line.split(":", 1) for line in f if ":" in line)
        except OSError:
            continue
        if int(fields.get("Uid", "-1 ").split()[0]) == UID and not fields.get("State", "").strip().startswith("Z"):
            found.append(int(name))
    return found


def demote():
    os.setgroups([])
    os.setresgid(UID, UID, UID)
    os.setresuid(UID, UID, UID)


def sweep():
    """Kill every process of UID and wait (5 s at most) until none is left; how many there were."""
    before = processes()
    if before:
        pid = os.fork()
        if pid == 0:  # a process of UID may signal every other process of UID: kill(-1)
            try:
                demote()
                os.kill(-1, signal.SIGKILL)
            finally:
                os._exit(0)
        os.waitpid(pid, 0)
    deadline = time.monotonic() + 5
    while processes() and time.monotonic() < deadline:
        reap()
        time.sleep(0.02)  # polling /proc until the killed are gone, with a deadline
    return len(before)


def reap():
    try:
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass
    except ChildProcessError:
        pass


def spawn(argv, stdout, stderr):
    """Fork ARGV as UID in its own session, in PROGRAM_DIR, output to the two fds; its pid."""
    pid = os.fork()
    if pid == 0:
        try:
            os.setsid()
            devnull = os.open(os.devnull, os.O_RDONLY)
            os.dup2(devnull, 0)
            os.dup2(stdout, 1)
            os.dup2(stderr, 2)
            os.closerange(3, 1 << 16)
            demote()
            os.chdir(PROGRAM_DIR)
            os.execvpe(argv[0], argv, ENV)
        except OSError as exc:
            os.write(2, ("jail: cannot run %r: %s\n" % (argv[0], exc)).encode())
        os._exit(127)
    return pid


def status_of(waited):
    """A wait status as an exit code; a signal N as -N (as subprocess reports it)."""
    return -os.WTERMSIG(waited) if os.WIFSIGNALED(waited) else os.WEXITSTATUS(waited)


class Collector:
    """Keep the first and the last MAX_OUTPUT / 2 bytes of a stream (how it began, and how
    it ended), and count what is between."""

    def __init__(self):
        self.head = bytearray()
        self.tail = bytearray()
        self.seen = 0

    def add(self, data):
        self.seen += len(data)
        room = MAX_OUTPUT // 2 - len(self.head)
        self.head += data[:room]
        self.tail += data[max(room, 0):]
        del self.tail[:-(MAX_OUTPUT // 2)]

    @property
    def dropped(self):
        return self.seen - len(self.head) - len(self.tail)

    def text(self):
        middle = b"\n... (%d bytes not kept) ...\n" % self.dropped if self.dropped else b""
        return (bytes(self.head) + middle + bytes(self.tail)).decode("utf-8", "replace")


def runs():
    """The clients on stdin, one after the other: one JSON list of their results."""
    reply([run(item["deadline"], item["argv"]) for item in json.load(sys.stdin)])


def run(deadline, argv):
    """Run a client until it exits (and its output ends) or DEADLINE seconds pass; its result."""
    started = time.monotonic()
    pipes = [os.pipe(), os.pipe()]
    pid = spawn(argv, pipes[0][1], pipes[1][1])
    for _, write_end in pipes:
        os.close(write_end)
    streams = {pipes[0][0]: Collector(), pipes[1][0]: Collector()}
    open_fds = set(streams)
    returncode, stopped, exited_at = None, False, None
    while True:
        now = time.monotonic()
        if returncode is None:
            done, waited = os.waitpid(pid, os.WNOHANG)
            if done:
                returncode, exited_at = status_of(waited), now
        # The output ends with the program; a child it forked may hold the pipes: 0.5 s more.
        if returncode is not None and (not open_fds or now - exited_at > 0.5):
            break
        if now - started > deadline:
            stopped = True
            break
        if not open_fds:
            time.sleep(0.05)  # polling waitpid for the program's exit, with its deadline
            continue
        ready, _, _ = select.select(list(open_fds), [], [], 0.05)
        for fd in ready:
            data = os.read(fd, 65536)
            if data:
                streams[fd].add(data)
            else:
                open_fds.discard(fd)
    duration = time.monotonic() - started
    left = sweep()  # the program too, when stopped: sweep reaps it
    for fd in streams:
        os.close(fd)
    out, err = streams[pipes[0][0]], streams[pipes[1][0]]
    return {"returncode": returncode, "stopped": stopped, "duration_s": round(duration, 3),
            "left_running": left - (1 if stopped else 0) if left else 0,
            "stdout": out.text(), "stderr": err.text(), "truncated": out.dropped + err.dropped}


# --- servers -------------------------------------------------------------------------------

#: What a server's argv has where its port goes (the runner cannot know the port: :func:`ensure`
#: picks it).
PORT_MARK = "@@PORT@@"


def sockets(port):
    """(state, address) of every TCP socket whose local port is PORT, in this network namespace
    (state "0A": listening; "06": TIME_WAIT)."""
    import socket
    import struct

    found = []
    for name, family, words in (("tcp", socket.AF_INET, 1), ("tcp6", socket.AF_INET6, 4)):
        try:
            with open("/proc/net/" + name) as f:
                lines = f.readlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            address, _, hexport = fields[1].partition(":")
            if int(hexport, 16) != port:
                continue
            # the kernel prints each 32-bit word of the address as a native-order number
            raw = b"".join(struct.pack("=I", int(address[i:i + 8], 16)) for i in range(0, 8 * words, 8))
            found.append((fields[3], socket.inet_ntop(family, raw)))
    return found


def listening(port):
    """The addresses with a listening TCP socket on PORT."""
    return [address for state, address in sockets(port) if state == "0A"]


def load_state():
    try:
        with open(SERVER_STATE) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def alive(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            return "\nState:\tZ" not in f.read()
    except OSError:
        return False


def keeper(argv, paths):
    """The server's parent: drains its output into two files (MAX_OUTPUT each, the rest
    counted), writes its exit status when it ends. Runs detached, as root."""
    pipes = [os.pipe(), os.pipe()]
    pid = spawn(argv, pipes[0][1], pipes[1][1])
    for _, write_end in pipes:
        os.close(write_end)
    with open(paths["pid"], "w") as f:
        f.write(str(pid))
    files = {pipes[0][0]: open(paths["stdout"], "ab"), pipes[1][0]: open(paths["stderr"], "ab")}
    sizes = dict.fromkeys(files, 0)
    dropped = 0
    open_fds = set(files)
    while open_fds:
        ready, _, _ = select.select(list(open_fds), [], [], 1.0)
        for fd in ready:
            data = os.read(fd, 65536)
            if not data:
                open_fds.discard(fd)
                continue
            room = MAX_OUTPUT - sizes[fd]
            files[fd].write(data[:room])
            files[fd].flush()
            sizes[fd] += len(data[:room])
            dropped += len(data) - len(data[:room])
        if not alive(pid):
            break
    _, waited = os.waitpid(pid, 0)
    with open(paths["status"], "w") as f:
        json.dump({"returncode": status_of(waited), "truncated": dropped}, f)


def take_output(state):
    """What the server printed since the last call (offsets kept in the state file)."""
    taken = {}
    for stream in ("stdout", "stderr"):
        try:
            with open(state[stream], "rb") as f:
                f.seek(state["offsets"][stream])
                data = f.read()
        except OSError:
            data = b""
        state["offsets"][stream] += len(data)
        taken[stream] = data.decode("utf-8", "replace")
    try:
        with open(state["status"]) as f:
            status = json.load(f)
    except (OSError, ValueError):
        status = None
    with open(SERVER_STATE, "w") as f:
        json.dump(state, f)
    return taken, status


def server_pid(state):
    try:
        with open(state["pid"]) as f:
            return int(f.read())
    except (OSError, ValueError):
        return None


def ensure(ports, wait, argv):
    """The server runs: if it exited (or never started), start it on the first of PORTS that
    no socket uses, then wait up to WAIT seconds for a listening socket on it (any address)
    or the server's exit."""
    state = load_state()
    before = {"stdout": "", "stderr": ""}
    previous = None
    if state:
        pid = server_pid(state)
        if pid and alive(pid):
            output, _ = take_output(state)
            reply({"restarted": False, "port": state["port"], "listening": listening(state["port"]),
                   "output": output})
            return
        before, previous = take_output(state)
    sweep()
    port = next((p for p in ports if not sockets(p)), ports[0])
    argv = [word.replace(PORT_MARK, str(port)) for word in argv]
    n = int(time.time() * 1000)
    state = {"stdout": "%s/server-%d.out" % (HOME, n), "stderr": "%s/server-%d.err" % (HOME, n),
             "status": "%s/server-%d.status" % (HOME, n), "pid": "%s/server-%d.pid" % (HOME, n),
             "offsets": {"stdout": 0, "stderr": 0}, "port": port, "argv": argv}
    with open(SERVER_STATE, "w") as f:
        json.dump(state, f)
    started = time.monotonic()
    if os.fork() == 0:  # detach: the keeper outlives this call and holds none of its pipes
        os.setsid()
        if os.fork() == 0:
            devnull = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(devnull, fd)
            try:
                keeper(argv, state)
            finally:
                os._exit(0)
        os._exit(0)
    os.wait()
    found, pid = [], None
    while time.monotonic() - started < wait:
        pid = pid or server_pid(state)
        found = listening(port)
        if found or (pid and not alive(pid)) or os.path.exists(state["status"]):
            break
        time.sleep(0.05)  # polling the server's own signal, a LISTEN socket, with a deadline
    output, status = take_output(state)
    reply({"restarted": True, "port": port, "argv": argv, "previous": previous, "before": before,
           "listening": found, "started_in_s": round(time.monotonic() - started, 3), "output": output,
           "exited": status})


def stop():
    state = load_state()
    left = sweep()
    if not state:
        reply({"stopped": False, "left_running": left})
        return
    deadline = time.monotonic() + 5
    while not os.path.exists(state["status"]) and time.monotonic() < deadline:
        time.sleep(0.02)  # polling for the keeper's status file, with a deadline
    output, status = take_output(state)
    os.unlink(SERVER_STATE)
    reply({"stopped": True, "left_running": left, "output": output, "exited": status})


def unpack():
    """A tar of the program folder on stdin, into PROGRAM_DIR: files and folders only, every
    name inside; then read-only (owned by root, no write bit)."""
    import shutil
    import tarfile

    sweep()
    for folder, _, _ in os.walk(HOME):  # writable again (the last program's), then gone
        os.chmod(folder, 0o755)
    shutil.rmtree(HOME, ignore_errors=True)
    os.makedirs(PROGRAM_DIR)
    os.chmod(HOME, 0o755)
    modes = []
    with tarfile.open(fileobj=sys.stdin.buffer, mode="r|") as tar:
        for member in tar:
            name = os.path.normpath(member.name)
            if name.startswith(("/", "..")) or not (member.isfile() or member.isdir()):
                reply({"error": "refused %r: only files and folders inside the program folder" % member.name})
                sys.exit(2)
            tar.extract(member, PROGRAM_DIR, set_attrs=False)
            modes.append((os.path.join(PROGRAM_DIR, name),
                          0o555 if member.isdir() or member.mode & 0o111 else 0o444, member.isfile()))
    # Byte-compiled once here, as an installer does, not again by every run: the folder is
    # read-only to the program, and in the guest compiling a few thousand lines is seconds of
    # emulated CPU a run. A file that does not compile is left to fail when the program runs.
    import compileall

    compileall.compile_dir(PROGRAM_DIR, quiet=2)
    for folder, _, _ in os.walk(PROGRAM_DIR):
        if os.path.basename(folder) == "__pycache__":
            modes.append((folder, 0o555, False))
            modes.extend((os.path.join(folder, name), 0o444, False) for name in os.listdir(folder))
    # read-only last, the deepest first: root here may lack CAP_DAC_OVERRIDE
    for path, mode, _ in sorted(modes, key=lambda m: -m[0].count("/")):
        os.chmod(path, mode)
    os.chmod(PROGRAM_DIR, 0o555)
    count = sum(isfile for _, _, isfile in modes)
    reply({"files": count, "machine": os.uname().machine, "byteorder": sys.byteorder})


def main(args):
    command = args[0]
    if command == "unpack":
        unpack()
    elif command == "runs":
        runs()
    elif command == "ensure":
        ensure([int(p) for p in args[1].split(",")], float(args[2]), args[4:])
    elif command == "stop":
        stop()
    else:
        sys.exit("jail: unknown command %r" % command)


if __name__ == "__main__":
    main(sys.argv[1:])
