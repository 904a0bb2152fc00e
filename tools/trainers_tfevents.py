#!/usr/bin/python3
"""Golden TensorBoard event file for internal/train (TestEventWriter_Golden).

An independent writer of the TFRecord framing and the tensorflow.Event
protobuf, written from the format descriptions (tensorflow/core/util/event.proto,
tensorflow/core/framework/summary.proto, TFRecord: uint64 length, masked
CRC32C of the length, data, masked CRC32C of the data), with its own
bit-by-bit CRC32C. The Go test writes the same events with the same clock
and compares the bytes.

Run from the repository root:  /usr/bin/python3 tools/trainers_tfevents.py
"""
import struct

OUT = "internal/train/report/testdata/golden.tfevents"

# The clock and events the Go test replays (keep in sync with tfevents_test.go).
T0 = 1700000000.25
EVENTS = [
    (T0 + 1.0, 1, [("train/loss", 2.5), ("train/lr", 1e-4)]),
    (T0 + 2.0, 2, [("train/loss", 2.25)]),
    (T0 + 3.5, 300, [("eval/acc", 0.75), ("eval/loss", float("nan"))]),
]


def crc32c(data):
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def masked(data):
    c = crc32c(data)
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def key(field, wire):
    return varint(field << 3 | wire)


def length_delimited(field, payload):
    return key(field, 2) + varint(len(payload)) + payload


def event(wall_time, step, body):
    out = key(1, 1) + struct.pack("<d", wall_time)
    if step:
        out += key(2, 0) + varint(step)
    return out + body


def scalar_summary(values):
    summary = b""
    for tag, v in values:
        value = length_delimited(1, tag.encode()) + key(2, 5) + struct.pack("<f", v)
        summary += length_delimited(1, value)
    return length_delimited(5, summary)


def record(payload):
    length = struct.pack("<Q", len(payload))
    return length + struct.pack("<I", masked(length)) + payload + struct.pack("<I", masked(payload))


def main():
    # The check value of CRC-32C (RFC 3720 / iSCSI) guards the implementation.
    assert crc32c(b"123456789") == 0xE3069283
    data = record(event(T0, 0, length_delimited(3, b"brain.Event:2")))
    for t, step, values in EVENTS:
        data += record(event(t, step, scalar_summary(values)))
    with open(OUT, "wb") as f:
        f.write(data)
    print("wrote", OUT, len(data), "bytes")


if __name__ == "__main__":
    main()
