"""Build a model from the user's own code: ``factory:path/to/model.py:make`` or ``factory:module:make``.

Importing a user's file or module runs their code, with the auditor's permissions. That is what a
``factory:`` source asks for, exactly as ``python model.py`` would; audit only code you trust.

* ``factory:path/to/model.py:make`` imports that file (its folder is on ``sys.path`` while it is
  imported and while ``make()`` runs, so ``from layers import X`` beside it works);
* ``factory:pkg.module:make`` imports a module from the Python path and, failing that, from the
  current folder (as ``python -m`` would), so ``PYTHONPATH=.`` is not needed.
"""
from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.util
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

from auditor.core.errors import ModelLoadError

FORMS = "factory:path/to/model.py:function or factory:module:function"


@contextlib.contextmanager
def on_sys_path(folder: Path | None) -> Iterator[None]:
    """``folder`` first on ``sys.path`` inside the block (removed afterwards if it was not there)."""
    entry = str(folder) if folder is not None else None
    added = entry is not None and entry not in sys.path
    if added:
        sys.path.insert(0, entry)  # type: ignore[arg-type]
        importlib.invalidate_caches()
    try:
        yield
    finally:
        if added:
            with contextlib.suppress(ValueError):
                sys.path.remove(entry)  # type: ignore[arg-type]


def split_target(target: str) -> tuple[str, str]:
    """``(module or file, function)``; the function is after the last colon."""
    where, sep, function = target.rpartition(":")
    if not sep or not where or not function or not function.isidentifier():
        raise ModelLoadError(f"a factory source is {FORMS}, got factory:{target}")
    return where, function


def is_file_target(where: str) -> bool:
    return where.endswith(".py") or "/" in where or "\\" in where


def _import_file(where: str) -> tuple[ModuleType, Path]:
    path = Path(where)
    if not path.is_file():
        raise ModelLoadError(
            f"factory file {where} not found (looked at {path.resolve()}; relative paths are read from the current folder "
            f"{Path.cwd()})" + ("" if where.endswith(".py") else "; a file source ends in .py")
        )
    name = "auditor_factory_" + re.sub(r"\W", "_", path.stem)
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ModelLoadError(f"cannot import {where} as a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and pickling look the module up while it executes
    try:
        with on_sys_path(path.resolve().parent):
            spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(name, None)
        raise ModelLoadError(f"importing factory file {where} failed: {type(exc).__name__}: {exc}") from exc
    return module, path.resolve().parent


def _missing_is_target(exc: ModuleNotFoundError, where: str) -> bool:
    return exc.name is not None and (where == exc.name or where.startswith(exc.name + "."))


def _import_module(where: str) -> tuple[ModuleType, Path | None]:
    try:
        return importlib.import_module(where), None
    except ModuleNotFoundError as exc:
        if not _missing_is_target(exc, where):
            raise ModelLoadError(f"importing factory module {where!r} failed: {exc} (a dependency it imports is missing)") from exc
    except Exception as exc:
        raise ModelLoadError(f"importing factory module {where!r} failed: {type(exc).__name__}: {exc}") from exc
    cwd = Path.cwd()
    try:
        with on_sys_path(cwd):
            return importlib.import_module(where), cwd
    except ModuleNotFoundError as exc:
        if _missing_is_target(exc, where):
            guess = where.replace(".", "/") + ".py"
            raise ModelLoadError(
                f"cannot import factory module {where!r}: {exc}; looked on the Python path and in the current folder {cwd} "
                f"(no {guess} there). Pass the file instead: factory:path/to/{guess.rsplit('/', 1)[-1]}:function"
            ) from exc
        raise ModelLoadError(f"importing factory module {where!r} failed: {exc} (a dependency it imports is missing)") from exc
    except Exception as exc:
        raise ModelLoadError(f"importing factory module {where!r} failed: {type(exc).__name__}: {exc}") from exc


def build(target: str) -> tuple[object, dict[str, str]]:
    """Import the factory named by ``target`` (the text after ``factory:``), call it, and return what it built
    with provenance (the file's path and sha256)."""
    where, function = split_target(target)
    module, folder = _import_file(where) if is_file_target(where) else _import_module(where)
    factory: Callable[[], object] | None = getattr(module, function, None)
    if not callable(factory):
        found = sorted(n for n, v in vars(module).items() if callable(v) and not n.startswith("_")
                       and getattr(v, "__module__", None) == module.__name__)
        what = "is not callable" if factory is not None else "does not exist"
        raise ModelLoadError(f"factory {where}:{function}: {function!r} {what} in {where}; functions and classes defined there: {found}")
    try:
        with on_sys_path(folder):
            net = factory()
    except Exception as exc:
        raise ModelLoadError(f"factory {where}:{function}() raised {type(exc).__name__}: {exc}") from exc
    provenance: dict[str, str] = {}
    file = getattr(module, "__file__", None)
    if file and Path(file).is_file():
        provenance = {"factory_file": str(file), "factory_sha256": hashlib.sha256(Path(file).read_bytes()).hexdigest()}
    return net, provenance
