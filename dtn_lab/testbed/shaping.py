"""Link shaping for the testbed: `tc` HTB trees with a classic-BPF flow hash (pure: text out).

Why this model.  On a real WAN (~100 ms RTT) one TCP stream is held far below the NIC
rate by its window and by loss; several streams (parallelism) and several files in
flight (concurrency) are how GridFTP fills the pipe, and several DTNs (nodes) are how a
site goes beyond one NIC.  This kernel has no netem (no delay, no loss) and no fq, so
the two limits are imposed directly with HTB, which it has:

- **per-flow cap** (stands for window/RTT): every TCP connection leaving a node is hashed
  on its ports into one of ``buckets`` HTB leaf classes whose ``ceil`` is the flow rate.
  One stream cannot go faster than that, however idle the link.  The hash is a classic
  BPF program (cls_bpf ``bytecode``: no compiler needed) that multiplies
  ``sport ^ dport`` by a Fibonacci constant and keeps the top bits; two streams that land
  in one bucket share its cap, like two flows sharing a congested path.
- **per-node cap** (stands for the NIC): all leaves borrow from one parent class whose
  rate and ceil are the node rate, on the node's egress; the node's ingress is capped
  by the same rate on the WAN side of its link.

So a node pair moves about ``min(node_rate, distinct_buckets(C × P) × flow_rate)``, and N
node pairs N times that, as long as the machine's CPUs are not the limit (the defaults
keep N × node_rate far below what two cores move through veth + HTB).  Leaf classes are
guaranteed only ``node_rate / (2 × buckets)`` each, so their guarantees add up to less than
the node rate and the parent's cap always holds (HTB lets a class send at its own rate
without asking its parent).

With a real round-trip time (the delay line, ``delayline``) the per-flow cap is left out
(``flow_rate=None``): TCP's window over the RTT limits a stream, as on a WAN.  The node
cap stays (the NIC), with a byte-limited FIFO under it (``queue_bytes``) so the queue at
the bottleneck is a router's, tens of milliseconds, not the veth's 1000 jumbo frames.
"""
from __future__ import annotations

from dataclasses import dataclass

# classic BPF opcodes (linux/bpf_common.h, linux/filter.h)
_LD, _LDX, _ST, _ALU, _JMP, _RET = 0x00, 0x01, 0x02, 0x04, 0x05, 0x06
_W, _H, _B = 0x00, 0x08, 0x10
_ABS, _IND, _MEM, _MSH = 0x20, 0x40, 0x60, 0xA0
_K, _X, _A = 0x00, 0x08, 0x10
_ADD, _MUL, _RSH, _XOR, _JEQ = 0x00, 0x20, 0x70, 0xA0, 0x10
_FIBONACCI = 0x9E3779B1

MAJOR = 1               # qdisc handle 1:
NODE_CLASS = 0x1        # 1:1   the node's link
OTHER_CLASS = 0x2       # 1:2   non-TCP traffic (ARP, ...)
FLOW_BASE = 0x100       # 1:100 ... first per-flow bucket


@dataclass(frozen=True)
class Shape:
    """Rates in bytes per second; ``buckets`` per-flow classes (a power of two)."""

    node_rate: int
    flow_rate: int | None      # None: no per-flow cap (the link is capped as a whole)
    buckets: int = 256
    quantum: int = 9000        # bytes a class may send per round; >= the MTU

    def __post_init__(self) -> None:
        if self.node_rate <= 0 or (self.flow_rate is not None and self.flow_rate <= 0):
            raise ValueError("rates must be positive")
        if self.buckets < 2 or self.buckets > 4096 or self.buckets & (self.buckets - 1):
            raise ValueError("buckets must be a power of two between 2 and 4096")


def flow_hash_program(buckets: int, major: int = MAJOR, base: int = FLOW_BASE,
                      other: int = OTHER_CLASS) -> list[tuple[int, int, int, int]]:
    """Classic BPF returning the HTB classid for a packet, seen from its Ethernet header.

    IPv4/TCP → ``major:(base + top_bits(hash(sport ^ dport)))``; anything else → ``major:other``.
    """
    bits = buckets.bit_length() - 1
    other_id = (major << 16) | other
    program = [
        (_LD | _H | _ABS, 0, 0, 12),          # 0  ethertype
        (_JMP | _JEQ | _K, 0, 12, 0x0800),    # 1  not IPv4 → 14
        (_LD | _B | _ABS, 0, 0, 23),          # 2  IP protocol
        (_JMP | _JEQ | _K, 0, 10, 6),         # 3  not TCP → 14
        (_LDX | _B | _MSH, 0, 0, 14),         # 4  X = IP header length
        (_LD | _H | _IND, 0, 0, 14),          # 5  A = source port
        (_ST, 0, 0, 0),                       # 6  M[0] = A
        (_LD | _H | _IND, 0, 0, 16),          # 7  A = destination port
        (_LDX | _W | _MEM, 0, 0, 0),          # 8  X = M[0]
        (_ALU | _XOR | _X, 0, 0, 0),          # 9  A ^= X
        (_ALU | _MUL | _K, 0, 0, _FIBONACCI),  # 10 A *= golden ratio (mod 2^32)
        (_ALU | _RSH | _K, 0, 0, 32 - bits),  # 11 keep the top bits
        (_ALU | _ADD | _K, 0, 0, (major << 16) | base),  # 12
        (_RET | _A, 0, 0, 0),                 # 13 classid
        (_RET | _K, 0, 0, other_id),          # 14
    ]
    return program


