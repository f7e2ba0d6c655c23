"""The guide's literal answers, pinned on purpose: the one place the tests spell them.

socketlab's own home for them is ``socketlab.app`` (``SEARCH``, ``NO_MATCH``, ...), and
``socketlab.demo`` checks a server against them; the tests do not take them from there, or a
changed answer would change its test with it. ``lab_tests/unit/test_app.py`` pins app.py to
this module; every other test imports from here.
"""

MORPHEUS = "Follow the white rabbit. \U0001f430"
RING = "In the caves beneath the Misty Mountains. \U0001f48d"
DOG_QUERY = "\U0001f436"
DOG = "\U0001f43e Playing ball! \U0001f3d0"
#: The search table of the guide's server.
ANSWERS = {"morpheus": MORPHEUS, "ring": RING, DOG_QUERY: DOG}
BINARY_PREFIX = b"First 10 bytes of request: "


def no_match(query: str) -> str:
    return f"No match for '{query}'."


def invalid_action(action: str) -> str:
    return f"Error: invalid action '{action}'."


def binary_answer(content: bytes) -> bytes:
    """The guide's answer to a binary request: its first 10 bytes, quoted."""
    return BINARY_PREFIX + content[:10]
