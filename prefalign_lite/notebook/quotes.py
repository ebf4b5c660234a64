"""Numbers that a notebook's prose quotes from its outputs, checked against those outputs.

nbval keeps a notebook's *outputs* current; nothing kept its *prose* current, so a sentence could
go on saying "recall 0.354" after the output had changed. The convention that closes the gap:

**Every number a markdown cell quotes from an output is wrapped in a span that names the output
line it comes from:**

.. code-block:: html

    the flag's recall is <span data-check="recall">0.354</span>

- ``data-check`` holds words that appear on the printed line quoted (case is ignored); several
  parts separated by ``;`` must all appear on that one line (``data-check="SeRA; R2"``). Printed
  lines are those of every code cell's outputs, above or below the quote (stream text and the
  plain-text form of results), so a summary may quote a number printed anywhere in the notebook.
- The span holds the number as the prose shows it: ``0.354``, ``-0.4``, ``+0.179``, ``4,000``,
  ``36%``, ``x208``. It matches a number on such a line that *rounds* to it at the quote's own
  precision: ``0.99`` quotes a printed ``0.988``; ``36%`` quotes a printed ``0.359`` or ``35.9%``;
  a leading ``x`` or ``+`` is only text.
- Any number on a named line supports the quote, so pick words that single out the line, and on a
  line that prints several numbers (a table row) know that the check cannot tell its columns apart.
- Rendered, the span is invisible (Jupyter, Colab and GitHub show plain text), so the reader sees
  ``recall 0.354``; the source says where it comes from.
- Numbers that quote no output (equation numbers, parameters, constants such as log 2 ≈ 0.693)
  carry no span, and neither do numbers inside LaTeX, which cannot hold one: write a quoted number
  outside ``$...$``.

:func:`problems` lists every quote that no printed line supports, naming the notebook, the cell,
the quote and what the lines with its words print; a notebook without spans has none. The tests
run it over every notebook; from a checkout, ``python -m prefalign_lite.notebook.quotes
notebooks/*.ipynb`` does the same and exits with status 1 on a mismatch.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

QUOTE = re.compile(r'<span data-check="(?P<words>[^"]*)">(?P<text>[^<]*)</span>')
NUMBER = re.compile(r"(?P<sign>[-+−]?)(?P<digits>\d{1,3}(?:,\d{3})+|\d+)(?P<decimals>\.\d+)?(?P<exponent>e[-+]?\d+)?(?P<percent>%?)")


@dataclass(frozen=True)
class Quote:
    """One quoted number: the markdown cell it is in (index), the words naming its output line,
    the text shown, and the value with the half-width of its last digit."""

    cell: int
    words: tuple[str, ...]
    text: str

    @property
    def value(self) -> tuple[float, float]:
        """``(value, half of its last digit)``: ``"0.99"`` is ``(0.99, 0.005)``, ``"36%"`` is
        ``(0.36, 0.005)``. ``ValueError`` if the text holds no single number."""
        text = self.text.strip().lstrip("x×~≈ ").strip()
        numbers = list(NUMBER.finditer(text))
        if len(numbers) != 1 or numbers[0].group(0) != text:
            raise ValueError(f"cell {self.cell}: quote {self.text!r} must be one number, e.g. 0.354, -0.4, 36% or x208")
        return _parsed(numbers[0])


def _parsed(match: re.Match) -> tuple[float, float]:
    """A :data:`NUMBER` match as ``(value, half-width of its last digit)``; percentages become shares."""
    sign = -1.0 if match["sign"] in ("-", "−") else 1.0
    decimals = match["decimals"] or ""
    value = sign * float(match["digits"].replace(",", "") + decimals + (match["exponent"] or ""))
    places = len(decimals) - 1 if decimals else 0
    exponent = int(match["exponent"][1:]) if match["exponent"] else 0
    half = 0.5 * 10.0 ** (exponent - places)
    if match["percent"]:
        value, half = value / 100, half / 100
    return value, half


def quotes_in(nb: dict) -> list[Quote]:
    """Every quoted number of the notebook ``nb`` (its JSON as a dict), in order."""
    found = []
    for i, cell in enumerate(nb.get("cells", [])):
        if cell.get("cell_type") != "markdown":
            continue
        for match in QUOTE.finditer(_text(cell.get("source", ""))):
            words = tuple(part.strip() for part in match["words"].split(";") if part.strip())
            found.append(Quote(i, words, match["text"]))
    return found


def printed_lines(nb: dict) -> list[str]:
    """Every line that the notebook's code cells printed: stream output and the plain-text form
    of results and displays."""
    lines = []
    for cell in nb.get("cells", []):
        for output in cell.get("outputs", []) if cell.get("cell_type") == "code" else []:
            if output.get("output_type") == "stream":
                lines += _text(output.get("text", "")).splitlines()
            elif "text/plain" in output.get("data", {}):
                lines += _text(output["data"]["text/plain"]).splitlines()
    return lines


def _text(source) -> str:
    return "".join(source) if isinstance(source, list) else source


def _supports(line: str, value: float, half: float) -> bool:
    """Whether some number printed on ``line`` rounds to ``value`` at the quote's precision."""
    return any(abs(_parsed(m)[0] - value) <= half * (1 + 1e-9) for m in NUMBER.finditer(line))


def problems(nb: dict, name: str = "notebook") -> list[str]:
    """Every quote of ``nb`` that no printed line supports, one message each (empty when all
    quotes hold, and for a notebook without quotes)."""
    lines = printed_lines(nb)
    found = []
    for quote in quotes_in(nb):
        where = f"{name} cell {quote.cell}: quote {quote.text!r}"
        if not quote.words:
            found.append(f"{where} has an empty data-check; name the printed line it comes from")
            continue
        try:
            value, half = quote.value
        except ValueError as err:
            found.append(f"{name} {err}")
            continue
        named = [line for line in lines if all(word.casefold() in line.casefold() for word in quote.words)]
        label = "; ".join(quote.words)
        if not named:
            found.append(f"{where}: no printed line contains {label!r}")
        elif not any(_supports(line, value, half) for line in named):
            shown = " | ".join(line.strip()[:100] for line in named[:3])
            found.append(f"{where}: no number on the printed lines with {label!r} rounds to it; they print: {shown}")
    return found


def check_files(paths: list[Path]) -> list[str]:
    """:func:`problems` of each notebook file, all together."""
    found = []
    for path in paths:
        found += problems(json.loads(Path(path).read_text(encoding="utf-8")), Path(path).name)
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m prefalign_lite.notebook.quotes",
                                     description="check the numbers notebooks quote in their prose against their outputs")
    parser.add_argument("notebooks", nargs="+", type=Path)
    args = parser.parse_args(argv)
    found = check_files(args.notebooks)
    for line in found:
        print(line, file=sys.stderr)
    total = sum(len(quotes_in(json.loads(p.read_text(encoding="utf-8")))) for p in args.notebooks)
    print(f"{total - len(found)} of {total} quoted numbers match their outputs", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
