"""The guide pokes its server with ``telnet localhost 5555``; socketlab's docs mention ``nc``.
Both are in the lab image (Debian's telnet and netcat-openbsd), used here across the router
(issue 21; docs/troubleshooting.md shows the output)."""

import base64

from socketlab import app
from socketlab.protocol import NEED_DATA, MessageDecoder

from lab_tests.topology import APP_PORT, SERVER_V4, SERVER_V6
from lab_tests.topology import ECHO_ANY_PORT as ECHO_PORT  # the echo server on "" (every IPv4 interface)


def test_telnet_to_the_echo_server_echoes_a_line(lab):
    # telnet ends when its input does: the input stays open until the echo is in telnet's
    # output (polled, at most 5 s), then the output is shown.
    out = "/tmp/telnet.out"
    result = lab.run("client", "sh", "-c",
                     f"{{ printf 'hello lab\\r\\n'; for _ in $(seq 50); do "
                     f"grep -q '^hello lab' {out} && break; sleep 0.1; done; }} "
                     f"| telnet {SERVER_V4} {ECHO_PORT} > {out} 2>&1; cat {out}", timeout=20)
    assert f"Connected to {SERVER_V4}." in result.stdout, str(result)
    assert "hello lab" in result.stdout.split("Escape character is '^]'.", 1)[1], str(result)


def test_nc_sends_a_hand_made_frame_to_the_app_server(lab):
    """The 2-byte header length, the JSON header, the content, written by hand with printf;
    ``nc -N`` shuts down its side after the frame (a half-close) and prints the answer."""
    content = b'{"action": "search", "value": "morpheus"}'
    header = (b'{"byteorder": "big", "content-type": "text/json", "content-encoding": "utf-8", '
              b'"content-length": %d}' % len(content))
    frame = len(header).to_bytes(2, "big") + header + content
    printf = "".join(f"\\{byte:03o}" for byte in frame)  # octal escapes: printf's own, in any sh
    for server in (SERVER_V4, SERVER_V6):
        result = lab.run("client", "sh", "-c",
                         f"printf '{printf}' | nc -N -w 5 {server} {APP_PORT} | base64 -w0", timeout=20)
        assert result.returncode == 0, str(result)
        decoder = MessageDecoder()
        decoder.receive_data(base64.b64decode(result.stdout))
        answer = decoder.next_message()
        assert answer is not NEED_DATA, str(result)
        assert app.describe_response(answer) == app.SEARCH["morpheus"]


def test_negative_control_nc_without_the_half_close_gets_no_answer_in_time(lab):
    """A frame cut short (its last byte missing) is a request under way: nc waits, and gets
    nothing before its own timeout (-w 2); the server's deadline is 10 s."""
    content = b'{"action": "search", "value": "morpheus"}'
    header = (b'{"byteorder": "big", "content-type": "text/json", "content-encoding": "utf-8", '
              b'"content-length": %d}' % len(content))
    frame = (len(header).to_bytes(2, "big") + header + content)[:-1]
    printf = "".join(f"\\{byte:03o}" for byte in frame)
    # The input stays open past nc's own 2 s (-w): no half-close, so nc ends by its timeout.
    result = lab.run("client", "sh", "-c",
                     f"{{ printf '{printf}'; sleep 3; }} | nc -w 2 {SERVER_V4} {APP_PORT} | wc -c", timeout=20)
    assert result.stdout.strip() == "0", str(result)
