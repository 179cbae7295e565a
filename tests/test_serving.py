"""A real BentoML server on 127.0.0.1, called over HTTP, serving a tiny exported model."""

import base64
import collections
import io
import json
import re
import shutil
import time

import httpx
import numpy as np
import pytest
from bomb_png import png_header_only
from live_server import Server
from PIL import Image

from glyphgate.core.image.preprocess import pil_to_gray, preprocess

pytestmark = pytest.mark.slow
MAX_MB = 2


def png_bytes(im: Image.Image, fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    im.save(buf, format=fmt)
    return buf.getvalue()


@pytest.fixture(scope="module")
def glyphs(train_corpus):
    with open(train_corpus / "test.npy", "rb") as f:
        x = np.load(f)
    return [Image.fromarray(a) for a in x[:8]]


@pytest.fixture(scope="module")
def server(tiny_calibrated, tmp_path_factory):
    log = tmp_path_factory.mktemp("server") / "serve.log"
    with Server(tiny_calibrated, log, GLYPHGATE_MAX_UPLOAD_MB=MAX_MB) as s:
        yield s


@pytest.fixture(scope="module")
def client(server):
    with httpx.Client(base_url=server.url, timeout=120) as c:
        yield c


def direct(artifacts, im: Image.Image):
    import onnxruntime as ort

    session = ort.InferenceSession(str(artifacts / "model.onnx"), providers=["CPUExecutionProvider"])
    x = preprocess(pil_to_gray(im)).numpy()
    logits, energy = session.run(["logits", "energy"], {"image": x})
    return logits[0], float(energy[0])


def test_server_binds_loopback_and_logs_its_provider(server):
    out = server.output()
    assert f"listening on http://127.0.0.1:{server.port}" in out
    assert "glyphgate scoring on ONNX Runtime" in out and "ExecutionProvider" in out


def test_classify_and_score_agree_with_onnx_runtime(client, tiny_calibrated, glyphs):
    cal = json.loads((tiny_calibrated / "calibration.json").read_text(encoding="utf-8"))
    for im in glyphs[:3]:
        logits, energy = direct(tiny_calibrated, im)
        r = client.post("/classify", files={"image": ("g.png", png_bytes(im), "image/png")})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["label"] == cal["classes"][int(np.argmax(logits))]
        assert body["energy"] == pytest.approx(energy, abs=1e-5)
        assert body["is_ood"] == (energy > cal["threshold"]) and body["threshold"] == pytest.approx(
            cal["threshold"]
        )
        assert len(body["top_k"]) == 5 and body["top_k"][0]["label"] == body["label"]
        # top_k: the five largest of softmax(logits / T) at the calibrated temperature, in order
        z = np.exp((logits - logits.max()) / cal["temperature"])
        p = z / z.sum()
        top = np.argsort(-p)[:5]
        assert [t["label"] for t in body["top_k"]] == [cal["classes"][i] for i in top]
        assert [t["p"] for t in body["top_k"]] == pytest.approx(p[top].tolist(), abs=1e-5)
        assert body["confidence"] == body["top_k"][0]["p"]
        s = client.post("/score", files={"image": ("g.png", png_bytes(im), "image/png")}).json()
        assert s == {
            "energy": pytest.approx(energy, abs=1e-5),
            "threshold": body["threshold"],
            "is_ood": body["is_ood"],
            "p_value": body["p_value"],
        }
        cal_e = np.array(cal["id_energies"])
        assert body["p_value"] == pytest.approx((1 + np.sum(cal_e >= body["energy"])) / (len(cal_e) + 1))


def test_alpha_sets_the_flag_rule_per_request(client, glyphs):
    files = [("images", (f"g{i}.png", png_bytes(im), "image/png")) for i, im in enumerate(glyphs)]
    default = client.post("/score_batch", files=files).json()["results"]
    pv = np.array([r["p_value"] for r in default])
    for alpha in (0.2, 0.5, 0.9):
        got = client.post("/score_batch", files=files, data={"alpha": str(alpha)}).json()["results"]
        assert [r["is_ood"] for r in got] == list(pv < alpha) and all(r["alpha"] == alpha for r in got)
    one = client.post(
        "/classify", files={"image": ("g.png", png_bytes(glyphs[0]), "image/png")}, data={"alpha": "0.999"}
    )
    assert one.status_code == 200 and one.json()["is_ood"] == (default[0]["p_value"] < 0.999)
    for bad, why in (
        ("0", "strictly between 0 and 1"),
        ("1.5", "strictly between 0 and 1"),
        ("lots", "not a number"),
    ):
        r = client.post(
            "/score", files={"image": ("g.png", png_bytes(glyphs[0]), "image/png")}, data={"alpha": bad}
        )
        assert r.status_code == 400 and why in r.json()["error"], r.text
    r = client.post(
        "/preview", files={"image": ("g.png", png_bytes(glyphs[0]), "image/png")}, data={"alpha": "0.1"}
    )
    assert r.status_code == 400 and "unexpected field" in r.json()["error"]


def test_batch_endpoints_keep_request_order_and_report_bad_items(client, glyphs, tiny_calibrated):
    files = [("images", (f"g{i}.png", png_bytes(im), "image/png")) for i, im in enumerate(glyphs)]
    files.insert(3, ("images", ("broken.png", b"not an image", "image/png")))
    r = client.post("/classify_batch", files=files)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["n"] == 9 and body["n_errors"] == 1
    assert [x["file"] for x in body["results"]] == [f[1][0] for f in files]
    assert "broken.png: not an image" in body["results"][3]["error"]
    for res, im in zip(body["results"][:3] + body["results"][4:], glyphs):
        assert res["energy"] == pytest.approx(direct(tiny_calibrated, im)[1], abs=1e-5)
    many = [("images", (f"g{i}.png", png_bytes(glyphs[i % 8]), "image/png")) for i in range(256)]
    r = client.post("/score_batch", files=many)
    assert r.status_code == 200 and r.json()["n"] == 256 and r.json()["n_errors"] == 0


def test_preview_is_the_model_input(client, glyphs):
    wide = glyphs[1].resize((90, 56))  # fitted into 56 x 56 and padded on the way in
    r = client.post("/preview", files={"image": ("w.png", png_bytes(wide), "image/png")})
    assert r.status_code == 200 and r.headers["content-type"] == "image/png", r.text
    seen = np.asarray(Image.open(io.BytesIO(r.content)), np.float32) / 127.5 - 1.0
    assert seen.shape == (56, 56)
    assert np.abs(seen - preprocess(pil_to_gray(wide)).numpy()[0, 0]).max() <= 1 / 127.5


def test_only_the_generator_process_loads_torch(server):
    """Scoring workers run on numpy, Pillow and ONNX Runtime: no torch start-up, no torch threads."""
    import psutil

    procs = psutil.Process(server.proc.pid).children(recursive=True) + [psutil.Process(server.proc.pid)]

    def loads_torch(p):
        return any("libtorch_cpu" in m.path for m in p.memory_maps(grouped=True))

    assert sum(loads_torch(p) for p in procs) == 1, [(p.pid, p.cmdline()[-4:]) for p in procs]
    assert sum(any("onnxruntime" in m.path for m in p.memory_maps(grouped=True)) for p in procs) == 2


def test_unusual_but_valid_images_are_accepted(client, glyphs):
    g = glyphs[0]
    wide = Image.new("L", (5000, 20), 230)
    cases = {
        "rgb": png_bytes(g.convert("RGB")),
        "rgba": png_bytes(g.convert("RGBA")),
        "16bit": png_bytes(Image.fromarray(np.asarray(g).astype(np.uint16) * 257)),
        "1bit": png_bytes(g.convert("1")),
        "palette": png_bytes(g.convert("P")),
        "1x1": png_bytes(Image.new("L", (1, 1), 200)),
        "wide": png_bytes(wide),
        "jpeg": png_bytes(g, "JPEG"),
        "tiff": png_bytes(g, "TIFF"),
        "png_named_jpeg": png_bytes(g),  # sent below as x.jpg / image/jpeg: decoded by content
    }
    for name, data in cases.items():
        r = client.post("/classify", files={"image": ("x.jpg", data, "image/jpeg")})
        assert r.status_code == 200, (name, r.text)
        assert np.isfinite(r.json()["energy"])


def _bad_requests(glyph_png: bytes):
    truncated = glyph_png[: len(glyph_png) // 2]
    b64 = base64.b64encode(glyph_png)
    big = b"\0" * (MAX_MB * 1024 * 1024 + 1)
    tiny = png_bytes(Image.new("L", (4, 4), 128))
    return [
        # (name, method, path, request kwargs, status, message fragment)
        (
            "non-image bytes",
            "/score",
            {"files": {"image": ("a.png", b"hello, world", "image/png")}},
            400,
            "a.png: not an image",
        ),
        (
            "truncated png",
            "/score",
            {"files": {"image": ("t.png", truncated, "image/png")}},
            400,
            "t.png: damaged or truncated",
        ),
        (
            "zero-byte file",
            "/classify",
            {"files": {"image": ("z.png", b"", "image/png")}},
            400,
            "z.png: empty file",
        ),
        (
            "decompression bomb",
            "/score",
            {"files": {"image": ("bomb.png", png_header_only(100_000, 100_000), "image/png")}},
            400,
            "bomb.png: 100000 × 100000 = 10,000,000,000 pixels, more than GLYPHGATE_MAX_PIXELS",
        ),
        (
            "over the pixel cap",
            "/score",
            {"files": {"image": ("huge.png", png_header_only(15000, 15000), "image/png")}},
            400,
            "225,000,000 pixels, more than GLYPHGATE_MAX_PIXELS",
        ),
        (
            "wrong field name",
            "/classify",
            {"files": {"file": ("g.png", glyph_png, "image/png")}},
            400,
            "no file in the field 'image'; got 'file'",
        ),
        (
            "url in file field",
            "/classify",
            {"files": {"image": (None, "http://169.254.169.254/latest/meta-data")}},
            400,
            "not text",
        ),
        (
            "url as urlencoded form",
            "/classify",
            {"data": {"image": "http://169.254.169.254/"}},
            400,
            "expected multipart/form-data",
        ),
        ("base64 text field", "/score", {"files": {"image": (None, b64.decode())}}, 400, "not text"),
        (
            "base64 as file",
            "/score",
            {"files": {"image": ("b.png", b64, "image/png")}},
            400,
            "looks like base64",
        ),
        (
            "url bytes as file",
            "/score",
            {"files": {"image": ("u.png", b"https://example.com/a.png", "image/png")}},
            400,
            "looks like a URL",
        ),
        (
            "empty body",
            "/classify",
            {"content": b"", "headers": {"content-type": "multipart/form-data; boundary=x"}},
            400,
            "empty body",
        ),
        ("json instead of file", "/score", {"json": {"image": "a.png"}}, 400, "expected multipart/form-data"),
        (
            "too many images",
            "/score_batch",
            {"files": [("images", ("t.png", tiny, "image/png"))] * 257},
            400,
            "the limit is 256",
        ),
        (
            "two files to /score",
            "/score",
            {"files": [("image", ("a.png", tiny, "image/png"))] * 2},
            400,
            "the limit is 1",
        ),
        (
            "body over the cap",
            "/score_batch",
            {"files": {"images": ("big.png", big, "image/png")}},
            413,
            "byte limit",
        ),
        ("generate n=0", "/generate", {"json": {"n": 0}}, 400, "n=0 is out of range"),
        ("generate n=65", "/generate", {"json": {"n": 65}}, 400, "n=65 is out of range"),
        (
            "generate steps=2000",
            "/generate_chain",
            {"json": {"steps": 2000}},
            400,
            "steps=2000 is out of range",
        ),
        ("generate unknown label", "/generate", {"json": {"label": "Q"}}, 400, "label 'Q' is not a class"),
        ("generate n as text", "/generate", {"json": {"n": "ten"}}, 400, "n must be an integer"),
        ("generate seed<0", "/generate", {"json": {"seed": -1}}, 400, "seed=-1 is out of range"),
        ("generate unknown field", "/generate", {"json": {"count": 3}}, 400, "unknown field(s) 'count'"),
        (
            "generate not json",
            "/generate",
            {"content": b"n=3", "headers": {"content-type": "application/json"}},
            400,
            "body is not JSON",
        ),
    ]


def refusal_lines(server, since: int, expected: int, timeout: float = 10) -> collections.Counter:
    """glyphgate's refusal lines ("<status> <METHOD> <path>: <reason>") the server logged after
    offset `since` of its log, once `expected` of them are there (or `timeout` passed): the
    two API workers write them in their own time."""
    deadline = time.perf_counter() + timeout
    while True:
        found = re.findall(r"glyphgate INFO (\d{3} [A-Z]+ /\S*: .*)", server.output()[since:])
        if len(found) >= expected or time.perf_counter() > deadline:
            return collections.Counter(found)
        time.sleep(0.1)


def refused_as(r: httpx.Response) -> str:
    """The one log line a refused request should leave: its status, method, path and reason."""
    try:
        reason = r.json()["error"]
    except ValueError:
        reason = r.text
    return f"{r.status_code} {r.request.method} {r.request.url.path}: {' '.join(reason.split())}"


def test_every_bad_input_is_a_4xx_with_a_message_one_log_line_and_the_server_survives(
    server, client, glyphs, tmp_path
):
    glyph_png = png_bytes(glyphs[0])
    seen, refused = [], []
    since = len(server.output())
    for name, path, kwargs, status, fragment in _bad_requests(glyph_png):
        r = client.post(path, **kwargs)
        seen.append(f"| {name} | {path} | {r.status_code} | {r.json().get('error', r.text)[:110]} |")
        assert r.status_code == status, (name, r.status_code, r.text)
        assert fragment in r.json()["error"], (name, r.text)
        refused.append(r)
    # refusals made by BentoML's router, not by glyphgate's code, are logged the same way
    refused += [client.get("/score"), client.post("/no_such_api", content=b"x")]
    assert [r.status_code for r in refused[-2:]] == [405, 404]
    (tmp_path / "bad_inputs.md").write_text("\n".join(seen) + "\n")
    want = collections.Counter(refused_as(r) for r in refused)
    assert refusal_lines(server, since, len(refused)) == want
    assert client.get("/readyz").status_code == 200
    assert client.post("/score", files={"image": ("g.png", glyph_png, "image/png")}).status_code == 200


def test_every_endpoint_answers_a_bad_file_in_one_shape_with_one_log_line(server, client, glyphs):
    """{"error", "file"} from every endpoint, single, batch and /preview alike, and no traceback."""
    bad = ("bad.png", b"\x89PNG\r\n\x1a\n cut off", "image/png")
    png, xml = png_bytes(glyphs[0]), b"<PcGts/>"
    calls = {
        "/classify": {"files": {"image": bad}},
        "/score": {"files": {"image": bad}},
        "/preview": {"files": {"image": bad}},
        "/classify_batch": {"files": [("images", bad)]},
        "/score_batch": {"files": [("images", bad)] * 2},
        "/scan_page": {
            "files": {"image": ("page.png", png, "image/png"), "page": ("page.xml", xml, "application/xml")}
        },
    }
    before = server.output().count("Traceback")
    for path, kwargs in calls.items():
        r = client.post(path, **kwargs)
        body = r.json()
        assert r.status_code == 400 and isinstance(body, dict), (path, r.text)
        assert set(body) >= {"error", "file"} and body["error"], (path, body)
        want = "page.xml" if path == "/scan_page" else (None if path.endswith("_batch") else "bad.png")
        assert body["file"] == want and (want is None or body["error"].startswith(want)), (path, body)
        if path.endswith("_batch"):
            assert all(
                e["file"] == "bad.png" and "damaged or truncated PNG" in e["error"] for e in body["errors"]
            )
    mixed = client.post(
        "/score_batch", files=[("images", bad), ("images", ("g.png", png, "image/png"))]
    ).json()
    assert mixed["results"][0] == {"index": 0, "file": "bad.png", "error": mixed["results"][0]["error"]}
    assert mixed["results"][1]["file"] == "g.png" and "energy" in mixed["results"][1]
    log = server.output()
    assert log.count("Traceback") == before, log[-3000:]
    assert "glyphgate INFO 400 POST /preview: bad.png: damaged or truncated PNG" in log


def metric_values(client) -> dict[str, float]:
    """/metrics as {'name{labels}': value} for glyphgate's own series."""
    out = {}
    for line in client.get("/metrics").text.splitlines():
        if line.startswith("glyphgate_"):
            key, _, value = line.rpartition(" ")
            out[key] = float(value)
    return out


def test_metrics_count_verdicts_classes_and_energies(client, glyphs):
    noise = Image.fromarray(np.random.default_rng(0).integers(0, 256, (56, 56), dtype=np.uint8))
    before = metric_values(client)
    sent = [
        client.post("/classify", files={"image": (f"{i}.png", png_bytes(im), "image/png")}).json()
        for i, im in enumerate(glyphs[:5] + [noise])
    ]
    client.post("/score", files={"image": ("x.png", b"junk", "image/png")})
    after = metric_values(client)

    def grew(key):
        return after.get(key, 0.0) - before.get(key, 0.0)

    flagged = sum(r["is_ood"] for r in sent)
    assert grew('glyphgate_scans_total{verdict="flagged"}') == flagged
    assert grew('glyphgate_scans_total{verdict="glyph"}') == len(sent) - flagged
    for label in {r["label"] for r in sent}:
        assert grew(f'glyphgate_scans_by_class_total{{label="{label}"}}') == sum(
            r["label"] == label for r in sent
        )
    assert grew("glyphgate_energy_count") == len(sent)
    assert grew("glyphgate_energy_sum") == pytest.approx(sum(r["energy"] for r in sent), abs=1e-3)
    assert grew("glyphgate_rejected_uploads_total") == 1


def test_the_api_page_loads_nothing_from_outside(client):
    import re

    r = client.get("/")
    assert r.status_code == 200 and "swagger-ui" in r.text
    assert "googletagmanager" not in r.text
    assert all(u.startswith("./") for u in re.findall(r'(?:src|href)="([^"]+)"', r.text)), r.text


def test_generate_and_generate_chain_return_pngs(client):
    r = client.post("/generate", json={"n": 4, "steps": 5, "label": "ā", "seed": 1})
    assert r.status_code == 200 and r.headers["content-type"] == "image/png", r.text
    grid = Image.open(io.BytesIO(r.content))
    assert grid.size == (2 * 58 + 2, 2 * 58 + 2)
    again = client.post("/generate", json={"n": 4, "steps": 5, "label": "ā", "seed": 1})
    assert again.content == r.content  # seeded: the same request gives the same picture
    r = client.post("/generate_chain", json={"steps": 16, "seed": 2})
    strip = Image.open(io.BytesIO(r.content))
    assert r.status_code == 200 and strip.size == (9 * 58 + 2, 58 + 2)
    r = client.post("/generate", json={})
    assert r.status_code == 200 and Image.open(io.BytesIO(r.content)).size == (4 * 58 + 2, 4 * 58 + 2)


def test_bearer_token_guards_the_apis_but_not_health(tiny_calibrated, glyphs, tmp_path):
    png = png_bytes(glyphs[0])
    with (
        Server(tiny_calibrated, tmp_path / "serve.log", GLYPHGATE_API_TOKEN="s3cret") as s,
        httpx.Client(base_url=s.url, timeout=60) as c,
    ):
        assert c.get("/readyz").status_code == 200 and c.get("/livez").status_code == 200
        assert c.get("/metrics").status_code == 200
        since = len(s.output())
        r = c.post("/score", files={"image": ("g.png", png, "image/png")})
        assert r.status_code == 401 and "bearer token" in r.json()["error"]
        r = c.post("/generate", json={"n": 1, "steps": 1}, headers={"Authorization": "Bearer wrong"})
        assert r.status_code == 401
        page = {"image": ("p.png", png, "image/png"), "page": ("p.xml", b"<x/>", "application/xml")}
        assert c.post("/scan_page", files=page).status_code == 401
        reason = "missing or wrong bearer token: send 'Authorization: Bearer <token>'"
        assert refusal_lines(s, since, 3) == {
            f"401 POST {path}: {reason}": 1 for path in ("/score", "/generate", "/scan_page")
        }
        assert "s3cret" not in s.output() and "Bearer wrong" not in s.output()  # tokens never logged
        r = c.post(
            "/score", files={"image": ("g.png", png, "image/png")}, headers={"Authorization": "Bearer s3cret"}
        )
        assert r.status_code == 200


@pytest.mark.parametrize("damage", ["tampered model", "missing calibration"])
def test_server_refuses_to_start_on_inconsistent_artifacts(tiny_calibrated, tmp_path, damage):
    folder = tmp_path / "a"
    shutil.copytree(tiny_calibrated, folder)
    if damage == "tampered model":
        with open(folder / "model.onnx", "ab") as f:
            f.write(b"\0")
        expected = "model_sha256 does not match"
    else:
        (folder / "calibration.json").unlink()
        expected = "missing calibration.json"
    s = Server(folder, tmp_path / "serve.log")
    with pytest.raises(RuntimeError, match="server exited"):
        s.start(timeout=60)
    s.stop()
    assert "refusing to start" in s.output() and expected in s.output()


def test_scan_through_the_server_matches_local_scoring(server, tiny_calibrated, train_corpus, tmp_path):
    from glyphgate.cli import main

    folder = tmp_path / "scans"
    folder.mkdir()
    with open(train_corpus / "test.npy", "rb") as f:
        for i, a in enumerate(np.load(f)[:10]):
            Image.fromarray(a).save(folder / f"g{i}.png")
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (64, 64), dtype=np.uint8)).save(
        folder / "noise.png"
    )
    (folder / "bad.png").write_bytes(b"\x89PNG broken")
    code_remote = main(
        [
            "scan",
            str(folder),
            "--url",
            server.url,
            "--out",
            str(tmp_path / "remote"),
            "--batch",
            "4",
            "--no-progress",
        ]
    )
    code_local = main(
        [
            "scan",
            str(folder),
            "--artifacts",
            str(tiny_calibrated),
            "--out",
            str(tmp_path / "local"),
            "--no-progress",
        ]
    )
    assert code_remote == code_local == 1  # the noise scan is flagged either way
    remote = json.loads((tmp_path / "remote" / "results.json").read_text())["results"]
    local = json.loads((tmp_path / "local" / "results.json").read_text())["results"]
    assert [r["path"] for r in remote] == [r["path"] for r in local] and len(remote) == 12
    for a, b in zip(remote, local):
        assert ("error" in a) == ("error" in b)
        if "error" not in a:
            assert a["label"] == b["label"] and a["energy"] == pytest.approx(b["energy"], abs=1e-5)


