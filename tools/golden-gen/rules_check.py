#!/usr/bin/env python3
"""An independent encoder written only from the rules in README.md ("Observed rules").

It re-encodes every crates/source/testdata/golden/*.input.json and compares the result with
the Go-generated *.golden.jsonl beside it, so the written rules are checked to be complete.
The beyond-wire/ files are not covered (they exercise SDK quirks, see README.md).
Exit status 0 when every file matches.
"""
import base64
import datetime
import glob
import json
import os
import sys
from decimal import Decimal
from fractions import Fraction

GOLDEN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                      "crates", "source", "testdata", "golden")


def round64(x):
    """Round a Fraction to the nearest value with a 64-bit significand, ties to even
    (what math/big.Float does at its default precision of 64)."""
    if x == 0:
        return x
    sign = -1 if x < 0 else 1
    a = abs(x)
    e = a.numerator.bit_length() - a.denominator.bit_length()
    if Fraction(2) ** e > a:
        e -= 1
    scale = Fraction(2) ** (63 - e)
    m = a * scale
    q, r = divmod(m.numerator, m.denominator)
    r = Fraction(r, m.denominator)
    if r > Fraction(1, 2) or (r == Fraction(1, 2) and q % 2 == 1):
        q += 1
    return sign * Fraction(q) / scale


def timestamp(text):
    """ApproximateCreationDateTime (JSON number text, epoch seconds) -> JSON string."""
    # aws-sdk-go: big.Float.SetString(text) (64-bit), Mul(1000) (64-bit), Int64() (truncates).
    ms = int(round64(round64(Fraction(Decimal(text))) * 1000))
    t = datetime.datetime(1970, 1, 1) + datetime.timedelta(milliseconds=ms)
    frac = ("%03d" % (ms % 1000)).rstrip("0")
    return '"' + t.strftime("%Y-%m-%dT%H:%M:%S") + ("." + frac if frac else "") + 'Z"'


def string(s):
    out = ['"']
    for ch in s:
        o = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif o < 0x20 or ch in "<>&" or o in (0x2028, 0x2029):
            out.append("\\u%04x" % o)
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def opt(v, f):
    return "null" if v is None else f(v)


def lst(f):
    return lambda v: "[" + ",".join(opt(x, f) for x in v) + "]"


def binary(b64):
    return '"' + base64.b64encode(base64.b64decode(b64)).decode() + '"'


def boolean(v):
    return "true" if v else "false"


def attr_map(m):
    keys = sorted(m, key=lambda k: k.encode("utf-8"))
    return "{" + ",".join(string(k) + ":" + opt(m[k], attr) for k in keys) + "}"


def attr(a):
    members = [("B", binary), ("BOOL", boolean), ("BS", lst(binary)), ("L", lst(attr)),
               ("M", attr_map), ("N", string), ("NS", lst(string)), ("NULL", boolean),
               ("S", string), ("SS", lst(string))]
    return "{" + ",".join('"%s":%s' % (k, opt(a.get(k), f)) for k, f in members) + "}"


def record(r):
    def stream_record(d):
        return ('{"ApproximateCreationDateTime":%s,"Keys":%s,"NewImage":%s,"OldImage":%s,'
                '"SequenceNumber":%s,"SizeBytes":%s,"StreamViewType":%s}') % (
            opt(d.get("ApproximateCreationDateTime"), lambda v: timestamp(str(v))),
            opt(d.get("Keys"), attr_map), opt(d.get("NewImage"), attr_map),
            opt(d.get("OldImage"), attr_map), opt(d.get("SequenceNumber"), string),
            opt(d.get("SizeBytes"), lambda v: str(int(v))), opt(d.get("StreamViewType"), string))

    def identity(u):
        return '{"PrincipalId":%s,"Type":%s}' % (opt(u.get("PrincipalId"), string),
                                                 opt(u.get("Type"), string))

    return ('{"AwsRegion":%s,"Dynamodb":%s,"EventID":%s,"EventName":%s,"EventSource":%s,'
            '"EventVersion":%s,"UserIdentity":%s}') % (
        opt(r.get("awsRegion"), string), opt(r.get("dynamodb"), stream_record),
        opt(r.get("eventID"), string), opt(r.get("eventName"), string),
        opt(r.get("eventSource"), string), opt(r.get("eventVersion"), string),
        opt(r.get("userIdentity"), identity))


def main():
    ok = True
    for path in sorted(glob.glob(os.path.join(GOLDEN, "*.input.json"))):
        with open(path, encoding="utf-8") as f:
            # Keep number text: timestamps are converted from the exact decimal.
            body = json.load(f, parse_float=Decimal)
        mine = "".join(record(r) + "\n" for r in body["Records"])
        with open(path[: -len(".input.json")] + ".golden.jsonl", encoding="utf-8") as f:
            gold = f.read()
        same = mine == gold
        ok &= same
        print("%-6s %s" % ("ok" if same else "DIFFER", os.path.basename(path)))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
