"""Resolving a run's configuration: the documented defaults, then a YAML file (or a shipped recipe named by
``--config``), then command-line flags (``--base_lr 0.001`` and ``--base-lr 0.001`` both work)."""
import argparse
import os

from mszoo.recipes import SEED_RECIPES, close_recipes, recipe_path, seed_recipe

from .coerce import coerce
from .compat import CONFIG_FLAGS, _seed_names, canonical_key
from .files import load_yaml
from .keys import KEY_MAP, KEYS, Config, ConfigError
from .merge import apply_mapping
from .seed_recipes import seed_recipe_note
from .validate import keep_bn_fp32_note


def _flag_help(key):
    return f"{key.help} (default: {key.default!r})"


def build_parser(prog, description, extra=(), positional=()):
    """An argparse parser with ``--config``, one flag per key (both spellings) and script extras."""
    usage = f"{prog} [--config FILE] " + " ".join(f"[--{a.name} VALUE]" for a in extra) + " [--KEY VALUE ...]"
    parser = argparse.ArgumentParser(prog=prog, description=description, allow_abbrev=False, usage=usage)
    parser.add_argument(*CONFIG_FLAGS, dest="config", action="append", default=None,
                        help="YAML recipe (keys below); CLI flags override it (--config_path and --tnt_config, the "
                             "model-zoo readmes' spellings, are the same flag)")
    for arg in positional:
        parser.add_argument(arg.name, help=arg.help)
    script_group = parser.add_argument_group(f"{prog} options")
    for arg in extra:
        flags = [f"--{arg.name}"] + ([f"--{arg.name.replace('_', '-')}"] if "_" in arg.name else [])
        if arg.type == "flag":
            script_group.add_argument(*flags, dest=arg.name, action="store_true", help=arg.help)
        else:
            script_group.add_argument(*flags, dest=arg.name, default=None, metavar="VALUE",
                                      help=f"{arg.help} (default: {arg.default!r})")
    groups = {}
    for key in KEYS:
        group = groups.setdefault(key.group, parser.add_argument_group(f"config keys: {key.group}"))
        flags = [f"--{key.name}"] + ([f"--{key.name.replace('_', '-')}"] if "_" in key.name else [])
        metavar = "{" + ",".join(map(str, key.choices)) + "}" if key.choices else key.type.upper()
        group.add_argument(*flags, dest=f"cfg__{key.name}", default=None, metavar=metavar, help=_flag_help(key))
    # The model-zoo readmes' other keys work on the command line too (hidden from --help); a switch without a value
    # (``--dump_graph``) means true.
    extra_names = {a.name for a in extra}
    for alias in _seed_names():
        if alias in KEY_MAP or alias in extra_names:
            continue
        flags = [f"--{alias}"] + ([f"--{alias.replace('_', '-')}"] if "_" in alias else [])
        parser.add_argument(*flags, dest=f"alias__{alias}", default=None, nargs="?", const="true",
                            help=argparse.SUPPRESS)
    parser.add_argument("--no-progress", "--no_progress", dest="cfg_no_progress", action="store_true",
                        help="same as --progress false")
    return parser


def parse_config(argv=None, prog="train.py", description="", extra=(), positional=(), defaults=None):
    """Resolve the configuration: defaults -> ``defaults`` (script) -> YAML -> CLI.

    Returns ``(cfg, args)``: ``cfg`` is a ``Config`` of every key, ``args`` holds the script extras.
    Raises ``ConfigError`` for user errors; ``--help`` exits through argparse as usual.
    """
    parser = build_parser(prog, description, extra, positional)
    ns = _parse_args(parser, argv)
    cfg = _resolve_keys(ns, prog, defaults)
    return cfg, _script_args(ns, extra, positional)


def _parse_args(parser, argv):
    """The parsed namespace; a bad or unknown argument is a ``ConfigError`` (``--help`` exits as usual)."""
    try:
        ns, unknown = parser.parse_known_args(argv)
    except SystemExit as exc:
        if exc.code == 0:
            raise
        raise ConfigError("command line: invalid arguments (see --help)") from None
    if unknown:
        flag = unknown[0]
        name = flag.lstrip("-").split("=")[0]
        if flag.startswith("-"):
            canonical_key(name, "command line")  # raises with a did-you-mean
        raise ConfigError(f"command line: unexpected argument {flag!r}")
    return ns


