"""socketlab: the socket-programming guide's programs on a sans-I/O protocol core.

The protocol core (:mod:`socketlab.protocol`, :mod:`socketlab.arrays`, :mod:`socketlab.app`)
does no I/O: it turns bytes into messages and messages into bytes. The guide's servers are
protocol handlers (:mod:`socketlab.handlers`, bytes in, bytes out) run by one selectors loop
(:mod:`socketlab.server`); the clients (:mod:`socketlab.client`) are thin loops too. The demo's
requests and right answers live in :mod:`socketlab.demo`.
Standard library only, so the same code runs in the big-endian PowerPC guest.
"""

__version__ = "0.1.0"
