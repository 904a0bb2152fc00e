#!/usr/bin/python3
"""Write golden safetensors files for internal/safetensors tests.

The safetensors Python package is deliberately NOT used: the file format is
written by hand (json + struct + raw tensor bytes from PyTorch), so the Go
reader is checked against an independent writer and PyTorch's own dtype
conversions, not against a second copy of the same code.

Outputs, under internal/safetensors/testdata/ (or the folder given as argv[1]):
  golden.safetensors   one file: F32, BF16, F16, I64, I32, U8, BOOL tensors,
                       a scalar, an empty tensor and __metadata__
  golden_sharded/      the same float tensors split over two shards plus
                       model.safetensors.index.json
  golden_f32.safetensors, golden_bf16.safetensors
                       only the F32 (resp. BF16) tensors, in the exact byte
                       layout the Go writer must reproduce
  golden.json          expected values: for every float tensor the float32
                       bit patterns torch gets with .float(); raw bytes (hex)
                       for the others; and "bf16_rne", float32 inputs with the
                       bfloat16 bits torch rounds them to.

Run from the repository root:  /usr/bin/python3 tools/formats_make_safetensors.py
"""
import json
import os
import struct
import sys

import numpy as np
import torch

DTYPES = {
    torch.float32: "F32",
    torch.bfloat16: "BF16",
    torch.float16: "F16",
    torch.int64: "I64",
    torch.int32: "I32",
    torch.uint8: "U8",
    torch.bool: "BOOL",
}


def raw_bytes(t):
    """Little-endian bytes of a contiguous tensor (numpy has no bfloat16)."""
    t = t.contiguous()
    if t.dtype == torch.bfloat16:
        return t.view(torch.int16).numpy().astype("<i2").tobytes()
    return t.numpy().astype(t.numpy().dtype.newbyteorder("<")).tobytes()


def write_safetensors(path, tensors, metadata=None):
    """Write the format by hand: u64 header length, JSON, padded, then data."""
    header = {}
    if metadata:
        header["__metadata__"] = metadata
    chunks, offset = [], 0
    for name in sorted(tensors):
        t = tensors[name]
        data = raw_bytes(t)
        header[name] = {
            "dtype": DTYPES[t.dtype],
            "shape": list(t.shape),
            "data_offsets": [offset, offset + len(data)],
        }
        chunks.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for c in chunks:
            f.write(c)


def f32_bits(t):
    return [int(x) & 0xFFFFFFFF for x in t.float().contiguous().view(torch.int32).flatten().tolist()]


def from_bits16(bits, dtype):
    return torch.tensor(np.array(bits, dtype=np.uint16).view(np.int16)).view(dtype)


def float_tensors():
    g = torch.Generator().manual_seed(1234)
    inf, nan = float("inf"), float("nan")
    f32_special = torch.tensor(
        [0.0, -0.0, 1.0, -1.5, 3.14159265, 1e-45, 1.17549435e-38, 3.4028235e38, inf, -inf, nan, -2.5e-40],
        dtype=torch.float32).reshape(3, 4)
    f16_special = from_bits16(
        [0x0000, 0x8000, 0x0001, 0x8001, 0x03FF, 0x0400, 0x3C00, 0xC000, 0x7BFF, 0xFBFF,
         0x7C00, 0xFC00, 0x7E00, 0x3555, 0x0200, 0x83FF], torch.float16).reshape(4, 4)
    bf16_special = from_bits16(
        [0x0000, 0x8000, 0x0001, 0x007F, 0x0080, 0x3F80, 0xC040, 0x7F7F, 0xFF7F,
         0x7F80, 0xFF80, 0x7FC0], torch.bfloat16).reshape(2, 6)
    return {
        "f32_special": f32_special,
        "f32_random": torch.randn(4, 3, 2, generator=g),
        "f16_special": f16_special,
        "f16_random": (torch.randn(64, generator=g) * 100).to(torch.float16),
        "bf16_special": bf16_special,
        "bf16_random": (torch.randn(8, 8, generator=g) * 1e3).to(torch.bfloat16),
        "scalar": torch.tensor(42.5, dtype=torch.float32),
        "empty": torch.zeros(0, 3, dtype=torch.float32),
    }


