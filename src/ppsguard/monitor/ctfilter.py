"""A classic BPF program that drops, in the kernel, the conntrack updates `pps watch` never uses.

    program = update_filter()             # bytes: struct sock_filter[]
    attach(sock, program)                 # I/O: SO_ATTACH_FILTER on the netlink socket

A short TCP connection makes the kernel send seven messages (NEW, then updates to SYN_RECV,
ESTABLISHED, FIN_WAIT, CLOSE_WAIT, LAST_ACK, TIME_WAIT) and DESTROY two minutes later. The
watch needs NEW, the answer (ESTABLISHED) and a reset (CLOSE); the others give no event. The
program runs on every message before it is queued to the socket, so those are never received
or parsed: it drops an update (IPCTNL_MSG_CT_NEW without NLM_F_CREATE) whose TCP state is
SYN_RECV, or FIN_WAIT, CLOSE_WAIT, LAST_ACK or TIME_WAIT with the ASSURED status bit (set once
the handshake completed, whose own update was kept). One thing is lost against reading every
update: a connection established before the watch started, first heard of when it closes,
gives no ANSWERED event (its DESTROY still gives CLOSED). Everything else passes: NEW, DESTROY,
UDP, ICMP and messages without a TCP state. It finds the attributes with the kernel's netlink
helpers (SKF_AD_NLATTR, SKF_AD_NLATTR_NEST), as libnetfilter_conntrack's filters do
(include/uapi/linux/filter.h, net/core/filter.c). The program is pure data; `attach` is the
one system call.
"""

from __future__ import annotations

import ctypes
import socket
import struct
import sys

# struct sock_filter opcodes (include/uapi/linux/bpf_common.h)
_LD, _LDX, _JMP, _RET, _MISC = 0x00, 0x01, 0x05, 0x06, 0x07
_W, _B = 0x00, 0x10
_IMM, _ABS, _IND = 0x00, 0x20, 0x40
_JEQ, _JGT, _JGE, _JSET = 0x10, 0x20, 0x30, 0x40
_TAX = 0x00
_SKF_AD_OFF = -0x1000
_NLATTR = (_SKF_AD_OFF + 12) & 0xFFFFFFFF
_NLATTR_NEST = (_SKF_AD_OFF + 16) & 0xFFFFFFFF
SO_ATTACH_FILTER = 26

_FIRST_ATTRIBUTE = 16 + 4  # nlmsghdr, nfgenmsg
_CTA_STATUS, _CTA_PROTOINFO = 3, 4
_CTA_PROTOINFO_TCP, _CTA_PROTOINFO_TCP_STATE = 1, 1
_NLM_F_CREATE_HIGH_BYTE = 0x04  # NLM_F_CREATE (0x400) in the flags' high byte
_IPS_ASSURED = 4
_SYN_RECV, _FIN_WAIT, _TIME_WAIT = 2, 4, 7
ACCEPT, DROP = 0xFFFFFFFF, 0

Instruction = tuple[int, str | int, str | int, int]  # code, jump if true, if false, k


def _program(little_endian: bool) -> list[Instruction]:
    """The filter as (code, true target, false target, k); targets are labels or 0 (next)."""
    kind_at = 4 if little_endian else 5  # the low byte of nlmsg_type (host order)
    flags_high_at = 7 if little_endian else 6
    find = (_LD | _W | _ABS, 0, 0, _NLATTR)
    nest = (_LD | _W | _ABS, 0, 0, _NLATTR_NEST)
    return [
        (_LD | _B | _ABS, 0, 0, kind_at),
        (_JMP | _JEQ, 0, "accept", 0),  # not IPCTNL_MSG_CT_NEW: DESTROY, errors
        (_LD | _B | _ABS, 0, 0, flags_high_at),
        (_JMP | _JSET, "accept", 0, _NLM_F_CREATE_HIGH_BYTE),  # a new connection
        (_LD | _IMM, 0, 0, _FIRST_ATTRIBUTE),
        (_LDX | _IMM, 0, 0, _CTA_PROTOINFO),
        find,
        (_JMP | _JEQ, "accept", 0, 0),  # no protocol state: not TCP
        (_LDX | _IMM, 0, 0, _CTA_PROTOINFO_TCP),
        nest,
        (_JMP | _JEQ, "accept", 0, 0),
        (_LDX | _IMM, 0, 0, _CTA_PROTOINFO_TCP_STATE),
        nest,
        (_JMP | _JEQ, "accept", 0, 0),
        (_MISC | _TAX, 0, 0, 0),
        (_LD | _B | _IND, 0, 0, 4),  # the state byte, after the attribute header
        (_JMP | _JEQ, "drop", 0, _SYN_RECV),
        (_JMP | _JGE, 0, "accept", _FIN_WAIT),
        (_JMP | _JGT, "accept", 0, _TIME_WAIT),
        (_LD | _IMM, 0, 0, _FIRST_ATTRIBUTE),  # a closing state: answered already?
        (_LDX | _IMM, 0, 0, _CTA_STATUS),
        find,
        (_JMP | _JEQ, "accept", 0, 0),
        (_MISC | _TAX, 0, 0, 0),
        (_LD | _W | _IND, 0, 0, 4),  # the status word (big-endian, as BPF loads words)
        (_JMP | _JSET, "drop", "accept", _IPS_ASSURED),
    ]


def update_filter(little_endian: bool = sys.byteorder == "little") -> bytes:
    """The program as an array of struct sock_filter (see the module docstring)."""
    body = _program(little_endian)
    labels = {"accept": len(body), "drop": len(body) + 1}
    out = bytearray()
    for index, (code, true, false, k) in enumerate(body):
        jumps = [labels[t] - index - 1 if isinstance(t, str) else t for t in (true, false)]
        out += struct.pack("=HBBI", code, jumps[0], jumps[1], k)
    out += struct.pack("=HBBI", _RET | _IMM, 0, 0, ACCEPT)
    out += struct.pack("=HBBI", _RET | _IMM, 0, 0, DROP)
    return bytes(out)


def attach(sock: socket.socket, program: bytes) -> None:
    """Attach `program` to `sock` (SO_ATTACH_FILTER); OSError if the kernel refuses it."""
    instructions = len(program) // 8
    buffer = ctypes.create_string_buffer(program, len(program))
    fprog = struct.pack("@HP", instructions, ctypes.addressof(buffer))  # struct sock_fprog
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)
