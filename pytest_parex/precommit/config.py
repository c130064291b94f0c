"""``.pre-commit-config.yaml`` -> frozen dataclasses, validated the way pre-commit validates it.

A mistake is a :class:`~pytest_parex.config.ConfigError` on one line that names the file, the
repository, the hook and the key (``.pre-commit-config.yaml: repo local, hook "x": missing
required key entry``). Keys pre-commit only warns about (unknown keys) become notes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pytest_parex.config import ConfigError, show
from pytest_parex.precommit import require

LOCAL, META = "local", "meta"
STAGES = (
    "commit-msg",
    "post-checkout",
    "post-commit",
    "post-merge",
    "post-rewrite",
    "pre-commit",
    "pre-merge-commit",
    "pre-push",
    "pre-rebase",
    "prepare-commit-msg",
    "manual",
)
LEGACY_STAGES = {"commit": "pre-commit", "merge-commit": "pre-merge-commit", "push": "pre-push"}
RUN_STAGE = "pre-commit"
"""The stage ``pre-commit run --all-files`` runs (its ``--hook-stage`` default)."""
LANGUAGES = (
    "conda",
    "coursier",
    "dart",
    "docker",
    "docker_image",
    "dotnet",
    "fail",
    "golang",
    "haskell",
    "julia",
    "lua",
    "node",
    "perl",
    "pygrep",
    "python",
    "r",
    "ruby",
    "rust",
    "swift",
    "unsupported",
    "unsupported_script",
)
LANGUAGE_ALIASES = {"system": "unsupported", "script": "unsupported_script"}
NO_ENVIRONMENT = frozenset({"fail", "pygrep", "unsupported", "unsupported_script", "docker_image"})
"""Languages that install nothing: their hooks run from the work tree (or the repository)."""
META_HOOKS = ("check-hooks-apply", "check-useless-excludes", "identity")

_STR, _LIST, _BOOL, _REGEX, _TAGS = "str", "list", "bool", "regex", "tags"
HOOK_KEYS: Mapping[str, tuple[str, Any]] = {
    # key: (type, manifest default)
    "id": (_STR, None),
    "name": (_STR, None),
    "entry": (_STR, None),
    "language": (_STR, None),
    "alias": (_STR, ""),
    "files": (_REGEX, ""),
    "exclude": (_REGEX, "^$"),
    "types": (_TAGS, ("file",)),
    "types_or": (_TAGS, ()),
    "exclude_types": (_TAGS, ()),
    "additional_dependencies": (_LIST, ()),
    "args": (_LIST, ()),
    "always_run": (_BOOL, False),
    "fail_fast": (_BOOL, False),
    "pass_filenames": (_BOOL, True),
    "description": (_STR, ""),
    "language_version": (_STR, "default"),
    "log_file": (_STR, ""),
    "minimum_pre_commit_version": (_STR, "0"),
    "require_serial": (_BOOL, False),
    "stages": (_LIST, ()),
    "verbose": (_BOOL, False),
}
REQUIRED = ("id", "name", "entry", "language")
TOP_KEYS = (
    "repos",
    "default_install_hook_types",
    "default_language_version",
    "default_stages",
    "files",
    "exclude",
    "fail_fast",
    "minimum_pre_commit_version",
    "ci",
)


@dataclass(frozen=True)
class Hook:
    """One hook of the config, merged with its manifest (pre-commit's ``Hook``)."""

    repo: str
    rev: str
    id: str
    name: str
    entry: str
    language: str
    alias: str = ""
    files: str = ""
    exclude: str = "^$"
    types: tuple[str, ...] = ("file",)
    types_or: tuple[str, ...] = ()
    exclude_types: tuple[str, ...] = ()
    additional_dependencies: tuple[str, ...] = ()
    args: tuple[str, ...] = ()
    always_run: bool = False
    fail_fast: bool = False
    pass_filenames: bool = True
    language_version: str = "default"
    require_serial: bool = False
    stages: tuple[str, ...] = ()
    verbose: bool = False
    position: int = 0
    """Its place in the config (0 first): pre-commit runs hooks in this order."""
    manifest: str = ""
    """Where the manifest came from: "config" (local, meta), "pre-commit's store", "prek's
    store", "built-in table"."""
    source_dir: str = ""
    """A cloned repository's directory in a store ("" for local and meta hooks)."""

    def definition(self) -> dict[str, Any]:
        """What decides the hook's verdict, as key data for the result cache."""
        return {
            "repo": self.repo,
            "rev": self.rev,
            "id": self.id,
            "entry": self.entry,
            "language": self.language,
            "args": list(self.args),
            "files": self.files,
            "exclude": self.exclude,
            "types": list(self.types),
            "types_or": list(self.types_or),
            "exclude_types": list(self.exclude_types),
            "additional_dependencies": list(self.additional_dependencies),
            "language_version": self.language_version,
            "pass_filenames": self.pass_filenames,
            "always_run": self.always_run,
            "require_serial": self.require_serial,
        }


@dataclass(frozen=True)
class Repo:
    repo: str
    rev: str
    hooks: tuple[Mapping[str, Any], ...]
    """The hooks as configured (validated keys only): a remote hook is merged with its
    manifest later (:mod:`pytest_parex.precommit.manifests`)."""


@dataclass(frozen=True)
class PreCommitConfig:
    path: Path
    repos: tuple[Repo, ...]
    files: str = ""
    exclude: str = "^$"
    fail_fast: bool = False
    default_stages: tuple[str, ...] = STAGES
    default_language_version: Mapping[str, str] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()


class _Where:
    """Names the place of a mistake: file, repository, hook."""

    def __init__(self, path: str) -> None:
        self.path = path

    def error(self, where: str, message: str) -> ConfigError:
        return ConfigError(f"{self.path}: {where}{': ' if where else ''}{message}")


def load(path: Path, shown: str = "") -> PreCommitConfig:
    """Read and validate ``path`` (``shown``: how to name it in messages)."""
    name = shown or str(path)
    require(name)
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{name}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{name}: is not valid UTF-8") from None
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        data = yaml.load(text, Loader=loader)
    except yaml.YAMLError as exc:
        message = " ".join(str(exc).split())
        raise ConfigError(f"{name}: invalid YAML: {message}") from None
    return parse(data, path, name)


def parse(data: object, path: Path, name: str) -> PreCommitConfig:
    """Validate a decoded config (``name``: how to call its file in messages)."""
    at = _Where(name)
    if isinstance(data, list):
        raise at.error("", "is a list; expected a mapping with repos: (the old list format)")
    if not isinstance(data, dict):
        raise at.error("", f"expected a mapping with repos:, got {show(data)}")
    warnings = [
        f"{name}: unexpected key {show(k)} at the top level (pre-commit ignores it too)"
        for k in data
        if k not in TOP_KEYS
    ]
    if "repos" not in data:
        raise at.error("", "missing required key repos")
    raw_repos = data["repos"]
    if not isinstance(raw_repos, list):
        raise at.error("", f"repos must be a list, got {show(raw_repos)}")
    files = _regex(at, "", "files", data.get("files", ""))
    exclude = _regex(at, "", "exclude", data.get("exclude", "^$"))
    fail_fast = _bool(at, "", "fail_fast", data.get("fail_fast", False))
    default_stages: tuple[str, ...] = STAGES
    if "default_stages" in data:
        default_stages = _stages(at, "", "default_stages", data["default_stages"])
    versions: dict[str, str] = {}
    raw_versions = data.get("default_language_version", {})
    if not isinstance(raw_versions, dict):
        raise at.error("", f"default_language_version must be a mapping, got {show(raw_versions)}")
    for lang, version in raw_versions.items():
        if lang not in LANGUAGES and lang not in LANGUAGE_ALIASES:
            raise at.error("default_language_version", f"unknown language {show(lang)}")
        versions[LANGUAGE_ALIASES.get(str(lang), str(lang))] = _str(
            at, "default_language_version", str(lang), version
        )
    repos: list[Repo] = []
    for i, raw in enumerate(raw_repos):
        repos.append(_repo(at, i, raw, warnings))
    return PreCommitConfig(
        path=path,
        repos=tuple(repos),
        files=files,
        exclude=exclude,
        fail_fast=fail_fast,
        default_stages=default_stages,
        default_language_version=versions,
        warnings=tuple(warnings),
    )


def _repo(at: _Where, i: int, raw: object, warnings: list[str]) -> Repo:
    if not isinstance(raw, dict):
        raise at.error(f"repos[{i}]", f"expected a mapping with repo: and hooks:, got {show(raw)}")
    if "repo" not in raw:
        raise at.error(f"repos[{i}]", "missing required key repo")
    repo = _str(at, f"repos[{i}]", "repo", raw["repo"])
    where = f"repo {repo}"
    remote = repo not in (LOCAL, META)
    rev = ""
    if remote:
        if "rev" not in raw:
            raise at.error(where, "missing required key rev")
        rev = _str(at, where, "rev", raw["rev"])
    elif "rev" in raw:
        raise at.error(where, f"rev does not apply to repo: {repo}")
    for key in raw:
        if key not in ("repo", "rev", "hooks"):
            warnings.append(
                f"{at.path}: {where}: unexpected key {show(key)} (pre-commit ignores it)"
            )
    if "hooks" not in raw:
        raise at.error(where, "missing required key hooks")
    hooks = raw["hooks"]
    if not isinstance(hooks, list):
        raise at.error(where, f"hooks must be a list, got {show(hooks)}")
    out = []
    for j, hook in enumerate(hooks):
        if not isinstance(hook, dict):
            raise at.error(f"{where}, hooks[{j}]", f"expected a mapping, got {show(hook)}")
        if "id" not in hook:
            raise at.error(f"{where}, hooks[{j}]", "missing required key id")
        hook_id = _str(at, f"{where}, hooks[{j}]", "id", hook["id"])
        hwhere = f"{where}, hook {show(hook_id)}"
        if repo == META:
            if hook_id not in META_HOOKS:
                raise at.error(hwhere, f"id must be one of {', '.join(META_HOOKS)}")
            if "entry" in hook:
                raise at.error(hwhere, "entry cannot be overridden")
        checked = validate_hook(at, hwhere, hook, warnings)
        if repo == LOCAL:
            for key in REQUIRED:
                if key not in checked:
                    raise at.error(hwhere, f"missing required key {key}")
        out.append(checked)
    return Repo(repo=repo, rev=rev, hooks=tuple(out))


def validate_hook(
    at: _Where | str, where: str, raw: Mapping[str, Any], warnings: list[str]
) -> dict[str, Any]:
    """The known keys of a hook mapping, validated; unknown keys become ``warnings``."""
    if isinstance(at, str):
        at = _Where(at)
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in HOOK_KEYS:
            warnings.append(
                f"{at.path}: {where}: unexpected key {show(key)} (pre-commit ignores it)"
            )
            continue
        kind = HOOK_KEYS[key][0]
        if kind == _STR:
            out[key] = _str(at, where, key, value)
        elif kind == _BOOL:
            out[key] = _bool(at, where, key, value)
        elif kind == _REGEX:
            out[key] = _regex(at, where, key, value)
        elif kind == _TAGS:
            out[key] = _tags(at, where, key, value)
        elif key == "stages":
            out[key] = _stages(at, where, key, value)
        else:
            out[key] = _strings(at, where, key, value)
    if "language" in out:
        language = LANGUAGE_ALIASES.get(out["language"], out["language"])
        if language not in LANGUAGES:
            raise at.error(
                where,
                f"language must be one of {', '.join(LANGUAGES)} (or system, script), "
                f"got {show(out['language'])}",
            )
        out["language"] = language
    return out


def merge(
    repo: Repo,
    manifest_hook: Mapping[str, Any] | None,
    configured: Mapping[str, Any],
    config: PreCommitConfig,
    position: int,
    *,
    manifest: str,
    source_dir: str = "",
) -> Hook:
    """A hook: the manifest's defaults, the manifest, then the config's keys (pre-commit's
    ``_hook``), with the language version and stages defaulted from the top level."""
    values: dict[str, Any] = {key: default for key, (_, default) in HOOK_KEYS.items()}
    if repo.repo == META:
        values.update(_meta_defaults(str(configured["id"])))
    if manifest_hook is not None:
        values.update(manifest_hook)
    values.update(configured)
    if values["language_version"] == "default":
        values["language_version"] = config.default_language_version.get(
            values["language"], "default"
        )
    stages = tuple(values["stages"]) or config.default_stages
    return Hook(
        repo=repo.repo,
        rev=repo.rev,
        id=values["id"],
        name=values["name"],
        entry=values["entry"],
        language=values["language"],
        alias=values["alias"],
        files=values["files"],
        exclude=values["exclude"],
        types=tuple(values["types"]),
        types_or=tuple(values["types_or"]),
        exclude_types=tuple(values["exclude_types"]),
        additional_dependencies=tuple(values["additional_dependencies"]),
        args=tuple(values["args"]),
        always_run=values["always_run"],
        fail_fast=values["fail_fast"],
        pass_filenames=values["pass_filenames"],
        language_version=values["language_version"],
        require_serial=values["require_serial"],
        stages=stages,
        verbose=values["verbose"],
        position=position,
        manifest=manifest,
        source_dir=source_dir,
    )


def _meta_defaults(hook_id: str) -> dict[str, Any]:
    files = "^" + re.escape(".pre-commit-config.yaml") + "$"
    defaults: dict[str, dict[str, Any]] = {
        "check-hooks-apply": {
            "name": "Check hooks apply to the repository",
            "files": files,
            "entry": "check-hooks-apply",
            "language": "unsupported",
        },
        "check-useless-excludes": {
            "name": "Check for useless excludes",
            "files": files,
            "entry": "check-useless-excludes",
            "language": "unsupported",
        },
        "identity": {
            "name": "identity",
            "verbose": True,
            "entry": "identity",
            "language": "unsupported",
        },
    }
    return defaults[hook_id]


def manifest_hooks(data: object, name: str) -> dict[str, dict[str, Any]]:
    """A ``.pre-commit-hooks.yaml`` (decoded) -> its hooks by id, validated."""
    if not isinstance(data, list):
        raise ConfigError(f"{name}: expected a list of hooks, got {show(data)}")
    out: dict[str, dict[str, Any]] = {}
    warnings: list[str] = []
    for j, hook in enumerate(data):
        if not isinstance(hook, dict) or "id" not in hook:
            raise ConfigError(f"{name}: hooks[{j}]: expected a mapping with an id")
        checked = validate_hook(name, f"hook {show(hook['id'])}", hook, warnings)
        for key in REQUIRED:
            if key not in checked:
                raise ConfigError(f"{name}: hook {show(hook['id'])}: missing required key {key}")
        out[checked["id"]] = checked
    return out


def with_stage_default(hook: Hook) -> Hook:
    return hook if hook.stages else replace(hook, stages=STAGES)


# ------------------------------------------------------------------------------ values


def _str(at: _Where, where: str, key: str, value: object) -> str:
    if not isinstance(value, str):
        raise at.error(where, f"{key} must be a string, got {show(value)}")
    return value


def _bool(at: _Where, where: str, key: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise at.error(where, f"{key} must be true or false, got {show(value)}")
    return value


def _strings(at: _Where, where: str, key: str, value: object) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise at.error(where, f"{key} must be a list of strings, got {show(value)}")
    return tuple(value)


def _regex(at: _Where, where: str, key: str, value: object) -> str:
    text = _str(at, where, key, value)
    try:
        re.compile(text)
    except re.error as exc:
        raise at.error(where, f"{key} {show(text)} is not a valid regex: {exc}") from None
    return text


def _tags(at: _Where, where: str, key: str, value: object) -> tuple[str, ...]:
    from identify.identify import ALL_TAGS

    tags = _strings(at, where, key, value)
    for tag in tags:
        if tag not in ALL_TAGS:
            raise at.error(
                where,
                f"{key}: type tag {show(tag)} is not recognized by identify "
                "(a typo, or an identify older than the config)",
            )
    return tags


def _stages(at: _Where, where: str, key: str, value: object) -> tuple[str, ...]:
    stages = [LEGACY_STAGES.get(s, s) for s in _strings(at, where, key, value)]
    for stage in stages:
        if stage not in STAGES:
            raise at.error(
                where, f"{key}: unknown stage {show(stage)}; expected one of {', '.join(STAGES)}"
            )
    return tuple(stages)


def selected_by(hook: Hook, names: Sequence[str]) -> bool:
    """Whether ``SKIP``-style names select ``hook`` (its id or its alias)."""
    return hook.id in names or bool(hook.alias and hook.alias in names)