def raw_tensors():
    return {
        "i64": torch.tensor([-1, 2**40, 7], dtype=torch.int64),
        "i32": torch.tensor([[1, -2], [2**31 - 1, -(2**31)]], dtype=torch.int32),
        "u8": torch.tensor([0, 1, 127, 128, 255], dtype=torch.uint8),
        "bool": torch.tensor([True, False, False, True], dtype=torch.bool),
    }


def rne_cases():
    """float32 inputs (bits) and the bfloat16 bits torch rounds them to."""
    ties = [0x3F808000, 0x3F818000, 0x3F808001, 0x3F807FFF, 0xBF808000, 0x7F7FFFFF,
            0x7F7F8000, 0x7F7F7FFF, 0x00008000, 0x00018000, 0x00000001, 0x80000001,
            0x7F800000, 0xFF800000, 0x7FC00000, 0x00000000, 0x80000000]
    g = torch.Generator().manual_seed(99)
    rand = torch.randint(0, 2**31 - 1, (400,), generator=g, dtype=torch.int64)
    rand = [int(x) | (0x80000000 if i % 2 else 0) for i, x in enumerate(rand.tolist())]
    bits = [b for b in ties + rand if not ((b & 0x7F800000) == 0x7F800000 and b & 0x7FFFFF and b != 0x7FC00000)]
    f = torch.tensor(np.array(bits, dtype=np.uint32).view(np.int32)).view(torch.float32)
    out = f.to(torch.bfloat16).view(torch.int16).tolist()
    return [{"f32": b, "bf16": o & 0xFFFF} for b, o in zip(bits, out)]


def main():
    out_dir = sys.argv[1] if len(sys.argv) > 1 else "internal/safetensors/testdata"
    os.makedirs(out_dir, exist_ok=True)
    floats, raws = float_tensors(), raw_tensors()
    metadata = {"format": "pt", "source": "tools/formats_make_safetensors.py"}
    write_safetensors(os.path.join(out_dir, "golden.safetensors"), {**floats, **raws}, metadata)

    by_dtype = lambda dt: {n: t for n, t in floats.items() if t.dtype == dt}
    write_safetensors(os.path.join(out_dir, "golden_f32.safetensors"), by_dtype(torch.float32), {"format": "pt"})
    write_safetensors(os.path.join(out_dir, "golden_bf16.safetensors"), by_dtype(torch.bfloat16), None)

    shard_dir = os.path.join(out_dir, "golden_sharded")
    os.makedirs(shard_dir, exist_ok=True)
    names = sorted(floats)
    parts = [names[: len(names) // 2], names[len(names) // 2:]]
    weight_map = {}
    for i, part in enumerate(parts):
        fname = "model-%05d-of-%05d.safetensors" % (i + 1, len(parts))
        write_safetensors(os.path.join(shard_dir, fname), {n: floats[n] for n in part}, {"format": "pt"})
        weight_map.update({n: fname for n in part})
    total = sum(len(raw_bytes(t)) for t in floats.values())
    with open(os.path.join(shard_dir, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2, sort_keys=True)

    expected = {"metadata": metadata, "tensors": {}, "bf16_rne": rne_cases()}
    for name, t in floats.items():
        expected["tensors"][name] = {"dtype": DTYPES[t.dtype], "shape": list(t.shape), "f32_bits": f32_bits(t)}
    for name, t in raws.items():
        expected["tensors"][name] = {"dtype": DTYPES[t.dtype], "shape": list(t.shape), "hex": raw_bytes(t).hex()}
    with open(os.path.join(out_dir, "golden.json"), "w") as f:
        json.dump(expected, f, indent=1, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()
