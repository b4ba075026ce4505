"""docker-compose.yml, .env.example, the Dockerfile and docs/deploy.md, checked without Docker.

The compose file is validated against the official Compose Specification schema (shipped as
tests/deploy/compose-spec.json, from github.com/compose-spec/compose-spec, schema/), every
command our image runs is parsed by the real `actlab` CLI, and every ACTLAB_* variable must
be a field of core.settings.Settings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import jsonschema
import pytest
import typer.main

from actlab.cli import server_app
from core.settings import Settings
from tests.deploy import compose as c
from tests.support import ROOT

ACTLAB_SERVICES = ["migrate", "api", "worker", "worker-gpu1", "worker-cpu"]
# Third-party images must be pinned to a version, not a floating tag.
PINNED = re.compile(r"^[\w./-]+:(?!latest$)v?\d+(\.\d+)+[\w.-]*$")


@dataclass
class Parsed:
    verbs: list[str]  # ["worker"], ["db", "upgrade"]
    params: dict[str, Any]


def _parse(argv: list[str]) -> Parsed:
    """`actlab ARGV` parsed (not run) by the server's real commands, as `actlab` finds them."""
    command: Any = typer.main.get_command(server_app())  # typer ships its own click
    verbs: list[str] = []
    context: Any = None
    args = list(argv)
    try:
        while True:
            context = command.make_context(command.name or "actlab", args, parent=context)
            if not hasattr(command, "resolve_command"):  # a verb, not a group of them
                return Parsed(verbs, context.params)
            name, found, args = command.resolve_command(
                context, [*context._protected_args, *context.args]
            )
            assert name is not None and found is not None
            verbs.append(name)
            command = found
    except typer.TyperException as exc:
        raise AssertionError(f"`actlab {' '.join(argv)}` is not a valid actlab command") from exc


def _duration_s(text: str) -> float:
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", text)
    assert parts and "".join(n + u for n, u in parts) == text, f"bad duration {text!r}"
    return sum(float(n) * units[u] for n, u in parts)


# (a) the Compose Specification -------------------------------------------------------------


def test_schema_file_is_the_compose_spec() -> None:
    spec = c.schema()
    jsonschema.Draft7Validator.check_schema(spec)
    assert spec["title"] == "Compose Specification"
    assert "service" in spec["definitions"] and "deployment" in spec["definitions"]


def test_raw_compose_file_validates_against_the_spec() -> None:
    jsonschema.validate(c.raw_compose(), c.schema(), cls=jsonschema.Draft7Validator)


def test_interpolated_compose_file_validates_against_the_spec() -> None:
    jsonschema.validate(c.compose(), c.schema(), cls=jsonschema.Draft7Validator)


def test_secrets_have_no_default() -> None:
    env = c.read_env_file()
    for secret in ("POSTGRES_PASSWORD", "REDIS_PASSWORD"):
        without = {k: v for k, v in env.items() if k != secret}
        with pytest.raises(c.InterpolationError, match=secret):
            c.compose(without)


def test_interpolation_follows_compose_rules() -> None:
    env = {"A": "x", "E": ""}
    assert c.interpolate_string("${A:-d}/${B:-d}/${E:-d}/${E-d}/$$A/$A", env) == "x/d/d//$A/x"
    assert c.interpolate_string("${B:-${A}}", env) == "x"
    with pytest.raises(c.InterpolationError):
        c.interpolate_string("${E:?required}", env)


# (b) commands and images -------------------------------------------------------------------


def test_every_actlab_service_runs_a_real_actlab_command() -> None:
    entrypoint = next(c.exec_form(a) for k, a in c.dockerfile_instructions() if k == "ENTRYPOINT")
    assert entrypoint == ["actlab"]
    services = c.compose()["services"]
    ours = [name for name, svc in services.items() if c.is_actlab_service(svc)]
    assert sorted(ours) == sorted(ACTLAB_SERVICES)
    commands = {name: c.command(services[name]) for name in ours}
    for name, argv in commands.items():
        assert "entrypoint" not in services[name], name
        _parse(argv)
    assert commands["migrate"][:2] == ["db", "upgrade"]
    assert commands["api"] == ["api"]
    workers = [n for n in ours if n.startswith("worker")]
    names = []
    for name in workers:
        args = _parse(commands[name])
        assert args.verbs == ["worker"], name
        names.append(args.params["name"])
    assert len(set(names)) == len(names), f"worker node names must differ: {names}"
    default_cmd = next(c.exec_form(a) for k, a in c.dockerfile_instructions() if k == "CMD")
    _parse(default_cmd)


