"""JSON text exactly as ringcast's json::writer writes it (proto/src/json_writer.cc), for the
tool-call arguments the mock builds from a schema: compact, non-ASCII UTF-8 kept verbatim,
control bytes escaped (\\b \\f \\n \\r \\t, else \\u00xx), doubles in the shortest round-trip form
of std::to_chars (fixed or scientific, whichever is shorter; fixed on ties) with ".0" added when
it reads as an integer. Python standard library only."""

_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def encode_string(s):
    out = ['"']
    for ch in s:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ord(ch) < 0x20:
            out.append("\\u%04x" % ord(ch))
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def shortest_double(v):
    """std::to_chars(double) without a format: the shortest round-trip digits, written fixed or
    scientific (printf %e style, exponent of at least 2 digits), whichever is shorter."""
    if v == 0:
        return "-0" if str(v).startswith("-") else "0"
    sign = "-" if v < 0 else ""
    digits, exp = _digits(abs(v))  # value = 0.d1d2... * 10**exp
    # fixed
    if exp <= 0:
        fixed = "0." + "0" * (-exp) + digits
    elif exp >= len(digits):
        fixed = str(int(abs(v)))  # integral: its exact digits, as std::to_chars writes them
    else:
        fixed = digits[:exp] + "." + digits[exp:]
    # scientific
    e = exp - 1
    mant = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
    sci = mant + "e" + ("-" if e < 0 else "+") + "%02d" % abs(e)
    return sign + (fixed if len(fixed) <= len(sci) else sci)


def _digits(v):
    """The shortest round-trip decimal digits of v > 0 (from repr) and the exponent e such that
    v = 0.DIGITS * 10**e."""
    mant, _, e = repr(v).partition("e")
    whole, _, frac = mant.partition(".")
    digits = whole + frac
    stripped = digits.lstrip("0")
    exp = len(whole) + (int(e) if e else 0) - (len(digits) - len(stripped))
    return stripped.rstrip("0") or "0", exp


def encode_double(v):
    if v != v or v in (float("inf"), float("-inf")):
        return "null"
    s = shortest_double(v)
    if "." not in s and "e" not in s:
        s += ".0"
    return s


def encode_value(v):
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return encode_double(v)
    if isinstance(v, str):
        return encode_string(v)
    if isinstance(v, list):
        return "[" + ",".join(encode_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ",".join(encode_string(k) + ":" + encode_value(x) for k, x in v.items()) + "}"
    raise TypeError(type(v))