def _resolve_keys(ns, prog, defaults):
    """The ``Config`` of every key: documented defaults -> script ``defaults`` -> YAML -> command line."""
    cfg = Config.defaults()
    notes = cfg.notes
    config_file = _one_config_file(ns.config, notes)
    if defaults:
        apply_mapping(cfg, defaults, f"{prog} defaults", notes)
    if config_file:
        apply_mapping(cfg, load_yaml(config_file), config_file, notes)
    apply_mapping(cfg, _cli_values(ns), "command line", notes)
    object.__setattr__(cfg, "config_file", config_file)
    note = keep_bn_fp32_note(cfg)
    if note:
        notes.append(note)
    return cfg


def _script_args(ns, extra, positional):
    """The script's extras and positionals as a ``Config``, each coerced and checked against its choices."""
    args = Config()
    for arg in extra:
        raw = getattr(ns, arg.name)
        if arg.type == "flag":
            args[arg.name] = bool(raw)
            continue
        value = arg.default if raw is None else coerce(arg.name, arg.type, raw, "command line", arg.nullable)
        if value is not None and arg.choices and value not in arg.choices:
            raise ConfigError(f"{arg.name}: {value!r} is not one of {', '.join(arg.choices)} (from command line)")
        args[arg.name] = value
    for arg in positional:
        args[arg.name] = getattr(ns, arg.name)
    return args


def _cli_values(ns):
    """The keys given on the command line (their own flags and the model-zoo readmes' spellings), as ``{key: text}``."""
    cli = {}
    for key in KEYS:
        value = getattr(ns, f"cfg__{key.name}")
        if value is not None:
            cli[key.name] = value
    for alias in _seed_names():
        value = getattr(ns, f"alias__{alias}", None)
        if value is not None:
            cli[alias] = value
    if ns.cfg_no_progress:
        cli["progress"] = "false"
    return cli


def _one_config_file(given, notes):
    """The config file from ``--config`` and its model-zoo readme spellings; naming two different files is an error."""
    files = list(dict.fromkeys(given or []))
    if len(files) > 1:
        raise ConfigError(f"config: two config files given ({', '.join(files)}); --config, --config_path and "
                          "--tnt_config are the same flag (from command line)")
    return find_config(files[0], notes) if files else None


def find_config(given, notes=None):
    """``given`` when it is a file, else the shipped recipe it names (``twins/svt_small``, ``quickstart``), else
    our recipe of the model-zoo readme recipe it names (``configs/svt_s.yaml``; a note naming both files and where the
    hyper-parameters differ goes to ``notes``); anything else is one ``ConfigError`` listing close recipe names."""
    if os.path.isfile(given):
        return given
    shipped = recipe_path(given)
    if shipped:
        return shipped
    seed = seed_recipe(given)
    if seed:
        if notes is not None:
            notes.append(seed_recipe_note(given, *seed))
        return seed[1]
    near = close_recipes(given)
    hint = f" (nor a shipped recipe; close recipe names: {', '.join(near)})" if near else ""
    named = SEED_RECIPES.get(os.path.basename(given.replace("\\", "/")))
    if named:
        hint = f" (a model-zoo readme recipe's name: ours of that model is {recipe_path(named[1])})"
    raise ConfigError(f"config: file not found: {given}{hint}")


def parse_script_args(parser, argv=None, known=False):
    """``parser.parse_args`` for scripts with their own argparse parser: a usage error becomes one
    ``ConfigError`` line (exit code 2 through ``mszoo.cli.run``); ``--help`` still exits normally."""
    try:
        return parser.parse_known_args(argv) if known else parser.parse_args(argv)
    except SystemExit as exc:
        if exc.code == 0:
            raise
        raise ConfigError("command line: invalid arguments (see --help)") from None