def bucket_of(sport: int, dport: int, buckets: int) -> int:
    """What ``flow_hash_program`` computes, in Python (for tests and for predicting collisions)."""
    bits = buckets.bit_length() - 1
    return (((sport ^ dport) * _FIBONACCI) & 0xFFFFFFFF) >> (32 - bits)


def bytecode(program: list[tuple[int, int, int, int]]) -> str:
    """The ``tc ... bpf bytecode`` string: ``count,code jt jf k,...`` (as ``tcpdump -ddd``)."""
    return ",".join([str(len(program))] + [f"{c} {jt} {jf} {k}" for c, jt, jf, k in program])


def node_sysctls(shape: Shape) -> dict[str, str]:
    """TCP settings inside a node: send buffers held to what a window-limited WAN stream keeps.

    With no real RTT, an unlimited send buffer lets each stream park megabytes in its HTB
    queue; the queueing delay then outgrows TCP's 200 ms minimum RTO and streams time out
    spuriously and stall.  128 KiB (half a second at the default per-stream cap) keeps
    queues short without limiting any stream below its cap.
    """
    return {"net.ipv4.tcp_wmem": "4096 16384 131072"}


def wan_sysctls(tcp_buffer: int | None, congestion: str | None) -> dict[str, str]:
    """TCP settings of a node behind the delay line: buffers capped as on a tuned DTN.

    ``tcp_rmem``/``tcp_wmem`` maxima bound what autotuning may grow a socket to, hence a
    stream's window (about 0.7 × the buffer here) and rate (window / RTT).  The kernel does
    not let a namespace lower ``net.core.rmem_max`` (it is the host's), so a socket that
    sets SO_RCVBUF itself (globus-url-copy -tcp-bs) is bounded by the host's value instead.
    """
    out = {}
    if tcp_buffer:
        out["net.ipv4.tcp_rmem"] = f"4096 {min(131072, tcp_buffer)} {tcp_buffer}"
        out["net.ipv4.tcp_wmem"] = f"4096 {min(16384, tcp_buffer)} {tcp_buffer}"
    if congestion:
        out["net.ipv4.tcp_congestion_control"] = congestion
    return out


def queue_lines(dev: str, parents: list[int], queue_bytes: int | None) -> list[str]:
    """A ``bfifo`` of ``queue_bytes`` under each of these HTB classes (none if not given)."""
    if not queue_bytes:
        return []
    return [f"qdisc add dev {dev} parent {MAJOR}:{c:x} handle {0x10 + i:x}: bfifo limit {queue_bytes}"
            for i, c in enumerate(parents)]


def _rate(bytes_per_second: float) -> str:
    return f"{max(1, int(bytes_per_second))}bps"    # tc: "bps" = bytes per second


def egress_commands(dev: str, shape: Shape, queue_bytes: int | None = None) -> list[str]:
    """``tc -batch`` lines for a node's sending side: node cap, and per-flow caps under it."""
    node = _rate(shape.node_rate)
    q = shape.quantum
    lines = [f"qdisc add dev {dev} root handle {MAJOR}: htb default {OTHER_CLASS:x}",
             f"class add dev {dev} parent {MAJOR}: classid {MAJOR}:{NODE_CLASS:x} htb rate {node} "
             f"ceil {node} quantum {q}"]
    if shape.flow_rate is None:
        lines.append(f"class add dev {dev} parent {MAJOR}:{NODE_CLASS:x} classid {MAJOR}:{OTHER_CLASS:x} "
                     f"htb rate {node} ceil {node} quantum {q}")
        return lines + queue_lines(dev, [OTHER_CLASS], queue_bytes)
    share = shape.node_rate / 2
    lines.append(f"class add dev {dev} parent {MAJOR}:{NODE_CLASS:x} classid {MAJOR}:{OTHER_CLASS:x} "
                 f"htb rate {_rate(share)} ceil {node} quantum {q}")
    leaf_rate = _rate(share / shape.buckets)
    flow_ceil = _rate(min(shape.flow_rate, shape.node_rate))
    for k in range(shape.buckets):
        lines.append(f"class add dev {dev} parent {MAJOR}:{NODE_CLASS:x} classid {MAJOR}:{FLOW_BASE + k:x} "
                     f"htb rate {leaf_rate} ceil {flow_ceil} quantum {q}")
    lines.append(f"filter add dev {dev} parent {MAJOR}: prio 1 protocol all bpf bytecode "
                 f"\"{bytecode(flow_hash_program(shape.buckets))}\"")
    leaves = [OTHER_CLASS] + [FLOW_BASE + k for k in range(shape.buckets)]
    return lines + queue_lines(dev, leaves, queue_bytes)


def ingress_commands(dev: str, node_rate: int, quantum: int = 9000,
                     queue_bytes: int | None = None) -> list[str]:
    """``tc -batch`` lines for the WAN side of a node's link: what the node may receive."""
    rate = _rate(node_rate)
    return [f"qdisc add dev {dev} root handle {MAJOR}: htb default {NODE_CLASS:x}",
            f"class add dev {dev} parent {MAJOR}: classid {MAJOR}:{NODE_CLASS:x} htb rate {rate} "
            f"ceil {rate} quantum {quantum}"] + queue_lines(dev, [NODE_CLASS], queue_bytes)
