#!/usr/bin/env python3
"""The OpenAPI document as a contract, checked against a live server (`cargo xtask test`).

Usage: api_contract.py PATH_TO_GANGPLANK_BINARY

1. Starts `gangplank serve` on a free port with a fresh data directory and an admin token.
2. Generates a Python client from the live /openapi.json with openapi-python-client and uses it:
   create an app, list apps, register a container version (JSON) and a workload version
   (multipart, the Score spec as a file part), read them back.
3. Runs Schemathesis with every check on and a bounded number of examples per operation
   (settings in schemathesis.toml beside this file); any failure fails the run.
"""

import json
import os
import secrets
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
MAX_EXAMPLES = os.environ.get("GANGPLANK_SCHEMATHESIS_EXAMPLES", "10")


def start_server(binary, data_dir, token, log):
    env = dict(
        os.environ,
        GANGPLANK_BOOTSTRAP_TOKEN=token,
        GANGPLANK_DATA_DIR=str(data_dir),
        GANGPLANK_LISTEN="127.0.0.1:0",
    )
    server = subprocess.Popen(
        [binary, "serve"], env=env, stdout=subprocess.PIPE, stderr=log, text=True
    )
    first = server.stdout.readline().strip()
    if not first.startswith("listening on "):
        server.kill()
        sys.exit(f"api contract: the server did not start (first line {first!r})")
    # Keep reading stdout so the server never blocks on a full pipe.
    threading.Thread(target=lambda: server.stdout.read(), daemon=True).start()
    base = first.removeprefix("listening on ")
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"{base}/ready", timeout=5) as response:
                if response.status == 200:
                    return server, base
        except OSError:
            pass
        if time.monotonic() > deadline:
            server.kill()
            sys.exit("api contract: the server was not ready within 30 s")
        time.sleep(0.2)


def call(base, token, method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"{base}{path}", data=data, method=method)
    request.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read() or "null")


def schemathesis(base, token, workdir):
    """Runs every check; a service user's id lets the token operations reach their logic."""
    user = call(
        base, token, "POST", "/orgs/default/users", {"name": "fuzz", "role": "member"}
    )
    env = dict(os.environ, SCHEMATHESIS_USER=user["id"])
    command = [
        "schemathesis",
        "--config-file",
        str(HERE / "schemathesis.toml"),
        "run",
        f"{base}/openapi.json",
        "--checks",
        "all",
        "--max-examples",
        MAX_EXAMPLES,
        "--workers",
        "2",
        "--header",
        f"Authorization: Bearer {token}",
        "--no-color",
        "--report",
        "junit",
        "--report-dir",
        str(workdir / "schemathesis-report"),
    ]
    shown = [part.replace(token, "[token]") for part in command]
    print(f"$ {' '.join(shown)}", flush=True)
    result = subprocess.run(command, env=env, cwd=workdir)
    if result.returncode != 0:
        sys.exit(f"api contract: schemathesis failed (exit {result.returncode})")


def generated_client(base, token, workdir):
    """Generates a client from the live document and drives it through a small workflow."""
    config = workdir / "client.yaml"
    # Pipelines take their definition as `application/x-yaml` (Humanitec's content type), which
    # the generator does not know: it is a byte body to a client, as `application/octet-stream`.
    config.write_text(
        "package_name_override: gangplank_client\n"
        "content_type_overrides:\n"
        "  application/x-yaml: application/octet-stream\n"
    )
    out = workdir / "generated"
    out.mkdir()
    subprocess.run(
        [
            "openapi-python-client",
            "generate",
            "--url",
            f"{base}/openapi.json",
            "--meta",
            "none",
            "--config",
            str(config),
            "--output-path",
            str(out / "gangplank_client"),
            "--fail-on-warning",
        ],
        check=True,
    )
    sys.path.insert(0, str(out))
    from gangplank_client import AuthenticatedClient, models
    from gangplank_client.api.apps import create_application, list_applications
    from gangplank_client.api.artefacts import (
        create_artefact_version,
        get_artefact_version,
        get_workload_artefact_version_spec,
    )
    from gangplank_client.types import File

    client = AuthenticatedClient(base_url=base, token=token, raise_on_unexpected_status=True)

    created = create_application.sync(
        "default", client=client, body=models.CreateApp(id="generated-client")
    )
    expect(isinstance(created, models.App), f"create app answered {created!r}")
    expect(created.id == "generated-client", f"created {created.id}")

    listed = list_applications.sync("default", client=client)
    expect(
        any(app.id == "generated-client" for app in listed),
        f"the new app is not listed: {listed!r}",
    )

    container = create_artefact_version.sync(
        "default",
        client=client,
        body=models.CreateArtefactVersion(
            type_=models.ArtefactType.CONTAINER,
            name="registry.example.com/shop/web",
            version="1.0.0",
            ref="refs/heads/main",
            commit="90254ccc7352e1a5c8d1e4cdab2a032cefac9fd5",
        ),
    )
    expect(
        isinstance(container, models.ArtefactVersion),
        f"register a container version answered {container!r}",
    )
    again = get_artefact_version.sync("default", container.id, client=client)
    expect(again.version == "1.0.0", f"read back {again!r}")

    spec = b"apiVersion: score.dev/v1b1\nmetadata:\n  name: web\ncontainers:\n  web:\n    image: .\n"
    workload = create_artefact_version.sync(
        "default",
        client=client,
        body=models.CreateArtefactVersionForm(
            type_=models.ArtefactType.WORKLOAD,
            name="web",
            version="1.0.0",
            spec=File(payload=spec, file_name="score.yaml", mime_type="application/yaml"),
        ),
    )
    expect(
        isinstance(workload, models.ArtefactVersion),
        f"register a workload version (multipart) answered {workload!r}",
    )
    stored = get_workload_artefact_version_spec.sync_detailed(
        "default", workload.id, client=client
    )
    expect(stored.status_code == 200, f"workload spec answered {stored.status_code}")
    expect(
        json.loads(stored.content)["metadata"]["name"] == "web",
        f"workload spec {stored.content!r}",
    )
    print("api contract: the generated client created an app, listed apps and registered "
          "a container (JSON) and a workload (multipart) version", flush=True)


def expect(condition, message):
    if not condition:
        sys.exit(f"api contract: generated client: {message}")


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    binary = sys.argv[1]
    token = "gp_contract_" + secrets.token_hex(16)
    with tempfile.TemporaryDirectory(prefix="gangplank-contract-") as tmp:
        workdir = Path(tmp)
        with open(workdir / "server.log", "w") as log:
            server, base = start_server(binary, workdir / "data", token, log)
            try:
                # The client first, on the fresh server: the fuzzer deletes what it finds.
                generated_client(base, token, workdir)
                schemathesis(base, token, workdir)
            except BaseException:
                log.flush()
                tail = (workdir / "server.log").read_text()[-4000:]
                print(f"api contract: server log (tail):\n{tail}", file=sys.stderr)
                raise
            finally:
                server.terminate()
                server.wait(timeout=30)


if __name__ == "__main__":
    main()