def test_third_party_images_are_pinned() -> None:
    services = c.compose()["services"]
    for name, svc in services.items():
        if c.is_actlab_service(svc):
            continue
        assert PINNED.match(svc["image"]), f"{name}: image {svc['image']!r} is not pinned"
    assert services["postgres"]["image"].startswith("postgres:")
    assert services["redis"]["image"].startswith("redis:")
    assert services["flower"]["image"].startswith("mher/flower:")


def test_topology() -> None:
    services = c.compose()["services"]
    postgres, redis, api = services["postgres"], services["redis"], services["api"]
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    assert "ports" not in postgres and "ports" not in redis, "stores must never be published"
    assert "--appendonly" in c.command(redis) and "yes" in c.command(redis)
    assert "redis-cli ping" in " ".join(redis["healthcheck"]["test"])
    assert any(v.split(":")[0] == "postgres" for v in postgres["volumes"])
    assert any(v.split(":")[0] == "redis" for v in redis["volumes"])
    assert services["migrate"]["restart"] == "no"
    assert api["ports"], "the API is published"
    assert api["depends_on"] == {
        "migrate": {"condition": "service_completed_successfully"},
        "postgres": {"condition": "service_healthy"},
        "redis": {"condition": "service_healthy"},
    }
    flower = services["flower"]
    assert flower["profiles"] == ["flower"]
    assert any("redis://" in part and "@redis:6379" in part for part in c.command(flower))
    assert all(p.startswith("127.0.0.1:") for p in flower["ports"]), "flower: loopback only"


