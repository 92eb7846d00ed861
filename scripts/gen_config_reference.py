"""Rewrite the config reference section of README.md from the key table, mszoo/config/keys.py (so it cannot drift)."""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from mszoo.config import ALIASES, IGNORED, KEYS, VALUE_MAPS  # noqa: E402

BEGIN, END = "<!-- config-reference:begin -->", "<!-- config-reference:end -->"


def reference_markdown():
    """The config reference table (README section), generated so it cannot drift from KEYS."""
    lines = ["| key | default | type | help |", "|---|---|---|---|"]
    for key in KEYS:
        choices = f" One of: {', '.join(map(str, key.choices))}." if key.choices else ""
        default = "`" + repr(key.default).replace("|", "\\|") + "`"
        lines.append(f"| `{key.name}` | {default} | {key.type} | {key.help}.{choices} |")
    lines.append("")
    lines.append("Model-zoo readme aliases: " + ", ".join(f"`{a}` -> `{t}`" for a, t in sorted(ALIASES.items())) + ".")
    lines.append("Model-zoo readme switches: " + ", ".join(f"`{a}: true` -> `{t}: {m[True]}`"
                                               for a, (t, m) in sorted(VALUE_MAPS.items())) + ".")
    lines.append("`--config_path` and `--tnt_config` are `--config`. `train_num_samples`/`val_num_samples` "
                 "-1 mean all; a relative `train_dir`/`val_dir` is under `data_url`.")
    lines.append("")
    lines.append("Model-zoo readme keys accepted with no effect here (a note at start says so):")
    lines.append("")
    for name in sorted(IGNORED):
        why = IGNORED[name]
        text = why if isinstance(why, str) else why.summary
        lines.append(f"- `{name}`: {text}.")
    return "\n".join(lines)


def main():
    path = os.path.join(ROOT, "README.md")
    with open(path, encoding="utf-8") as f:
        text = f.read()
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
