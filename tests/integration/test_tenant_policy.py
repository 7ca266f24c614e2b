"""The operator's policy (issue 14): `thaw serve --config FILE` is read
before any worker is served, in TOML or JSON; a table the operator
misspells stops the start instead of leaving a wall open; and `thaw dev`
says once that it trusts the worker's config."""
import subprocess

from servelib import ThawServe, project
from thawlib import THAW, Thaw


def start_with(tmp_path, name, text):
    cfg = tmp_path / name
    cfg.write_text(text)
    srv = ThawServe(tmp_path / "state", tmp_path, ("--config", str(cfg)))
    return srv, cfg


def run_serve(tmp_path, *args):
    return subprocess.run([str(THAW), "serve", "--state", str(tmp_path / "state"),
                           "--listen", "127.0.0.1:1", "--admin", "127.0.0.1:1", *args],
                          capture_output=True, text=True, timeout=60)


def test_unknown_table_stops_the_start_naming_file_and_table(tmp_path):
    for name, text in (("serve.toml", "[limits]\nmemory_mb = 64\n[egres]\nallow = []\n"),
                       ("serve.json", '{"limits": {}, "egres": {"allow": []}}')):
        cfg = tmp_path / name
        cfg.write_text(text)
        r = run_serve(tmp_path, "--config", str(cfg))
        assert r.returncode == 2, r
        assert str(cfg) in r.stderr and "unknown table `egres`" in r.stderr, r.stderr
        assert "Ready on" not in r.stdout


def test_bad_toml_and_missing_file_are_clear_errors(tmp_path):
    cfg = tmp_path / "serve.toml"
    cfg.write_text("[limits\nmemory_mb = 64\n")
    r = run_serve(tmp_path, "--config", str(cfg))
    assert r.returncode == 2 and str(cfg) in r.stderr, r.stderr
    r = run_serve(tmp_path, "--config", str(tmp_path / "nope.toml"))
    assert r.returncode != 0 and "nope.toml" in r.stderr and "No such file" in r.stderr, r


def test_a_table_must_be_a_table(tmp_path):
    cfg = tmp_path / "serve.json"
    cfg.write_text('{"kv": "redis://127.0.0.1:1"}')
    r = run_serve(tmp_path, "--config", str(cfg))
    assert r.returncode == 2 and "`kv` must be a table" in r.stderr, r.stderr


def test_serve_starts_with_a_valid_config_and_serves(tmp_path):
    for name, text in (("serve.toml", "[limits]\n[egress]\n"),
                       ("serve.jsonc", '// the operator\n{"limits": {},}\n')):
        srv, _ = start_with(tmp_path, name, text)
        srv.start()
        try:
            srv.cli("deploy", str(project(tmp_path, "hello", body="hi")))
            r = srv.host_get("hello.localhost")
            assert r.status == 200 and r.text == "hi", r
        finally:
            srv.stop()


def test_dev_says_it_trusts_the_config(tmp_path):
    project(tmp_path, "w", body="hi")
    t = Thaw(tmp_path / "w", tmp_path, ("--no-sandbox",))
    t.start()
    try:
        assert "the worker's config is trusted here" in t.log()
    finally:
        t.stop()
