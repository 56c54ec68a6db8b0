"""Plain text -> LaTeX, shared by both table renderers."""

from __future__ import annotations

_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
                  "<": r"$<$", ">": r"$>$"}


_LATEX_UNICODE = {"±": r"$\pm$", "†": r"$^\dagger$", "Δ": r"$\Delta$", "§": r"\S{}", "α": r"$\alpha$",
                  "λ": r"$\lambda$", "ε": r"$\varepsilon$", "–": "--", "—": "---", "·": r"$\cdot$",
                  "≥": r"$\geq$", "≤": r"$\leq$", "×": r"$\times$", "→": r"$\rightarrow$", "’": "'"}


def latex_escape(text: str) -> str:
    """Plain text -> LaTeX (specials escaped, the few non-ASCII symbols the tables use spelled out)."""
    out = "".join(_LATEX_SPECIAL.get(ch, ch) for ch in str(text))
    out = out.replace("--", "-{}-")  # a command-line flag stays two hyphens (LaTeX would set an en dash)
    for k, v in _LATEX_UNICODE.items():
        out = out.replace(k, v)
    return out