def test_scan_page_returns_a_verdict_per_glyph_and_the_annotated_page(client, tmp_path):
    from corpus.synth.page import DEFAULT_TEXT, render_page

    png, xml = render_page(tmp_path, "p", glyph_level=False)
    files = {
        "image": ("p.png", png.read_bytes(), "image/png"),
        "page": ("p.xml", xml.read_bytes(), "application/xml"),
    }
    r = client.post("/scan_page", files=files)
    assert r.status_code == 200, r.text
    body = r.json()
    letters = [ch for line in DEFAULT_TEXT for ch in line if not ch.isspace()]
    assert body["n"] == len(letters) and [g["text"] for g in body["results"]] == letters
    assert all(0 < g["p_value"] <= 1 and g["word"] and g["line"] for g in body["results"])
    assert body["page_xml"].count("glyphgate {label:") == len(letters) and body["flagged"] == sum(
        g["is_ood"] for g in body["results"]
    )
    hostile = b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY e "e">]><PcGts xmlns="http://schema.primaresearch.org/PAGE/gts/pagecontent/2019-07-15"><Page>&e;</Page></PcGts>'
    r = client.post("/scan_page", files={**files, "page": ("evil.xml", hostile, "application/xml")})
    assert r.status_code == 400 and "evil.xml: not well-formed PAGE-XML" in r.json()["error"]
    r = client.post("/scan_page", files={"image": files["image"]})
    assert r.status_code == 400 and "'page' must hold exactly one file" in r.json()["error"]
    r = client.post("/scan_page", files={**files, "image": ("p.png", b"not a png", "image/png")})
    assert r.status_code == 400 and "p.png: not a page image" in r.json()["error"]
    # a half-size copy of the page: refused with both sizes, taken with rescale=true
    from PIL import Image

    with Image.open(png) as im:
        half = im.resize((im.width // 2, im.height // 2))
        small = io.BytesIO()
        half.save(small, format="PNG")
    scaled = {**files, "image": ("half.png", small.getvalue(), "image/png")}
    r = client.post("/scan_page", files=scaled)
    assert r.status_code == 400 and "pass --rescale" not in r.json()["error"], r.text
    assert f"{half.width} × {half.height}" in r.json()["error"] and "rescale=true" in r.json()["error"]
    r = client.post("/scan_page", files=scaled, data={"rescale": "true"})
    assert r.status_code == 200 and r.json()["n"] == len(letters), r.text
    r = client.post("/scan_page", files=scaled, data={"rescale": "maybe"})
    assert r.status_code == 400 and "expected true or false" in r.json()["error"]


def test_scan_page_takes_an_alto_page_as_it_takes_its_page_xml_twin(client, tmp_path):
    """Placed before the big-image test, which must stay last (see its docstring)."""
    from corpus.synth.page import render_page

    png, page = render_page(tmp_path / "page", "p", glyph_level=False)
    _, alto = render_page(tmp_path / "alto", "p", glyph_level=False, fmt="alto")
    image = ("p.png", png.read_bytes(), "image/png")
    got = {}
    for name, xml in (("page", page), ("alto", alto)):
        r = client.post(
            "/scan_page", files={"image": image, "page": (f"{name}.xml", xml.read_bytes(), "text/xml")}
        )
        assert r.status_code == 200, r.text
        got[name] = r.json()
    verdicts = {
        name: [(g["glyph"], g["text"], g["label"], round(g["energy"], 4)) for g in body["results"]]
        for name, body in got.items()
    }
    assert verdicts["alto"] == verdicts["page"] and got["alto"]["n"] > 100
    annotated = got["alto"]["page_xml"]
    assert (
        "alto/ns-v4#" in annotated[:200] and annotated.count('TYPE="glyphgate-verdict"') == got["alto"]["n"]
    )
    hostile = b'<?xml version="1.0"?><!DOCTYPE alto><alto xmlns="http://www.loc.gov/standards/alto/ns-v4#"/>'
    r = client.post("/scan_page", files={"image": image, "page": ("evil.xml", hostile, "text/xml")})
    assert r.status_code == 400 and "evil.xml: not well-formed ALTO" in r.json()["error"], r.text


SEND_FOREVER = """import sys, httpx
data = open(sys.argv[2], "rb").read()
with httpx.Client(base_url=sys.argv[1], timeout=120) as c:
    while True:
        r = c.post("/score", files={"image": ("big.png", data, "image/png")})
        print(r.status_code, flush=True)
"""


def test_big_images_do_not_stall_small_scans(server, client, glyphs, tmp_path):
    """Two clients (their own processes, as in life) keep sending 36-megapixel PNGs (legal:
    under the pixel cap, ~60 KB on the wire); small /score calls keep being answered, their p99
    within 6x of their p99 alone. Alone and loaded rounds alternate, so drift in the machine
    hits both. Last in the module: the killed senders leave decodes in flight that other tests
    would count.

    Why 6x and not the 2x goal: on the 2-core build machine this ratio is noise-dominated.
    Rounds of 100 requests measured 1.1x, 2.6x, 4.2x and 2.02x; bench/hol.py (5 rounds of 300,
    25 MP) 1.5x-3.1x a round, medians 2.29x and 2.75x in two runs; a bare SCHED_IDLE busy loop
    or memory copy beside the server alone costs 1.45x-1.9x there. The regression this guards
    against is far above it: with big decodes on the event loop, p99 was 8 ms alone and 725 ms
    loaded (90x); put back there with today's decoder, 13 ms and 223 ms (17x)."""
    import subprocess
    import sys

    small = {"image": ("s.png", png_bytes(glyphs[0]), "image/png")}
    big = tmp_path / "big.png"
    big.write_bytes(png_bytes(glyphs[0].resize((6000, 6000), Image.NEAREST)))

    def latencies(n=100):
        took = []
        for _ in range(n):
            t = time.perf_counter()
            assert client.post("/score", files=small).status_code == 200
            took.append(time.perf_counter() - t)
            time.sleep(0.005)
        return took

    latencies(20)  # warm
    alone, loaded, answers = [], [], []
    for _ in range(3):
        alone += latencies()
        senders = [
            subprocess.Popen(
                [sys.executable, "-c", SEND_FOREVER, server.url, str(big)], stdout=subprocess.PIPE, text=True
            )
            for _ in range(2)
        ]
        time.sleep(1.0)
        loaded += latencies()
        for p in senders:
            p.kill()
            answers += p.communicate()[0].split()
    assert len(answers) >= 6 and set(answers) == {"200"}, answers[:10]
    p99_alone, p99_loaded = np.percentile(alone, 99), np.percentile(loaded, 99)
    assert p99_loaded <= 6 * p99_alone, (
        f"p99 small /score: {1e3 * p99_alone:.1f} ms alone, {1e3 * p99_loaded:.1f} ms beside big images"
    )
