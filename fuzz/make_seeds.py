#!/usr/bin/env python3
"""Writes the seed corpus under fuzz/corpus/<target>/: a few small valid inputs per target.

The exchange seeds are protobuf messages of proto/hancha/exchange/v1/exchange.proto, encoded by
hand below (field numbers from the .proto), each behind the selector byte the target reads.
Run from anywhere; re-running rewrites the same files.
"""
import codecs
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent
REPO = ROOT.parent
CORPUS = ROOT / "corpus"

WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
CHECK = "10X98765432"


def resident_id(first17: str) -> str:
    return first17 + CHECK[sum(int(d) * w for d, w in zip(first17, WEIGHTS)) % 11]


# --- protobuf wire format ---------------------------------------------------------------------

def varint(n: int) -> bytes:
    n &= (1 << 64) - 1
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def field(number: int, value) -> bytes:
    """int → varint field; bytes/str → length-delimited field; None → nothing."""
    if value is None:
        return b""
    if isinstance(value, bool):
        value = int(value)
    if isinstance(value, int):
        return varint(number << 3) + varint(value)
    if isinstance(value, str):
        value = value.encode()
    return varint(number << 3 | 2) + varint(len(value)) + value


def message(*fields: bytes) -> bytes:
    return b"".join(fields)


def string_map(number: int, entries: dict) -> bytes:
    return b"".join(field(number, message(field(1, k), field(2, v))) for k, v in entries.items())


HASH = "5f0c6b8b1fb8e7d5c2a5a0b39bfc3c1d7d0a4c5f1e2b3a4c5d6e7f8091a2b3c4"
AGREEMENT = message(field(1, "430703-431322"), field(2, HASH))
IDS = [
    "01a22a53-e5a4-7208-8ac6-a9242788bd9b",
    "01a22a54-0000-7000-8000-000000000001",
    "01a22a55-1234-7abc-9def-0123456789ab",
]
WOMAN = "431322199005060026"
SUBJECT = message(field(1, WOMAN), field(2, "HN-2024-000123"))


def inquiry(kind=1, priority=2, subject=SUBJECT, message_id=IDS[0]) -> bytes:
    return message(field(1, message_id), field(2, AGREEMENT), field(3, kind), field(4, priority), field(5, subject))


def confirmation() -> bytes:
    return message(
        field(1, IDS[1]),
        field(2, IDS[0]),
        field(3, AGREEMENT),
        field(4, 1),
        string_map(5, {"certificate_status": "valid", "certificate_valid_until": "2028-05-31",
                       "children_count": "1", "pregnant": "false", "township": "431322100"}),
        field(6, message(field(1, 1_780_000_000), field(2, 123_456_789))),
    )


def notice() -> bytes:
    return message(
        field(1, IDS[2]),
        field(2, AGREEMENT),
        field(3, 1),
        field(4, message(field(1, WOMAN))),
        field(5, "2026-03-01"),
        string_map(6, {"children_count": "2", "marital_status": "married"}),
    )


def symbol(sum_byte: int, checksum: int, count: int) -> bytes:
    zigzag = (count << 1) ^ (count >> 63)
    return bytes([sum_byte]) * 32 + checksum.to_bytes(8, "little") + varint(zigzag)


def exchange_seeds() -> dict:
    begin = message(field(1, IDS[0]), field(2, AGREEMENT), field(3, 1), field(4, 100))
    symbols = message(field(1, 0), field(2, 2), field(3, symbol(7, 0x1234, 1) + symbol(9, 99, -1)), field(4, 3))
    elements = message(field(1, bytes(range(64))), field(2, True), field(3, 2))
    detail = message(
        field(1, message(field(1, 1), field(2, IDS[1]), field(3, "430703"))),
        field(2, bytes(range(32))),
        field(3, True),
    )
    return {
        "inquiry_batch": b"\x00" + message(field(1, inquiry()), field(1, inquiry(kind=2, priority=1, message_id=IDS[1]))),
        "submit_inquiry": b"\x01" + message(field(1, inquiry()), field(2, 2000)),
        "confirmation_batch": b"\x02" + message(field(1, confirmation())),
        "notice_batch": b"\x03" + message(field(1, notice())),
        "confirmation_acks": b"\x04" + message(field(1, IDS[1]), field(1, IDS[2])),
        "reconcile_begin": b"\x05" + message(field(1, begin)),
        "reconcile_symbols": b"\x05" + message(field(2, symbols)),
        "reconcile_elements": b"\x05" + message(field(3, elements)),
        "reconcile_detail": b"\x05" + message(field(4, detail)),
    }


def registry_seeds() -> dict:
    inflow = resident_id("43132219900506002")
    outflow = resident_id("43070319880312045")
    text = (
        "resident_id,name,flow,registered_county,residence_county,township,children_count,pregnant\n"
        f"{inflow},刘芳,inflow,431322,,430703001,1,否\n"
        f"{outflow},王丽,outflow,,431322,430703001,0,\n"
        "4.30703E+17,李娜,流入,431322,,,,\n"
    )
    full = (
        "Resident_ID , Name ,flow,registered_county,marital_status,certificate_number,"
        "certificate_valid_until,certificate_status,contraception_status,contraception_date,"
        "registered_since,village\r\n"
        f"{inflow.lower()},\"欧阳, 娜娜\",流入,431322,married,HN-2024-000123,2028-05-31,valid,"
        "long_acting,2025-11-02,2024-03-01,430703001001\r\n"
        "\r\n"
        f"\"{outflow}\",\"say \"\"hi\"\"\nthere\",inflow,431322,,,,,,,,\r\n"
    )
    gbk = codecs.encode(text, "gbk")
    return {
        # The first byte: encoding (0 auto, 1 UTF-8, 2 GBK), bit 2 a 64-byte record limit, the
        # rest how many bytes each read hands out.
        "utf8_auto": b"\x00" + text.encode(),
        "utf8_bom_full": b"\x19" + b"\xef\xbb\xbf" + full.encode(),
        "gbk_auto": b"\x30" + gbk,
        "gbk_named": b"\x02" + gbk,
        "small_limit": b"\x04" + text.encode(),
    }


def agreement_seeds() -> dict:
    seeds = {}
    for path in sorted((REPO / "examples" / "agreements").glob("*.toml")):
        seeds[path.stem] = path.read_bytes()
    seeds["minimal"] = (
        'id = "a"\nversion = 1\ntitle = "t"\nparties = ["430703", "431322"]\n'
        "valid_from = 2026-01-01\nvalid_until = 2026-12-31\nretention_days = 365\n\n[[direction]]\n"
        'from = "431322"\nto = "430703"\ninquiry_kinds = ["outflow_status"]\nnotice_kinds = []\n'
        "answer_fields = []\nreply_days = { normal = 30, urgent = 15 }\ndaily_cap = 1\n"
        "automatic_answers = false\n"
    ).encode()
    return seeds


def resident_id_seeds() -> dict:
    return {
        "woman_1949": b"11010519491231002X",
        "lower_x": b"11010519491231002x",
        "man_1988": resident_id("43070319880312045").encode(),
        "legacy_15": b"110105491231002",
        "wrong_check": b"110105194912310021",
    }


def main():
    for target, seeds in {
        "exchange_messages": exchange_seeds(),
        "registry_row": registry_seeds(),
        "agreement_toml": agreement_seeds(),
        "resident_id": resident_id_seeds(),
    }.items():
        directory = CORPUS / target
        directory.mkdir(parents=True, exist_ok=True)
        for name, data in seeds.items():
            (directory / name).write_bytes(data)


if __name__ == "__main__":
    main()