def test_workers_reserve_gpus_and_stop_gracefully() -> None:
    services = c.compose()["services"]
    gpu = services["worker"]["deploy"]["resources"]["reservations"]["devices"]
    assert gpu == [{"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}]
    gpu1 = services["worker-gpu1"]["deploy"]["resources"]["reservations"]["devices"]
    assert gpu1 == [{"driver": "nvidia", "device_ids": ["1"], "capabilities": ["gpu"]}]
    assert services["worker"]["profiles"] == ["gpu"]
    assert services["worker-gpu1"]["profiles"] == ["multi-gpu"]
    assert services["worker-cpu"]["profiles"] == ["cpu"]
    assert "deploy" not in services["worker-cpu"]
    lease = Settings.model_fields["lease_seconds"].default
    for name in ("worker", "worker-gpu1", "worker-cpu"):
        svc = services[name]
        assert svc["stop_signal"] == "SIGTERM", name
        assert _duration_s(svc["stop_grace_period"]) >= max(120, lease), name
        # No healthcheck at all (the image has none): `docker compose up --wait` refuses a
        # service whose healthcheck is disabled, and a training worker cannot answer one.
        assert "healthcheck" not in svc, name
        assert svc["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}


def _active(profiles: str) -> dict[str, Any]:
    """The services `docker compose up` starts with COMPOSE_PROFILES=profiles."""
    wanted = set(profiles.split(","))
    services = c.compose({**c.read_env_file(), "COMPOSE_PROFILES": profiles})["services"]
    return {
        n: s for n, s in services.items() if not s.get("profiles") or wanted & set(s["profiles"])
    }


def _gpu_reservations(service: dict[str, Any]) -> list[dict[str, Any]]:
    reservations = service.get("deploy", {}).get("resources", {}).get("reservations", {})
    return [d for d in reservations.get("devices", []) if d.get("driver") == "nvidia"]


def test_each_kind_of_host_has_its_profiles_in_env() -> None:
    """.env.example's COMPOSE_PROFILES=cpu starts nothing that needs the NVIDIA runtime, so
    the documented `docker compose up -d` works on a host without a GPU; `gpu` and
    `gpu,multi-gpu` start one worker per GPU and no CPU worker."""
    assert c.read_env_file()["COMPOSE_PROFILES"] == "cpu"
    stores = {"postgres", "redis", "migrate", "api"}
    cpu = _active("cpu")
    assert set(cpu) == stores | {"worker-cpu"}
    assert not any(_gpu_reservations(svc) for svc in cpu.values())
    assert set(_active("gpu")) == stores | {"worker"}
    two = _active("gpu,multi-gpu")
    assert set(two) == stores | {"worker", "worker-gpu1"}
    assert all(len(_gpu_reservations(two[name])) == 1 for name in ("worker", "worker-gpu1"))


def test_data_and_checkpoints_are_shared_volumes() -> None:
    data = c.compose()
    volumes = data["volumes"]
    for name in ACTLAB_SERVICES:
        svc = data["services"][name]
        env = c.environment(svc)
        mounts = {v.split(":")[1]: v.split(":")[0] for v in svc["volumes"]}
        assert mounts[env["ACTLAB_DATA_DIR"]] == "datasets", name
        assert mounts[env["ACTLAB_CHECKPOINT_DIR"]] == "checkpoints", name
    assert {"datasets", "checkpoints", "postgres", "redis"} <= set(volumes)


def test_urls_point_at_the_compose_stores() -> None:
    env = c.environment(c.compose()["services"]["api"])
    example = c.read_env_file()
    assert env["ACTLAB_DATABASE_URL"] == (
        f"postgresql+psycopg://{example['POSTGRES_USER']}:{example['POSTGRES_PASSWORD']}"
        f"@postgres:5432/{example['POSTGRES_DB']}"
    )
    assert env["ACTLAB_BROKER_URL"] == f"redis://:{example['REDIS_PASSWORD']}@redis:6379/0"
    assert env["ACTLAB_API_HOST"] == "0.0.0.0"
    values = {k[len("ACTLAB_") :].lower(): v for k, v in env.items()}
    # The example's change-me passwords are refused in production until .env is edited ...
    with pytest.raises(ValueError, match="placeholder password"):
        Settings(**values)
    # ... and the same stack with real passwords is a valid production configuration.
    for name in ("database_url", "broker_url"):
        values[name] = values[name].replace(":change-me@", ":3f9c1e7a0b@")
    assert Settings(**values).environment == "production"


# (c) every ACTLAB_* variable is a setting ---------------------------------------------------


def _actlab_names() -> dict[str, set[str]]:
    text = c.COMPOSE_FILE.read_text()
    found = {
        "docker-compose.yml environment": {
            key for svc in c.raw_compose()["services"].values() for key in c.environment(svc)
        },
        "docker-compose.yml interpolation": set(re.findall(r"\$\{?(ACTLAB_\w+?)[:}?+-]", text)),
        ".env.example": set(c.read_env_file()),
        "docs/deploy.md": set(re.findall(r"\bACTLAB_[A-Z0-9_]+", c.DEPLOY_DOC.read_text())),
    }
    # ACTLAB_TEST_* switch tests on (tests/), they are not settings
    return {
        where: {n for n in names if n.startswith("ACTLAB_") and not n.startswith("ACTLAB_TEST_")}
        for where, names in found.items()
    }


def test_every_actlab_variable_is_a_setting() -> None:
    fields = {f"ACTLAB_{name.upper()}" for name in Settings.model_fields}
    names = _actlab_names()
    assert names["docker-compose.yml environment"], "no ACTLAB_* variable found"
    for where, found in names.items():
        unknown = sorted(found - fields)
        assert not unknown, f"{where}: not settings of core.settings.Settings: {unknown}"


def test_env_example_configures_what_compose_reads() -> None:
    env = c.read_env_file()
    profiles = {p for svc in c.compose()["services"].values() for p in svc.get("profiles", [])}
    assert set(env.pop("COMPOSE_PROFILES").split(",")) <= profiles  # read by Compose itself
    example = set(env)
    read = set(re.findall(r"\$\{(\w+)", c.COMPOSE_FILE.read_text()))
    assert read <= example, f"documented nowhere in .env.example: {sorted(read - example)}"
    assert example <= read, f".env.example sets what compose ignores: {sorted(example - read)}"


# (d) the Dockerfile ------------------------------------------------------------------------


def test_dockerfile_pins_an_overridable_base_image_and_runs_as_non_root() -> None:
    instructions = c.dockerfile_instructions()
    assert instructions[0][0] == "ARG", "ARG BASE_IMAGE must come before the first FROM"
    name, _, default = instructions[0][1].partition("=")
    assert name == "BASE_IMAGE"
    assert re.fullmatch(r"pytorch/pytorch:\d+\.\d+\.\d+-cuda\d+\.\d+-cudnn\d+-runtime", default)
    bases = [args.split()[0] for kind, args in instructions if kind == "FROM"]
    assert bases and set(bases) == {"${BASE_IMAGE}"}, bases
    # compose passes the same default when .env sets no BASE_IMAGE
    build = c.compose({**c.read_env_file(), "BASE_IMAGE": ""})["services"]["api"]["build"]
    assert build["args"]["BASE_IMAGE"] == default == c.read_env_file()["BASE_IMAGE"]
    users = [args for kind, args in instructions if kind == "USER"]
    assert users and users[-1] not in ("root", "0"), "the image must end as a non-root user"
    runs = " ".join(args for kind, args in instructions if kind == "RUN")
    assert re.search(rf"useradd\b[^&]*\b{re.escape(users[-1])}\b", runs), "USER is never created"


def test_dockerfile_pulls_no_frontend() -> None:
    """A `# syntax=` parser directive makes BuildKit pull a frontend image: offline, it fails."""
    for line in c.DOCKERFILE.read_text().splitlines():
        if not line.startswith("#"):
            break
        assert not re.match(r"#\s*syntax\s*=", line, re.IGNORECASE), line


def test_the_api_alone_has_a_healthcheck_and_the_image_an_entrypoint() -> None:
    instructions = c.dockerfile_instructions()
    assert not [args for kind, args in instructions if kind == "HEALTHCHECK"]
    services = c.compose()["services"]
    health = services["api"]["healthcheck"]
    assert "/healthz" in " ".join(health["test"]) and _duration_s(health["interval"]) <= 10
    assert [
        n for n, svc in services.items() if "healthcheck" in svc and c.is_actlab_service(svc)
    ] == ["api"]
    env = " ".join(args for kind, args in instructions if kind == "ENV")
    assert "ACTLAB_API_HOST=0.0.0.0" in env
    for name in re.findall(r"\b(ACTLAB_\w+)=", env):
        assert name[len("ACTLAB_") :].lower() in Settings.model_fields, name


def test_dockerfile_installs_dependencies_before_copying_the_source() -> None:
    instructions = c.dockerfile_instructions()
    copies = [(i, args.split()) for i, (kind, args) in enumerate(instructions) if kind == "COPY"]
    first_pyproject = next(i for i, args in copies if "pyproject.toml" in args[:-1])
    source = [i for i, args in copies if set(args[:-1]) & {".", "service", "worker"}]
    assert source and first_pyproject < min(source)
    runs = [(i, args) for i, (kind, args) in enumerate(instructions) if kind == "RUN"]
    deps = [i for i, args in runs if "pip install" in args and "--no-deps" not in args]
    package = [i for i, args in runs if "pip install" in args and "--no-deps" in args]
    assert deps and first_pyproject < deps[0] < min(source), "deps layer before the source"
    assert package and package[0] > max(source), "the package is installed after the source"


def test_the_image_copies_every_package() -> None:
    import tomllib

    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = {
        p.rstrip("*") for p in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    }
    copied = {args.split()[0] for kind, args in c.dockerfile_instructions() if kind == "COPY"}
    assert packages <= copied, f"not copied into the image: {sorted(packages - copied)}"


def test_dockerignore_keeps_secrets_and_clutter_out() -> None:
    ignored = {line.strip() for line in c.DOCKERIGNORE.read_text().splitlines()}
    assert {".git", ".env", ".venv", "**/__pycache__", "tests", "deploy"} <= ignored
    assert not {"wheelhouse", "wheelhouse/"} & ignored, "the build installs from wheelhouse/"


# docs/deploy.md: every command refers to what exists ----------------------------------------


def _doc_commands() -> list[str]:
    """Lines of the bash code blocks of docs/deploy.md (continuations joined)."""
    lines: list[str] = []
    language: str | None = None
    for raw in c.DEPLOY_DOC.read_text().replace("\\\n", " ").splitlines():
        line = raw.strip()
        if line.startswith("```"):
            language = None if language is not None else (line[3:].strip() or "text")
            continue
        if language == "bash" and line and not line.startswith("#"):
            lines.append(line.split(" #")[0].strip())
    return lines


def test_docs_use_only_existing_compose_services_and_profiles() -> None:
    data = c.compose()
    services = set(data["services"])
    profiles = {p for svc in data["services"].values() for p in svc.get("profiles", [])}
    compose_lines = [line for line in _doc_commands() if "docker compose" in line]
    assert len(compose_lines) >= 8
    verbs_taking_services = {"up", "run", "exec", "logs", "build", "pull", "stop", "restart"}
    for line in compose_lines:
        for command in re.split(r"\s*(?:&&|\||;)\s*", line):
            words = command.split()
            if "compose" not in words:
                continue
            words = words[words.index("compose") + 1 :]
            for i, word in enumerate(words):
                if word == "--profile":
                    name = words[i + 1].strip("'\"")
                    assert name in profiles | {"*"}, f"{line}: unknown profile {name}"
            verb = next(
                (
                    w
                    for w in words
                    if not w.startswith("-") and w.strip("'\"") not in profiles | {"*"}
                ),
                None,
            )
            if verb not in verbs_taking_services:
                continue
            rest = words[words.index(verb) + 1 :]
            targets = [w for w in rest if not w.startswith("-") and not w.startswith("$")]
            if verb in ("exec", "run") and targets:
                targets = targets[:1]  # then the command run inside the container
            for target in targets:
                assert target in services, f"{line}: unknown service {target!r}"


def test_docs_actlab_commands_parse() -> None:
    found = 0
    for line in _doc_commands():
        for match in re.finditer(r"(?:^|\s)actlab((?:\s+[^\s|&;]+)+)", line):
            argv = match.group(1).split()
            argv = [a for a in argv if not a.startswith("$(")]
            if not argv or argv[0].startswith(("-", "/", ".")) or "@" in argv[0]:
                continue
            found += 1
            _parse(argv)
    assert found >= 2
