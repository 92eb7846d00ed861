"""Rewrite the config reference section of README.md from mszoo/config.py (so it cannot drift)."""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from mszoo.config import reference_markdown  # noqa: E402

BEGIN, END = "<!-- config-reference:begin -->", "<!-- config-reference:end -->"


def main():
    path = os.path.join(ROOT, "README.md")
    text = open(path, encoding="utf-8").read()
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    new = f"{head}{BEGIN}\n{reference_markdown()}\n{END}{tail}"
    if new != text:
        with open(path, "w", encoding="utf-8") as f:
            f.write(new)
        print("README.md config reference updated")
    else:
        print("README.md config reference is up to date")


if __name__ == "__main__":
    main()
