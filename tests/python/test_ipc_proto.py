"""python/thaw_runtime/ipc.py mirrors src/ipc/ipc-proto.h: every frame type
and flag the header defines has the same value on the Python side."""
import re
from pathlib import Path

from thaw_runtime import ipc

HEADER = Path(__file__).resolve().parents[2] / "src" / "ipc" / "ipc-proto.h"


def test_every_frame_type_and_flag_matches_the_c_header():
    text = HEADER.read_text()
    types = dict(re.findall(r"THAW_IPC_([A-Z_]+)\s*=\s*(\d+)", text))
    flags = dict(re.findall(r"#define THAW_IPC_F_([A-Z]+)\s+(0x[0-9a-fA-F]+)", text))
    assert len(types) >= 20 and "BIND_CALL" in types and "BUSY" in types
    for name, value in types.items():
        assert getattr(ipc, name) == int(value), name
    for name, value in flags.items():
        assert getattr(ipc, "F_" + name) == int(value, 16), name
    sizes = dict(re.findall(r"#define THAW_IPC_(HEADER_SIZE|CHUNK|MAX_PAYLOAD)\s+(.+)", text))
    assert ipc.HEADER_SIZE == int(sizes["HEADER_SIZE"])
    assert ipc.CHUNK == eval(sizes["CHUNK"])  # "(64 * 1024)": arithmetic only
    assert ipc.MAX_PAYLOAD == eval(sizes["MAX_PAYLOAD"])
