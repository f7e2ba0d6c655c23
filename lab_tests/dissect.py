"""The guide's messages in a capture, as the Wireshark dissector shows them.

services/wireshark/socketlab.lua does the decoding; tshark prints it as JSON
(``-T json --no-duplicate-keys``); :func:`messages` turns that into one :class:`Message` per
protocol message, in capture order. The unit tier runs the host's tshark on a committed pcap
with ``-X lua_script:``; the lab tier runs the router's tshark, where the image installed the
dissector in Wireshark's plugin folder (:func:`tshark_argv` with ``lua=None``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

LUA = Path(__file__).resolve().parent.parent / "services" / "wireshark" / "socketlab.lua"


def tshark_argv(pcap: str, *options: str, lua: Path | None = LUA) -> list[str]:
    """tshark reading ``pcap``, printing the frames that hold a message as JSON. ``-n``: no
    name resolution (hermetic). Not the ICMP errors that quote the start of a message (a small
    MTU's "packet too big"): those are not messages on the wire. TCP reassembly takes
    segments out of order too (the impaired router reorders; Wireshark's default does not)."""
    script = ["-X", f"lua_script:{lua}"] if lua else []
    return ["tshark", "-n", *script, "-o", "tcp.reassemble_out_of_order:TRUE", "-r", pcap, *options, "-Y", "socketlab && !icmp && !icmpv6", "-T", "json",
            "--no-duplicate-keys", "-J", "frame tcp tcp.segments socketlab"]


@dataclass
class Message:
    frame: int  # the frame that completed it
    src_port: int
    dst_port: int
    segments: int  # TCP segments it was reassembled from (1: it fitted in one)
    direction: str  # "request", "response" (by the lab's ports) or "message" (heuristic)
    header_length: int
    header: dict | None  # the JSON header as sent, None when malformed
    values: list[int | float] | None = None  # an array's numbers, in the declared byte order
    json: object = None  # text/json content, parsed
    text: str | None = None  # other text content
    experts: list[str] = field(default_factory=list)  # expert info names, e.g. "socketlab.content.short"
    fields: dict = field(default_factory=dict)  # every socketlab.* field as tshark printed it


def as_shown(values: list[int | float]) -> list[int | float]:
    """``values`` as the dissector shows them: Wireshark prints a double with 15 significant
    digits (integers, 64-bit ones included, are exact)."""
    return [float(f"{v:.15g}") if isinstance(v, float) else v for v in values]


def _listed(value) -> list:
    return value if isinstance(value, list) else [value]


def _experts(layer: dict) -> list[str]:
    found = []
    for expert in _listed(layer.get("_ws.expert", [])):
        found += [name for name in expert if name.startswith("socketlab.")]
    return found


def messages(tshark_json: str) -> list[Message]:
    found = []
    for packet in json.loads(tshark_json):
        layers = packet["_source"]["layers"]
        tcp = layers["tcp"]
        segments = int(layers.get("tcp.segments", {}).get("tcp.segment.count", 1))
        for layer in _listed(layers["socketlab"]):
            values = None
            for kind, convert in (("int", int), ("uint", int), ("float", float)):
                if f"socketlab.array.{kind}" in layer:
                    values = [convert(v) for v in _listed(layer[f"socketlab.array.{kind}"])]
            if values is None and "socketlab.array.count" in layer:
                values = []
            header = layer.get("socketlab.header")
            try:
                header = json.loads(header) if header is not None else None
            except ValueError:
                header = None
            found.append(Message(
                frame=int(layers["frame"]["frame.number"]),
                src_port=int(tcp["tcp.srcport"]), dst_port=int(tcp["tcp.dstport"]),
                segments=segments,
                direction=layer["socketlab.direction"],
                header_length=int(layer["socketlab.header_length"]) if "socketlab.header_length" in layer else -1,
                header=header,
                values=values,
                json=json.loads(layer["socketlab.json"]) if "socketlab.json" in layer else None,
                text=layer.get("socketlab.text"),
                experts=_experts(layer),
                fields=layer,
            ))
    return found
