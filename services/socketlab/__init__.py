"""socketlab: the socket-programming guide's programs on a sans-I/O protocol core.

The protocol core (:mod:`socketlab.protocol`, :mod:`socketlab.arrays`, :mod:`socketlab.app`)
does no I/O: it turns bytes into messages and messages into bytes. The servers and clients
(:mod:`socketlab.server`, :mod:`socketlab.client`) are thin selector loops on top of it.
Standard library only, so the same code runs in the big-endian PowerPC guest.
"""

__version__ = "0.1.0"
