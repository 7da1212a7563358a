"""The README's "Monitor your own model" section, run as written: its Python block saves a model
and a reference, its commands register the model, list the catalogue, serve it and ask it for a
prediction (on a free port instead of 8000)."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from helpers import eventually, free_port, stop_process_group

pytestmark = pytest.mark.slow
README = Path(__file__).resolve().parents[2] / "README.md"


def _all_blocks(title: str) -> list[tuple[str, str]]:
    """The code blocks of a README section, in order, as (language, text)."""
    text = README.read_text()
    section = text.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```(\w+)\n(.*?)```", section, flags=re.S)


def _section_blocks(title: str) -> dict[str, str]:
    """The first block of each language in a README section."""
    found: dict[str, str] = {}
    for lang, body in _all_blocks(title):
        found.setdefault(lang, body)
    return found


def test_the_readme_commands_register_serve_and_predict(tmp_path: Path) -> None:
    blocks = _section_blocks("Monitor your own model")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "COLUMNS": "200"}  # fmt: skip
    for var in ("MODEL_DIR", "DATA_DIR", "DATABASE_URL"):  # the README's defaults, under tmp_path
        env.pop(var, None)
    (tmp_path / "save.py").write_text(blocks["python"])
    subprocess.run([sys.executable, "save.py"], cwd=tmp_path, env=env, check=True, timeout=300)

    port = str(free_port())
    lines = [ln.split("  #")[0].strip() for ln in blocks["bash"].splitlines() if ln.strip()]
    assert any(ln.startswith("mlobs serve") for ln in lines) and lines[-1].startswith("curl")
    server = None
    log = open(tmp_path / "server.log", "wb")  # closed in the finally below
    try:
        for line in lines:
            words = [port if w == "8000" else w for w in shlex.split(line)]
            words = [w.replace("localhost:8000", f"localhost:{port}") for w in words]
            if words[:2] == ["mlobs", "serve"]:
                server = subprocess.Popen(words, cwd=tmp_path, env=env, stdout=log,
                                          stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
                eventually(lambda: _ready(port), ignore=(httpx.TransportError,),
                           message=lambda: (tmp_path / "server.log").read_text()[-2000:])  # fmt: skip
                continue
            out = subprocess.run(words, cwd=tmp_path, env=env, capture_output=True, text=True,
                                 timeout=300, check=False)  # fmt: skip
            assert out.returncode == 0, (line, out.stdout, out.stderr)
            if words[0] == "curl":
                answer = json.loads(out.stdout)
                assert answer["model_name"] == "cancer" and 0 <= answer["probability"] <= 1
            if words[:3] == ["mlobs", "models", "list"]:
                assert "cancer" in out.stdout and "xgboost" in out.stdout
        _served_elsewhere(tmp_path, env, port)
    finally:
        if server is not None:
            stop_process_group(server)
        log.close()


def _served_elsewhere(tmp_path: Path, env: dict[str, str], port: str) -> None:
    """The "Monitor a model served elsewhere" section against the same server: its Python block
    writes a log of predictions, its command posts it (twice: the second time all duplicates)."""
    blocks = _section_blocks("Monitor a model served elsewhere")
    (tmp_path / "served.py").write_text(blocks["python"])
    subprocess.run([sys.executable, "served.py"], cwd=tmp_path, env=env, check=True, timeout=300)
    n = len((tmp_path / "served.ndjson").read_text().splitlines())
    lines = [ln.split("  #")[0].strip() for ln in blocks["bash"].splitlines()
             if ln.strip() and not ln.startswith("#")]  # fmt: skip
    assert len(lines) == 1 and lines[0].startswith("curl")
    words = [w.replace("localhost:8000", f"localhost:{port}") for w in shlex.split(lines[0])]
    answers = []
    for _ in range(2):
        out = subprocess.run(words, cwd=tmp_path, env=env, capture_output=True, text=True,
                             timeout=300, check=True)  # fmt: skip
        answers.append(json.loads(out.stdout))
    assert (answers[0]["accepted"], answers[0]["rejected"]) == (n, 0), answers[0]
    assert (answers[1]["accepted"], answers[1]["duplicate"]) == (0, n), answers[1]
    _client_example(tmp_path, env, port)


def _client_example(tmp_path: Path, env: dict[str, str], port: str) -> None:
    """The section's example service (app.py, run with uvicorn as shown) logs its predictions
    through mlobs.client: one call to it, and the prediction is in mlobs's log."""
    blocks = [body for lang, body in _all_blocks("Monitor a model served elsewhere")]
    app_py = next(b for b in blocks if b.startswith("# app.py"))
    commands = next(b for b in blocks if "uvicorn app:app" in b).strip().splitlines()
    (tmp_path / "app.py").write_text(app_py)
    start, call = commands
    assert start.endswith("&") and call.startswith("curl")
    app_port = str(free_port())
    words = shlex.split(start.rstrip("& "))
    assignments = dict(w.split("=", 1) for w in words if "=" in w and not w.startswith("-"))
    command = [w for w in words if w not in {f"{k}={v}" for k, v in assignments.items()}]
    command = [app_port if w == "8001" else w for w in command]
    app_env = {**env, **{k: v.replace("localhost:8000", f"localhost:{port}")
                          for k, v in assignments.items()}}  # fmt: skip
    log = open(tmp_path / "app.log", "wb")  # closed in the finally below
    service = subprocess.Popen(command, cwd=tmp_path, env=app_env, stdout=log,
                               stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    try:
        words = [w.replace("localhost:8001", f"localhost:{app_port}") for w in shlex.split(call)]

        def answered() -> dict[str, Any] | None:
            out = subprocess.run(words, cwd=tmp_path, env=env, capture_output=True, text=True,
                                 timeout=60, check=False)  # fmt: skip
            return json.loads(out.stdout) if out.returncode == 0 and out.stdout else None

        answer = eventually(answered, message=lambda: (tmp_path / "app.log").read_text()[-2000:])
        pid = answer["prediction_id"]
        logged = eventually(
            lambda: (r := httpx.get(f"http://127.0.0.1:{port}/predictions/{pid}", timeout=10))
            .status_code == 200 and r.json(),
            message="the example service's prediction never reached mlobs",
        )  # fmt: skip
        assert logged["model_name"] == "cancer"
        assert logged["probability"] == pytest.approx(answer["probability"])
    finally:
        stop_process_group(service)
        log.close()


def _ready(port: str) -> bool:
    return httpx.get(f"http://127.0.0.1:{port}/health/ready", timeout=5).status_code == 200
