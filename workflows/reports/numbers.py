"""How the report prints a signed quantity (a slope, a difference, an interval's ends): with its sign, except a
value that rounds to zero at the printed precision, which prints as plain zero. A "-0 dB per doubling" or
"+0.00 dB" would claim a direction that the printed digits do not show, and which of the two appears depends
on the machine's last bit."""

from __future__ import annotations


def signed(value: float, fmt: str = "+.3g") -> str:
    """`value` formatted with `fmt` (a signed format such as "+.2f" or "+.1%"); without a sign when it rounds
    to zero."""
    text = f"{value:{fmt}}"
    try:
        rounded_to_zero = float(text.rstrip("%")) == 0.0
    except ValueError:
        return text
    return f"{0.0:{fmt.replace('+', '', 1)}}" if rounded_to_zero else text
