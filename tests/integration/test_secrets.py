"""Secrets of `thaw dev`: .dev.vars in the worker directory (wrangler's
dotenv format) adds string values to env; they never reach the log, a
repr() of env, or `thaw types` output."""
import subprocess

from thawlib import THAW

WORKER = """
    from workers import Response, WorkerEntrypoint


    class Default(WorkerEntrypoint):
        async def fetch(self, request):
            e = self.env
            if request.url.endswith("/repr"):
                return Response(repr(e))
            print("handling with", "API_KEY" in e)
            return Response(f"{e.API_KEY}|{e.MODE}|{e.MULTI}|{e['TOKEN']}|{type(e.PORT).__name__}")
"""

DEV_VARS = (
    "# secrets for local development\n"
    'API_KEY="sk-live value with spaces"\n'
    "export TOKEN=tok123\n"
    "MODE=from-dev-vars   # overrides [vars]\n"
    'MULTI="line1\\nline2"\n'
    "PORT=5432\n"
)


def test_dev_vars_reach_env_as_strings_and_override_vars(serve, tmp_path):
    (tmp_path / "worker").mkdir()
    (tmp_path / "worker" / ".dev.vars").write_text(DEV_VARS)
    t = serve(WORKER, vars={"MODE": "from-vars"})
    r = t.get("/")
    assert r.status == 200, r.text
    assert r.text == "sk-live value with spaces|from-dev-vars|line1\nline2|tok123|str"
    # names only, never values: in repr, and anywhere in the log
    r = t.get("/repr")
    assert "API_KEY" in r.text and "sk-live" not in r.text
    t.stop()
    for secret in ("sk-live", "tok123", "line1"):
        assert secret not in t.log(), t.log()


def test_dev_vars_edit_reloads(serve, tmp_path):
    d = tmp_path / "worker"
    d.mkdir()
    (d / ".dev.vars").write_text(DEV_VARS)
    t = serve(WORKER)
    assert t.get("/").text.startswith("sk-live")
    (d / ".dev.vars").write_text(DEV_VARS.replace("sk-live", "sk-rotated"))
    t.poll_until(lambda r: r.text.startswith("sk-rotated"))


def test_bad_dev_vars_line_is_an_error_naming_file_and_line(tmp_path, thaw_factory):
    from thawlib import write_worker
    d = tmp_path / "worker"
    write_worker(d, WORKER)
    (d / ".dev.vars").write_text("GOOD=1\n\nthis line has no equals sign\n")
    t = thaw_factory(d, start=False)
    t.spawn()
    rc = t.proc.wait(timeout=20)
    assert rc != 0
    assert ".dev.vars:3: expected KEY=value" in t.output(), t.output()


def test_unterminated_quote_is_an_error(tmp_path, thaw_factory):
    from thawlib import write_worker
    d = tmp_path / "worker"
    write_worker(d, WORKER)
    (d / ".dev.vars").write_text('A=1\nKEY="never closed\n')
    t = thaw_factory(d, start=False)
    t.spawn()
    assert t.proc.wait(timeout=20) != 0
    assert ".dev.vars:2: unterminated quote in the value of KEY" in t.output(), t.output()


def test_types_lists_secret_names_without_values(tmp_path):
    from thawlib import write_worker
    d = tmp_path / "worker"
    write_worker(d, WORKER, vars={"MODE": "x"})
    (d / ".dev.vars").write_text(DEV_VARS + 'KEY2="a\nB=not-a-name-line"\n')
    r = subprocess.run([str(THAW), "types", str(d)], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    env = (d / "typings" / "env.pyi").read_text()
    for name in ("API_KEY", "TOKEN", "MULTI", "PORT", "KEY2"):
        assert f"def {name}(self) -> str" in env, env
    assert "def B(self)" not in env  # inside a quoted value, not a name
    for secret in ("sk-live", "tok123", "line1", "5432", "not-a-name"):
        assert secret not in env and secret not in r.stdout


def test_the_secrets_example(tmp_path, thaw_factory):
    import shutil
    from thawlib import REPO
    d = tmp_path / "secrets"
    shutil.copytree(REPO / "examples" / "secrets", d)
    t = thaw_factory(d)
    # without .dev.vars: says what to do
    r = t.get("/")
    assert r.status == 500 and ".dev.vars.example" in r.text
    t.stop()
    shutil.copy(d / ".dev.vars.example", d / ".dev.vars")
    t = thaw_factory(d)
    assert t.get("/").status == 401
    r = t.get("/", headers={"authorization": "Bearer replace-me"})
    assert r.status == 200 and "https://api.example.com" in r.text
    assert "replace-me" not in t.log()
