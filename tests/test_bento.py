import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_bentoml_build_packs_the_services_and_the_default_model_and_serves_it(tmp_path):
    """Offline build: bentoml needs a `uv` executable on PATH (the dev extra installs it). Then
    `bentoml serve glyphgate:latest` from another folder, as the README says, answers with the
    Bento's own model."""
    import httpx
    from live_server import Server

    bin_dir = Path(sys.executable).parent
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "BENTOML_HOME": str(tmp_path / "home"),
        "BENTOML_DO_NOT_TRACK": "True",
    }
    done = subprocess.run(
        [str(bin_dir / "bentoml"), "build"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    src = next((tmp_path / "home" / "bentos" / "glyphgate").glob("*/src"))
    for part in (
        "serving/service.py",
        "serving/ui/index.html",
        "glyphgate/core/contract/calibration.schema.json",
        "glyphgate/core/model/sampler.py",
        "serving/ui/app.py",
        "artifacts/default/model.onnx",
        "artifacts/default/calibration.json",
        "artifacts/default/model.pt",
        "serving/docs.html",
    ):
        assert (src / part).is_file(), part
    assert not any((src / p).exists() for p in ("training", "calibration", "corpus"))
    requirements = next(
        (tmp_path / "home" / "bentos" / "glyphgate").glob("*/env/python/requirements.txt")
    ).read_text()
    assert "torch==" in requirements and "onnxruntime" in requirements
    assert "lightning" not in requirements and "scikit-learn" not in requirements, requirements
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    with Server(
        None, tmp_path / "serve.log", target="glyphgate:latest", cwd=elsewhere, BENTOML_HOME=tmp_path / "home"
    ) as s:
        r = httpx.post(
            s.url + "/classify",
            files={"image": ("a.png", (ROOT / "examples/glyphs/a.png").read_bytes())},
            timeout=60,
        )
    assert r.status_code == 200 and r.json()["label"] == "a" and not r.json()["is_ood"], r.text
