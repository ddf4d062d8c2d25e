"""Loaders shared by the deploy/ tests: the compose file, the k8s manifests and the typostream CLI."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

yaml = pytest.importorskip("yaml")

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
COMPOSE_ENV_EXAMPLE = DEPLOY / ".env.example"
K8S_SECRETS_EXAMPLE = K8S / "secrets.env.example"
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "Job", "CronJob"}

_INTERPOLATION = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\})"
)


def load_all(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def read_env_file(path: Path) -> dict[str, str]:
    """``KEY=value`` lines (``#`` comments), as compose's .env and kustomize's ``envs`` read them."""
    out: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            out[key.strip()] = value.strip()
    return out


class MissingVariable(Exception):
    pass


def interpolate(value: Any, env: Mapping[str, str]) -> Any:
    """Compose's ``${VAR}``, ``${VAR:-default}``, ``${VAR-default}``, ``${VAR:?error}``, ``$$`` (spec:
    "Interpolation"), applied to every string of a parsed compose file."""
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def one(match: re.Match[str]) -> str:
        if match["escaped"]:
            return "$"
        name, op, arg = match["name"], match["op"], match["arg"]
        present = name in env
        unset_or_empty = not env.get(name)
        if op in (":?", "?") and (unset_or_empty if op == ":?" else not present):
            raise MissingVariable(f"{name}: {arg}")
        if op in (":-", "-") and (unset_or_empty if op == ":-" else not present):
            return str(arg)
        return env.get(name, "")

    return _INTERPOLATION.sub(one, value)


def interpolated_names(value: Any) -> Iterator[tuple[str, str | None]]:
    """Every ``${VAR...}`` in a parsed compose file: (name, operator)."""
    if isinstance(value, dict):
        for v in value.values():
            yield from interpolated_names(v)
    elif isinstance(value, list):
        for v in value:
            yield from interpolated_names(v)
    elif isinstance(value, str):
        for match in _INTERPOLATION.finditer(value):
            if match["name"]:
                yield match["name"], match["op"]


def env_dict(env: Any) -> dict[str, str]:
    if isinstance(env, list):
        return dict(str(item).split("=", 1) for item in env)
    return {str(k): str(v) for k, v in (env or {}).items()}


def pod_spec(doc: dict[str, Any]) -> dict[str, Any]:
    if doc["kind"] == "CronJob":
        return doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return doc["spec"]["template"]["spec"]


def pod_metadata(doc: dict[str, Any]) -> dict[str, Any]:
    if doc["kind"] == "CronJob":
        return doc["spec"]["jobTemplate"]["spec"]["template"].get("metadata", {})
    return doc["spec"]["template"].get("metadata", {})


def containers(doc: dict[str, Any], init: bool = True) -> list[dict[str, Any]]:
    spec = pod_spec(doc)
    return [*(spec.get("initContainers", []) if init else []), *spec["containers"]]


def command_of(container: dict[str, Any]) -> list[str]:
    return [str(a) for a in (container.get("command") or []) + (container.get("args") or [])]


def option(args: list[str], name: str) -> str | None:
    return args[args.index(name) + 1] if name in args else None


@pytest.fixture(scope="session")
def compose_example_env() -> dict[str, str]:
    """deploy/.env.example with placeholder values for what a user must fill in."""
    filled: dict[str, str] = {}
    for key, value in read_env_file(COMPOSE_ENV_EXAMPLE).items():
        if value:
            filled[key] = value
        elif "URL" in key:
            filled[key] = f"https://alerts.example/{key.lower()}"
        else:
            filled[key] = "0123abcd" * 4  # what `openssl rand -hex 16` looks like
    return filled


def parse_cli(args: list[str]) -> Any:
    """Parse ``typostream ...`` with the real CLI without running it (unknown options, bad values raise)."""
    import typer

    from typostream.streams.cli.app import cli

    assert args[0] == "typostream", args
    cmd: Any = typer.main.get_command(cli)
    ctx: Any = None
    name, rest = "typostream", list(args[1:])
    while True:
        ctx = cmd.make_context(name, rest, parent=ctx)
        if not hasattr(cmd, "resolve_command"):
            return ctx
        protected = getattr(ctx, "_protected_args", None)
        if protected is None:
            protected = ctx.protected_args
        name, cmd, rest = cmd.resolve_command(ctx, [*protected, *ctx.args])
