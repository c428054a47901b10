"""Packet-level H.264 facts the reader uses to skip work: the NAL length-prefix size of an AVCC
stream and whether a packet is a non-reference picture (no other frame needs it decoded). Reads
bytes only; imports nothing beyond the standard library."""
from __future__ import annotations


def h264_length_size(stream) -> int | None:
    """NAL length-prefix size of an H.264 stream stored AVCC-style (MP4, MKV), else None."""
    extradata = stream.codec_context.extradata
    if stream.codec_context.name != "h264" or not extradata or extradata[0] != 1:
        return None  # not H.264, or Annex-B start codes (MPEG-TS, raw .h264)
    return (extradata[4] & 3) + 1


def is_nonreference_h264(data: memoryview, length_size: int) -> bool:
    """True when no slice of this AVCC packet is a reference picture (nal_ref_idc == 0 in every
    slice NAL), so that no other frame needs it decoded: x264's non-reference B-frames."""
    position, has_slice = 0, False
    while position + length_size < len(data):
        size = int.from_bytes(data[position:position + length_size], "big")
        header = data[position + length_size]
        if 1 <= header & 0x1F <= 5:  # coded slice (non-IDR or IDR)
            if header & 0x60:
                return False
            has_slice = True
        position += length_size + size
    return has_slice
