"""Published weights by name: ``pretrained=True`` / ``"timm"``, a Hub id, a URL or a local PyTorch file.

``pretrained_checkpoint(name, spec)`` turns any of these into a local MindSpore ``.ckpt`` (with its model
record), fetching and converting once:

- ``True`` / ``"timm"`` / ``"true"``: the variant's published weights, named by its default cfg
  (``hf_hub_id`` for timm's Hugging Face Hub repositories, ``url`` for the official T2T-ViT releases);
- ``"hf-hub:ORG/REPO[@REVISION]"``: ``model.safetensors`` of a Hub repository, through ``huggingface_hub``
  and its own cache (``HF_HOME``/``HF_HUB_CACHE``; ``HF_HUB_OFFLINE=1`` never touches the network);
- ``http(s)://`` or ``file://`` URLs, optionally ending in ``#sha256=HEX``: downloaded once into
  ``$MSZOO_CACHE/downloads`` (default ``~/.cache/mszoo``) with a progress bar, through a temporary file
  renamed when complete and verified, so an interrupted download never leaves a file that looks whole;
- a local ``.pth``/``.pt``/``.bin``/``.pth.tar``/``.safetensors`` file; a ``.ckpt`` is used as it is.

Conversions (``mszoo/models/convert.py``, the same as ``convert_from_pt.py``) are kept in
``$MSZOO_CACHE/converted`` under the source file's SHA-256, so a changed file is converted again.
Offline (``MSZOO_OFFLINE=1`` or ``HF_HUB_OFFLINE=1``, or no network) a cached file is used; a missing one
is one error line saying what to download and where to put it.
"""
import hashlib
import os
import urllib.error
import urllib.parse
import urllib.request

from mszoo.constants import PUBLISHED_WEIGHTS_NAMES, REMOTE_WEIGHTS_PREFIXES, cache_dir
from mszoo.extras import require
from mszoo.fileio import sha256_file, written_as

from .convert import ConversionError, convert_file
from .loading import CheckpointError
from .registry import get_default_cfg

HUB_FILENAME = "model.safetensors"
TORCH_SUFFIXES = (".pth", ".pt", ".bin", ".pth.tar", ".tar", ".safetensors")


class PretrainedError(CheckpointError):
    """Published weights that cannot be had (unknown, offline, corrupt); the message says what to do."""


def offline():
    return any(os.environ.get(v, "") not in ("", "0") for v in ("MSZOO_OFFLINE", "HF_HUB_OFFLINE"))


def published_source(name):
    """``("hub", repo_id)`` or ``("url", url)`` of variant ``name``'s published weights, or None."""
    cfg = get_default_cfg(name)
    if cfg.get("hf_hub_id"):
        return "hub", cfg["hf_hub_id"]
    if cfg.get("url"):
        return "url", cfg["url"] + (f"#sha256={cfg['sha256']}" if cfg.get("sha256") else "")
    return None


def pretrained_checkpoint(name, spec):
    """A local MindSpore ``.ckpt`` of variant ``name`` for ``spec`` (module docstring)."""
    if isinstance(spec, str) and spec.endswith(".ckpt") and not spec.startswith(REMOTE_WEIGHTS_PREFIXES):
        return spec
    if spec is True or (isinstance(spec, str) and spec.lower() in PUBLISHED_WEIGHTS_NAMES):
        source = published_source(name)
        if source is None:
            raise PretrainedError(f"{name} has no published weights (list_models(pretrained=True) lists those "
                                  "that have); pass a checkpoint file")
        kind, where = source
    elif spec.startswith("hf-hub:"):
        kind, where = "hub", spec[len("hf-hub:"):]
    elif spec.startswith(REMOTE_WEIGHTS_PREFIXES):
        kind, where = "url", spec
    else:
        kind, where = "file", spec
    path = {"hub": _hub_file, "url": _download, "file": _local_file}[kind](where)
    return _converted(name, path)


