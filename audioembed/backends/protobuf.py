"""The little of protobuf's wire format that reading and cutting model.onnx needs, so that the ONNX path needs no
`onnx` package: fields of a message (read), and fields and varints (written)."""

from __future__ import annotations

from ..errors import ModelError


def fields(buf: bytes):
    """(field number, wire type, value) of one protobuf message; values of length-delimited fields as bytes."""
    i = 0
    while i < len(buf):
        key, i = varint(buf, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = varint(buf, i)
        elif wire == 1:
            value, i = buf[i : i + 8], i + 8
        elif wire == 2:
            size, i = varint(buf, i)
            value, i = buf[i : i + size], i + size
        elif wire == 5:
            value, i = buf[i : i + 4], i + 4
        else:
            raise ModelError(f"not a valid ONNX file (protobuf wire type {wire})")
        yield number, wire, value


def varint(buf: bytes, i: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if i >= len(buf):
            raise ModelError("not a valid ONNX file (truncated protobuf)")
        byte = buf[i]
        result |= (byte & 0x7F) << shift
        i += 1
        if byte < 0x80:
            return result, i
        shift += 7


def field(number: int, wire: int, value) -> bytes:
    key = encode_varint(number << 3 | wire)
    if wire == 0:
        return key + encode_varint(value)
    if wire == 2:
        return key + encode_varint(len(value)) + value
    return key + value  # fixed 64 or 32 bits, kept as read


def encode_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)