def _local_file(path):
    if not os.path.isfile(path):
        raise PretrainedError(f"pretrained weights not found: {path}")
    if not path.endswith(TORCH_SUFFIXES):
        raise PretrainedError(f"{path}: pretrained weights must be a .ckpt, .pth, .pt, .bin, .pth.tar or "
                              ".safetensors file")
    return path


def _hub_file(repo):
    huggingface_hub = require("huggingface_hub", "Hub weights")
    LocalEntryNotFoundError = require("huggingface_hub.errors", "Hub weights").LocalEntryNotFoundError
    repo, _, revision = repo.partition("@")
    url = f"https://huggingface.co/{repo}/resolve/{revision or 'main'}/{HUB_FILENAME}"
    try:
        return huggingface_hub.hf_hub_download(repo, HUB_FILENAME, revision=revision or None,
                                               local_files_only=offline())
    except LocalEntryNotFoundError:
        raise PretrainedError(f"{repo}: {HUB_FILENAME} is not in the Hugging Face cache and the Hub cannot be "
                              f"reached; download {url} and pass it with --pretrained FILE") from None
    except Exception as exc:  # repository or file not found, HTTP errors: one line
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise PretrainedError(f"{repo}: cannot get {HUB_FILENAME} from the Hub: {first}") from None


def _download(spec):
    """``spec`` (URL, optional ``#sha256=HEX``) as a verified file in the download cache."""
    url, _, fragment = spec.partition("#")
    expected = fragment[len("sha256="):].lower() if fragment.startswith("sha256=") else None
    target = download_path(url)
    name = os.path.basename(target)
    if not os.path.isfile(target):
        if offline():
            raise PretrainedError(f"{name} is not in the cache and downloads are off (offline): download {url} "
                                  f"to {target}")
        _fetch(url, target, expected)
    elif expected and (actual := sha256_file(target)) != expected:
        raise PretrainedError(f"{target}: checksum mismatch (sha256 {actual}, expected {expected}); "
                              "delete it to download again")
    return target


def download_path(url):
    """Where ``url`` is cached: ``downloads/<hash of the URL>/<its file name>``. Two URLs that end in the same
    file name (``.../v1/model.pth``, ``.../v2/model.pth``) never stand for each other."""
    name = os.path.basename(urllib.parse.urlparse(url).path) or "weights"
    return os.path.join(cache_dir(), "downloads", hashlib.sha256(url.encode()).hexdigest()[:16], name)


def _fetch(url, target, expected):
    from tqdm import tqdm

    os.makedirs(os.path.dirname(target), exist_ok=True)
    with written_as(target) as tmp:
        try:
            response = urllib.request.urlopen(url, timeout=60)  # noqa: S310 (the user's URL)
        except (urllib.error.URLError, OSError) as exc:
            raise PretrainedError(f"cannot download {url} ({getattr(exc, 'reason', exc)}): download it to "
                                  f"{target} or pass the file with --pretrained FILE") from None
        total = int(response.headers.get("Content-Length") or 0) or None
        digest, got = hashlib.sha256(), 0
        with response, open(tmp, "wb") as f, tqdm(total=total, unit="B", unit_scale=True,
                                                   desc=os.path.basename(target), leave=False) as bar:
            for chunk in iter(lambda: response.read(1 << 20), b""):
                f.write(chunk)
                digest.update(chunk)
                got += len(chunk)
                bar.update(len(chunk))
        if total is not None and got != total:
            raise PretrainedError(f"download of {url} ended after {got} of {total} bytes; try again")
        if expected and digest.hexdigest() != expected:
            raise PretrainedError(f"{url}: checksum mismatch (sha256 {digest.hexdigest()}, expected {expected})")


def _converted(name, path):
    """The MindSpore conversion of PyTorch-side ``path`` for ``name`` (converted once, then cached)."""
    target = os.path.join(cache_dir(), "converted", f"{name}-{sha256_file(path)[:16]}.ckpt")
    if not os.path.isfile(target):
        try:
            convert_file(name, path, target)
        except ConversionError as exc:
            raise PretrainedError(f"{name}: {exc}") from None
    return target
